"""Trajectory matching: experts (SGD and GSAM), MTT, FTD, FYI, resume, ZCA; on the bundled digits."""
import dataclasses
import json
import math

import pytest
import torch

from fyi_apps.augment import DSA
from fyi_apps.distill import DistillConfig, Distiller
from fyi_apps.distill.experts import ExpertConfig, ExpertStore, train_experts
from fyi_apps.distill.fyi import FYIView
from fyi_apps.distill.gsam import gsam_direction
from fyi_apps.distill.mtt import FlatParams, param_matching_loss, unroll
from fyi_apps.errors import FyiError
from fyi_apps.networks import create_model
from fyi_apps.synset import load_synset
from fyi_apps.zca import fit_zca, zca_for_dataset

ARCH = "convnet:width=8,depth=2"
BUF = dict(dataset="digits", epochs=3, arch=ARCH, lr_teacher=0.1, batch_size=128)


@pytest.fixture(scope="module")
def buffers(digits, tmp_path_factory):
    folder = tmp_path_factory.mktemp("experts")
    train_experts(ExpertConfig(experts=2, **BUF), digits, folder, progress=False)
    return folder


def _cfg(method, buffers, fyi=None, iterations=6, **opts):
    options = {"experts": str(buffers), "syn_steps": 4, "expert_epochs": 1, "max_start_epoch": 2,
               "lr_lr": 1e-5, "lr_teacher": 0.1, **opts}
    return DistillConfig(method=method, dataset="digits", ipc=1, fyi=fyi, iterations=iterations, arch=ARCH,
                         lr_img=100.0, checkpoint_every=2, options=options)


# --------------------------------------------------------------------------- the unroll
def _tiny_problem(seed=0):
    net = create_model("convnet:depth=1,width=8,act=sigmoid", channels=1, num_classes=10, image_size=8, seed=seed).double()
    for p in net.parameters():
        p.requires_grad_(False)
    spec = FlatParams(net)
    g = torch.Generator().manual_seed(seed)
    w0 = spec.flatten(net)
    target = w0 + 0.05 * torch.randn(w0.shape, generator=g, dtype=torch.float64)
    images = torch.randn(10, 1, 8, 8, generator=g, dtype=torch.float64)
    labels = torch.arange(10)
    aug = DSA("color_scale_rotate", mode="all")
    plan = [(torch.randperm(10, generator=g)[:6], aug.sample(6, 8, "cpu", g, siamese=False)) for _ in range(3)]
    return net, spec, w0, target, images, labels, aug, plan


def _loss(net, spec, w0, target, images, labels, lr, plan, aug, **kw):
    w = unroll(net, spec, w0.clone().requires_grad_(True), images, labels, lr, plan, aug=aug, **kw)
    return param_matching_loss(w, w0, target)


def test_unroll_gradient_matches_finite_differences():
    net, spec, w0, target, images, labels, aug, plan = _tiny_problem()
    x = images.clone().requires_grad_(True)
    lr = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    gx, glr = torch.autograd.grad(_loss(net, spec, w0, target, x, labels, lr, plan, aug), (x, lr))
    assert gx.abs().sum() > 0 and glr.abs() > 0

    def f(xx, ll):
        with torch.enable_grad():
            return float(_loss(net, spec, w0, target, xx, labels, ll, plan, aug))

    h = 1e-5
    d_lr = (f(images, torch.tensor(0.5 + h, dtype=torch.float64)) - f(images, torch.tensor(0.5 - h, dtype=torch.float64))) / (2 * h)
    assert abs(d_lr - float(glr)) <= 1e-4 * abs(d_lr)
    g = torch.Generator().manual_seed(1)
    for _ in range(3):  # directional derivatives along random directions of the images
        v = torch.randn(images.shape, generator=g, dtype=torch.float64)
        lr_ = torch.tensor(0.5, dtype=torch.float64)
        fd = (f(images + h * v, lr_) - f(images - h * v, lr_)) / (2 * h)
        an = float((gx * v).sum())
        assert abs(fd - an) <= 1e-4 * abs(fd), (fd, an)


def test_checkpointed_unroll_gives_the_same_gradients():
    net, spec, w0, target, images, labels, aug, plan = _tiny_problem(seed=3)
    out = []
    for ck in (False, True):
        x = images.clone().requires_grad_(True)
        lr = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
        loss = _loss(net, spec, w0, target, x, labels, lr, plan, aug, checkpoint=ck)
        out.append((loss.detach(), *torch.autograd.grad(loss, (x, lr))))
    for a, b in zip(*out):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-14)


def test_param_matching_loss_is_normalised():
    start, target = torch.zeros(4), torch.tensor([2.0, 0.0, 0.0, 0.0])
    assert float(param_matching_loss(start, start, target)) == 1.0
    assert float(param_matching_loss(target, start, target)) == 0.0
    assert float(param_matching_loss(torch.tensor([1.0, 0, 0, 0]), start, target)) == pytest.approx(0.25)


def test_gsam_direction_matches_the_formula():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(5, generator=g)
    w = torch.randn(5, generator=g, requires_grad=True)

    def loss_at(v):
        return (torch.sin(v * a)).sum() + 0.5 * (v ** 4).sum()

    rho, alpha = 0.05, 0.3
    gsam_direction([w], lambda: loss_at(w), rho=rho, alpha=alpha, adaptive=False)
    got = w.grad.clone()
    # by hand
    wd = w.detach()
    v = wd.clone().requires_grad_(True)
    (g0,) = torch.autograd.grad(loss_at(v), v)
    vp = (wd + rho * g0 / g0.norm()).requires_grad_(True)
    (gp,) = torch.autograd.grad(loss_at(vp), vp)
    perp = g0 - (g0 @ gp) / (gp @ gp) * gp
    assert torch.allclose(got, gp - alpha * perp, atol=1e-6)
    assert torch.equal(w.detach(), wd)  # weights are back at w
    # alpha = 0 is SAM
    w.grad = None
    gsam_direction([w], lambda: loss_at(w), rho=rho, alpha=0.0, adaptive=False)
    assert torch.allclose(w.grad, gp, atol=1e-6)


# --------------------------------------------------------------------------- buffers
def test_buffers_are_compact_loadable_and_resume_expert_by_expert(digits, buffers, tmp_path):
    b = ExpertStore(buffers)
    assert b.num_experts == 2 and b.epochs == 3
    traj = b.trajectory(0)
    assert traj.shape == (4, b.num_params) and traj.dtype == torch.float32
    net = create_model(ARCH, channels=1, num_classes=10, image_size=8, seed=0)
    assert b.num_params == sum(p.numel() for p in net.parameters())
    assert not torch.equal(traj[0], traj[-1])  # the expert moved
    rows = b.load(1, [2, 0])
    assert torch.equal(rows[1], b.trajectory(1)[0]) and torch.equal(rows[0], b.trajectory(1)[2])
    index = json.loads((buffers / "experts.json").read_text())
    assert [e["index"] for e in index["experts"]] == [0, 1] and index["versions"]["torch"]
    assert all(0.0 <= e["test_acc"]["3"] <= 1.0 for e in index["experts"])
    # one file per expert holding just the trajectory: about 4 bytes per stored number
    size = (buffers / "expert_00000.safetensors").stat().st_size
    assert 4 * 4 * b.num_params <= size < 4 * 4 * b.num_params + 4096

    # crash after expert 0: expert 0 is kept, not retrained; the end result equals the uninterrupted run
    out = tmp_path / "resumed"
    train_experts(ExpertConfig(experts=2, **BUF), digits, out, progress=False, stop_after=1)
    assert (out / "expert_00000.safetensors").exists() and not (out / "expert_00001.safetensors").exists()
    mtime = (out / "expert_00000.safetensors").stat().st_mtime_ns
    # crash in the middle of expert 1 (after its epoch 2), then resume
    train_experts(ExpertConfig(experts=2, **BUF), digits, out, progress=False, stop_after=(1, 2))
    assert (out / "expert_00001.partial.pt").exists()
    r = train_experts(ExpertConfig(experts=2, **BUF), digits, out, progress=False)
    assert (out / "expert_00000.safetensors").stat().st_mtime_ns == mtime
    assert not (out / "expert_00001.partial.pt").exists()
    for k in range(2):
        assert torch.equal(r.trajectory(k), b.trajectory(k))
    # other settings in the same folder are refused
    with pytest.raises(FyiError, match="different settings"):
        train_experts(ExpertConfig(experts=2, **{**BUF, "lr_teacher": 0.2}), digits, out, progress=False)


def test_flat_buffers_use_gsam(digits, buffers, tmp_path):
    flat = train_experts(ExpertConfig(experts=1, flat=True, dsa=False, **{**BUF, "epochs": 1}), digits,
                         tmp_path / "flat", progress=False)
    sgd = train_experts(ExpertConfig(experts=1, dsa=False, **{**BUF, "epochs": 1}), digits, tmp_path / "sgd",
                        progress=False)
    assert flat.flat and not sgd.flat
    a, b = flat.trajectory(0), sgd.trajectory(0)
    assert torch.equal(a[0], b[0])  # same initialisation
    assert not torch.allclose(a[1], b[1])  # different optimiser


def test_zca_whitens_and_is_recorded(digits, buffers):
    z = fit_zca(digits.train.images, eps=0.1, norm_mean=digits.info.mean, norm_std=digits.info.std)
    x = z.from_uint8(digits.train.images).reshape(len(digits.train.labels), -1).double()
    cov = torch.cov(x.T)
    evals = z.eigenvalues.double()
    # in the eigenbasis the whitened covariance is diag(s / (s + eps))
    u = z.eigenvectors.double()
    assert torch.allclose(u.T @ cov @ u, torch.diag(evals / (evals + 0.1)), atol=1e-3)
    assert torch.allclose(z.matrix, z.matrix.T, atol=1e-5)
    pix = digits.train.images[:5].float() / 255
    assert torch.allclose(z.inverse_pixels(z.whiten_pixels(pix)), pix, atol=1e-4)
    normalised = digits.normalize(digits.train.images[:5])
    assert torch.allclose(z(normalised), z.whiten_pixels(pix), atol=1e-4)
    cached = zca_for_dataset(digits, 0.1)
    assert cached.fingerprint() == zca_for_dataset(digits, 0.1).fingerprint()


# --------------------------------------------------------------------------- MTT / FTD
def _mean(xs):
    return sum(xs) / len(xs)


@pytest.mark.parametrize("method,fyi", [("mtt", None), ("mtt", "flip"), ("ftd", None), ("ftd", "flip")])
def test_loss_decreases_on_a_tiny_problem(digits, buffers, method, fyi):
    cfg = dataclasses.replace(_cfg(method, buffers, fyi=fyi, iterations=12, expert_epochs=1, max_start_epoch=1,
                                   max_experts=1), dsa=False)  # configs are frozen: a changed copy
    d = Distiller(cfg, digits, device="cpu")
    s = d.run(None, progress=False)
    losses = [r["loss"] for r in d.log]
    assert all(math.isfinite(v) for v in losses)
    assert _mean(losses[-3:]) < 0.8 * _mean(losses[:3]), losses
    assert s.images.shape == (10, 1, 8, 8) and s.fyi == fyi
    assert s.lr is not None and s.lr != 0.1  # the learning rate was learned


def test_fyi_halves_the_batch_and_the_student_sees_batch_syn_images(digits, buffers, monkeypatch):
    seen = {}
    for fyi in (None, "flip"):
        d = Distiller(_cfg("mtt", buffers, fyi=fyi, iterations=1), digits, device="cpu")
        sizes = []
        orig = d.method.__class__.setup

        def setup(self, images, labels, _orig=orig, _sizes=sizes):
            _orig(self, images, labels)
            self.net.register_forward_pre_hook(lambda m, args: _sizes.append(args[0].shape[0]))

        monkeypatch.setattr(d.method.__class__, "setup", setup)
        d.run(None, progress=False)
        seen[fyi] = sizes
        monkeypatch.undo()
    assert seen[None] == [10] * 4  # batch_syn = ipc * classes, syn_steps = 4
    assert seen["flip"] == [10] * 4  # 5 images + their flips
    d = Distiller(_cfg("mtt", buffers, fyi="flip", iterations=1), digits, device="cpu")
    d.run(None, progress=False)
    assert d.method.step_batch == FYIView.halve(10) == 5


def test_fyi_gradient_reaches_the_unflipped_images(digits, buffers):
    d = Distiller(_cfg("mtt", buffers, fyi="flip", iterations=1), digits, device="cpu")
    d.run(None, progress=False)
    m = d.method
    plan = [(torch.arange(5), None)]
    w0 = m.experts.load(0, [0])[0]
    x = m.images.detach().clone().requires_grad_(True)
    w = unroll(m.net, m.spec, w0.clone().requires_grad_(True), x, m.labels, m.syn_lr.detach(), plan, view=FYIView())
    (g,) = torch.autograd.grad(w.pow(2).sum(), x)
    assert g[:5].abs().sum() > 0 and g[5:].abs().sum() == 0  # only the drawn half, through both copies
    # and through the flip: the student saw cat([x, flip(x)])
    w_noflip = unroll(m.net, m.spec, w0.clone().requires_grad_(True), torch.cat([x[:5], x[:5].flip(-1)]).detach(),
                      torch.cat([m.labels[:5]] * 2), m.syn_lr.detach(), [(torch.arange(10), None)])
    assert torch.allclose(w.detach(), w_noflip.detach(), atol=1e-6)


@pytest.mark.parametrize("method,fyi", [("mtt", "flip"), ("ftd", None)])
def test_resume_gives_the_same_images_and_lr(digits, buffers, tmp_path, method, fyi):
    full = Distiller(_cfg(method, buffers, fyi=fyi, iterations=5), digits, device="cpu").run(tmp_path / "a.safetensors", progress=False)
    out = tmp_path / "b.safetensors"
    assert Distiller(_cfg(method, buffers, fyi=fyi, iterations=5), digits, device="cpu").run(out, progress=False, stop_after=3) is None
    resumed = Distiller(_cfg(method, buffers, fyi=fyi, iterations=5), digits, device="cpu").run(out, resume=True, progress=False)
    assert torch.equal(full.images, resumed.images)
    assert full.lr == resumed.lr
    assert load_synset(out).lr == full.lr


def test_learned_lr_is_stored_and_used_by_evaluation(digits, buffers, tmp_path, monkeypatch):
    import sys

    import fyi_apps.evaluate  # noqa: F401  (the module; fyi_apps.evaluate is the function)

    evaluate = sys.modules["fyi_apps.evaluate"]

    out = tmp_path / "mtt.safetensors"
    s = Distiller(_cfg("mtt", buffers, iterations=3), digits, device="cpu").run(out, progress=False)
    loaded = load_synset(out)
    assert loaded.lr == pytest.approx(s.lr) and loaded.lr != 0.1
    assert loaded.config["experts_info"]["experts"] == 2
    used = {}
    real = evaluate.train_network

    def spy(net, images, labels, cfg, *, lr, **kw):
        used["lr"] = lr
        return real(net, images, labels, cfg, lr=lr, **kw)

    monkeypatch.setattr(evaluate, "train_network", spy)
    res = evaluate.evaluate_synset(loaded, digits, cfg=evaluate.EvalConfig(epochs=2), seeds=[0], device="cpu")
    assert used["lr"] == pytest.approx(loaded.lr) and res["convnet"].lr == pytest.approx(loaded.lr)


def test_ftd_output_is_the_ema(digits, buffers):
    cfg = _cfg("ftd", buffers, iterations=4, ema_decay=0.5)
    d = Distiller(cfg, digits, device="cpu")
    s = d.run(None, progress=False)
    m = d.method
    assert torch.equal(s.images, m.ema.cpu())
    assert not torch.allclose(s.images, m.images.detach().cpu())  # the EMA lags behind the raw images
    # replay: the EMA is the recursion over the raw images after every step
    d2 = Distiller(cfg, digits, device="cpu")
    raws = []
    orig = d2.method.after_step

    def record():
        raws.append(d2.method.images.detach().clone())
        orig()

    d2.method.after_step = record
    s2 = d2.run(None, progress=False)
    assert torch.equal(s2.images, s.images)
    # decay 0.5: ema_k = 0.5 ema_{k-1} + 0.5 x_k
    init = Distiller(cfg, digits, device="cpu").init_images()[0]
    e = init.clone()
    for x in raws:
        e = e.lerp(x, 0.5)
    assert torch.allclose(e, s.images, atol=1e-6)


def test_ftd_warns_about_sgd_experts_and_mtt_needs_buffers(digits, buffers, tmp_path):
    with pytest.warns(UserWarning, match="flat experts"):
        Distiller(_cfg("ftd", buffers), digits, device="cpu")
    cfg = _cfg("mtt", buffers)
    cfg.options.pop("experts")
    with pytest.raises(FyiError, match="fyi experts"):
        Distiller(cfg, digits, device="cpu")
    with pytest.raises(FyiError, match="max_start_epoch"):
        Distiller(_cfg("mtt", buffers, max_start_epoch=3, expert_epochs=2), digits, device="cpu")
    with pytest.raises(FyiError, match="arch"):
        c = dataclasses.replace(_cfg("mtt", buffers), arch="convnet")
        Distiller(c, digits, device="cpu")
    with pytest.raises(FyiError, match="does not exist"):
        Distiller(_cfg("mtt", tmp_path / "nothing"), digits, device="cpu")
    with pytest.raises(FyiError, match="learned learning rate became"):  # a huge lr_lr flips the lr's sign
        Distiller(_cfg("mtt", buffers, iterations=3, lr_lr=1e3), digits, device="cpu").run(None, progress=False)


def test_presets_hold_the_published_settings():
    from fyi_apps.distill import resolve_config

    c = resolve_config(DistillConfig(method="ftd", dataset="cifar10", ipc=10))
    o = c.options
    assert (o["syn_steps"], o["expert_epochs"], o["max_start_epoch"], c.lr_img, o["lr_lr"], o["lr_teacher"]) == \
        (30, 2, 20, 100.0, 1e-5, 0.001)
    c = resolve_config(DistillConfig(method="mtt", dataset="tiny-imagenet", ipc=1, lr_img=5.0, options={"syn_steps": 7}))
    assert c.options["syn_steps"] == 7 and c.lr_img == 5.0 and c.options["max_start_epoch"] == 10
    assert c.iterations == 5000 and c.dsa is True
    assert resolve_config(DistillConfig(method="ftd", dataset="cifar100", ipc=50)).options["ema_decay"] == 0.9995


def test_zca_synset_is_whitened_and_evaluated_in_whitened_space(digits, tmp_path, monkeypatch):
    import sys

    import fyi_apps.evaluate  # noqa: F401  (the module; fyi_apps.evaluate is the function)

    evaluate = sys.modules["fyi_apps.evaluate"]

    folder = tmp_path / "zca"
    train_experts(ExpertConfig(experts=1, zca=True, **{**BUF, "epochs": 2}), digits, folder, progress=False)
    cfg = DistillConfig(method="mtt", dataset="digits", ipc=1, iterations=1, arch=ARCH, lr_img=10.0,
                        options={"experts": str(folder), "syn_steps": 2, "expert_epochs": 1, "max_start_epoch": 1})
    d = Distiller(cfg, digits, device="cpu")
    real, _ = d.init_images()
    z = ExpertStore(folder).zca
    d2 = Distiller(DistillConfig(method="dm", dataset="digits", ipc=1), digits, device="cpu")
    plain, _ = d2.init_images()  # same seed: the same real images, not whitened
    assert torch.allclose(real, z(plain), atol=1e-5)
    s = d.run(tmp_path / "z.safetensors", progress=False)
    assert s.config["zca"]["fingerprint"] == z.fingerprint()
    seen = {}
    real_test = evaluate.test_accuracy

    def spy(net, images, labels, **kw):
        seen["transform"] = kw.get("transform")
        return real_test(net, images, labels, **kw)

    monkeypatch.setattr(evaluate, "test_accuracy", spy)
    evaluate.evaluate_synset(load_synset(tmp_path / "z.safetensors"), digits, cfg=evaluate.EvalConfig(epochs=1),
                             seeds=[0], device="cpu")
    assert seen["transform"] is not None
    x = digits.normalize(digits.test.images[:3])
    assert torch.allclose(seen["transform"](x), z(x), atol=1e-5)


# --------------------------------------------------------------------------- CLI
def test_cli_buffers_and_distill(digits, tmp_path, capsys):
    from fyi_apps.cli import main

    folder = tmp_path / "cli-experts"
    assert main(["buffers", "--dataset", "digits", "--experts", "1", "--epochs", "2", "--arch", ARCH,
                 "--lr-teacher", "0.1", "-o", str(folder), "--quiet", "--out", str(tmp_path)]) == 0
    assert "fyi distill --method mtt" in capsys.readouterr().out
    out = tmp_path / "m.safetensors"
    assert main(["distill", "--method", "mtt", "--dataset", "digits", "--ipc", "1", "--iterations", "2",
                 "--arch", ARCH, "--buffers", str(folder), "--option", "syn_steps=2", "--option", "expert_epochs=1",
                 "--option", "max_start_epoch=1", "--lr-img", "10", "--fyi", "-o", str(out), "--quiet",
                 "--no-grid", "--out", str(tmp_path)]) == 0
    s = load_synset(out)
    assert s.method == "mtt" and s.fyi == "flip" and s.lr is not None
    assert main(["buffers", "--dataset", "digits", "--experts", "0", "-o", str(folder), "--quiet"]) == 2
    assert "--experts" in capsys.readouterr().err


def test_unroll_memory_option_is_accepted(digits, buffers):
    cfg = _cfg("mtt", buffers, iterations=2, checkpoint_unroll=True)
    d = Distiller(cfg, digits, device="cpu")
    a = d.run(None, progress=False)
    b = Distiller(_cfg("mtt", buffers, iterations=2), digits, device="cpu").run(None, progress=False)
    assert torch.allclose(a.images, b.images, atol=1e-5) and a.lr == pytest.approx(b.lr, rel=1e-5)


def test_bad_buffer_settings():
    with pytest.raises(FyiError, match=r"\bepochs\b"):
        ExpertConfig(dataset="digits", epochs=0).check()
    with pytest.raises(FyiError, match=r"\bdtype\b"):
        ExpertConfig(dataset="digits", dtype="int8").check()


def test_mtt_warns_when_the_student_takes_more_steps_than_the_expert(digits, buffers):
    n_steps = -(-int(digits.train.labels.numel()) // BUF["batch_size"])  # one expert epoch
    with pytest.warns(UserWarning, match="overshoots"):
        Distiller(_cfg("mtt", buffers, syn_steps=n_steps + 1), digits, device="cpu")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Distiller(_cfg("mtt", buffers, syn_steps=n_steps), digits, device="cpu")


def test_the_old_expert_names_warn_and_an_old_folder_still_loads(digits, buffers, tmp_path):
    """BufferConfig, train_buffers, ExpertBuffers became ExpertConfig, train_experts, ExpertStore; buffers.json
    became experts.json: the old names warn, a folder written before the rename is read and continued as it is."""
    import shutil

    from fyi_apps.deprecated import FyiDeprecationWarning
    from fyi_apps.distill import experts

    for old, new in [("BufferConfig", ExpertConfig), ("ExpertBuffers", ExpertStore), ("train_buffers", train_experts),
                     ("default_buffer_dir", experts.default_expert_dir)]:
        with pytest.warns(FyiDeprecationWarning, match=f"experts.{old} is deprecated"):
            assert getattr(experts, old) is new
    old = tmp_path / "old"
    shutil.copytree(buffers, old)
    (old / "experts.json").rename(old / "buffers.json")
    assert torch.equal(ExpertStore(old).trajectory(1), ExpertStore(buffers).trajectory(1))
    more = train_experts(ExpertConfig(experts=3, **BUF), digits, old, progress=False)  # continued in place
    assert more.num_experts == 3 and not (old / "experts.json").exists()
    cfg = ExpertConfig(**BUF)
    assert experts.default_expert_dir(cfg, tmp_path).parent == tmp_path / "experts"
    (tmp_path / "buffers" / experts.default_expert_dir(cfg, tmp_path).name).mkdir(parents=True)
    assert experts.default_expert_dir(cfg, tmp_path).parent == tmp_path / "buffers"  # a run started there
