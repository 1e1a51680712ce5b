"""The shared distillation loop and the DC, DSA and DM methods, on the bundled digits."""
import math

import pytest
import torch

from fyi_apps.distill import DistillConfig, Distiller, distill, list_methods
from fyi_apps.distill.matching import class_means, feature_mean_distance, gradient_distance
from fyi_apps.errors import FyiError
from fyi_apps.synset import load_synset

TINY = dict(batch_real=32, checkpoint_every=2)


def _run(digits, method, ipc=2, iterations=6, fyi=None, out=None, **kw):
    kw = {**TINY, **kw}
    cfg = DistillConfig(method=method, dataset="digits", ipc=ipc, fyi=fyi, iterations=iterations, **kw)
    d = Distiller(cfg, digits, device="cpu")
    return d, d.run(out, progress=False)


def test_methods_registered():
    assert {"dc", "dsa", "dm"} <= set(list_methods())


def _mean(xs):
    return sum(xs) / len(xs)


@pytest.mark.parametrize("method,fyi", [("dm", None), ("dm", "flip"), ("dc", None), ("dsa", "flip")])
def test_loss_decreases_on_a_tiny_problem(digits, method, fyi):
    iters = 40 if method == "dm" else 20
    opts = {"options": {"outer_loop": 3, "inner_loop": 1}} if method != "dm" else {}
    # DM: noisy random-network embeddings need a large step; DC/DSA: a shallow net keeps the
    # layer-wise distance informative at 8 px
    extra = {"lr_img": 50.0, "batch_real": 128} if method == "dm" else {"lr_img": 1.0, "arch": "convnet:depth=1,width=16"}
    d, s = _run(digits, method, ipc=2, iterations=iters, fyi=fyi, init="noise", **extra, **opts)
    losses = [r["loss"] for r in d.log]
    assert all(math.isfinite(v) for v in losses)
    k = max(iters // 4, 3)
    assert _mean(losses[-k:]) < 0.85 * _mean(losses[:k]), losses


def test_only_s_is_stored_and_fyi_changes_the_result(digits):
    _, plain = _run(digits, "dm", ipc=3, iterations=5)
    _, flipped = _run(digits, "dm", ipc=3, iterations=5, fyi="flip")
    assert plain.images.shape == flipped.images.shape == (30, 1, 8, 8)
    assert flipped.labels.tolist() == plain.labels.tolist() == [c for c in range(10) for _ in range(3)]
    assert flipped.fyi == "flip" and plain.fyi is None
    assert not torch.allclose(plain.images, flipped.images)
    # both start from the same real images (same seed): the difference is FYI's
    assert plain.config["seed"] == flipped.config["seed"]


def test_same_seed_same_result_and_different_seed_differs(digits):
    _, a = _run(digits, "dm", iterations=4, seed=3)
    _, b = _run(digits, "dm", iterations=4, seed=3)
    _, c = _run(digits, "dm", iterations=4, seed=4)
    assert torch.equal(a.images, b.images)
    assert not torch.equal(a.images, c.images)


@pytest.mark.parametrize("method", ["dm", "dsa"])
def test_resume_gives_the_same_final_set(digits, tmp_path, method):
    opts = {"options": {"outer_loop": 2, "inner_loop": 1}} if method != "dm" else {}
    cfg = DistillConfig(method=method, dataset="digits", ipc=2, fyi="flip", iterations=6, **TINY, **opts)
    full = Distiller(cfg, digits, device="cpu").run(tmp_path / "full.safetensors", progress=False)

    out = tmp_path / "resumed.safetensors"
    first = Distiller(cfg, digits, device="cpu")
    assert first.run(out, progress=False, stop_after=3) is None  # "crash" after 3 iterations
    ckpt = first.checkpoint_path(out)
    assert ckpt.exists() and not out.exists()
    second = Distiller(cfg, digits, device="cpu")
    resumed = second.run(out, resume=True, progress=False)
    assert second.start_iteration == 3
    assert torch.equal(full.images, resumed.images)
    assert not ckpt.exists()  # removed once the set is written
    assert torch.equal(load_synset(out).images, full.images)
    before = sum(r["seconds"] for r in second.log[:3])  # the first call's iterations count in the recorded cost
    assert resumed.extra["seconds"] >= before + sum(r["seconds"] for r in second.log[3:])


def test_resume_refuses_a_checkpoint_with_other_settings(digits, tmp_path):
    out = tmp_path / "x.safetensors"
    cfg = DistillConfig(method="dm", dataset="digits", ipc=2, iterations=4, **TINY)
    Distiller(cfg, digits, device="cpu").run(out, progress=False, stop_after=2)
    other = DistillConfig(method="dm", dataset="digits", ipc=2, iterations=4, lr_img=0.3, **TINY)
    with pytest.raises(FyiError, match="lr_img"):
        Distiller(other, digits, device="cpu").run(out, resume=True, progress=False)


def test_nan_loss_is_a_clear_error(digits, monkeypatch, tmp_path):
    from fyi_apps.distill.dm import DM

    monkeypatch.setattr(DM, "step", lambda self, it: {"loss": float("nan")})
    with pytest.raises(FyiError, match="loss became nan at iteration 0"):
        _run(digits, "dm", iterations=3, out=tmp_path / "nan.safetensors")
    assert not (tmp_path / "nan.safetensors").exists()


def test_bad_inputs(digits):
    with pytest.raises(FyiError, match="unknown method"):
        Distiller(DistillConfig(method="xyz", dataset="digits", ipc=1), digits)
    with pytest.raises(FyiError, match="larger than class"):
        Distiller(DistillConfig(method="dm", dataset="digits", ipc=1000), digits)
    with pytest.raises(FyiError, match=r"\binit\b"):
        Distiller(DistillConfig(method="dm", dataset="digits", ipc=1, init="zeros"), digits)


def test_dm_batched_loss_equals_per_class_loop(digits):
    """All classes in one forward (instance norm) == the reference's loop over classes."""
    from fyi_apps.networks import create_model

    g = torch.Generator().manual_seed(0)
    net = create_model("convnet", channels=1, num_classes=10, image_size=8, seed=1)
    real_idx = torch.cat([digits.train.sample_indices(c, 20, g) for c in range(10)])
    real, yr = digits.normalize(digits.train.images[real_idx]), digits.train.labels[real_idx]
    syn = torch.randn(30, 1, 8, 8, generator=g)
    ys = torch.arange(10).repeat_interleave(3)
    with torch.no_grad():
        batched = feature_mean_distance(net.embed(real), yr, net.embed(syn), ys, 10)
        loop = sum(((net.embed(real[yr == c]).mean(0) - net.embed(syn[ys == c]).mean(0)) ** 2).sum() for c in range(10))
    assert torch.allclose(batched, loop, rtol=1e-5)


def test_class_means_and_gradient_distance():
    f = torch.tensor([[1.0, 0.0], [3.0, 2.0], [5.0, 5.0]])
    m = class_means(f, torch.tensor([0, 0, 2]), 3)
    assert m.tolist() == [[2.0, 1.0], [0.0, 0.0], [5.0, 5.0]]
    g = [torch.randn(4, 3, 3, 3), torch.randn(4), torch.randn(10, 4)]
    assert gradient_distance(g, g).abs() < 1e-4  # identical gradients match perfectly
    assert gradient_distance(g, [-x for x in g]) > 2 * (4 + 10) - 1e-3  # opposite: 2 per output unit
    assert gradient_distance(g, [x.clone() for x in g], "mse") == 0
    with pytest.raises(FyiError):
        gradient_distance(g, g, "l7")


def test_distill_api_writes_file_log_and_curves(digits, tmp_path):
    out = tmp_path / "dm.safetensors"
    s = distill("dm", digits, ipc=1, fyi=True, iterations=3, output=out, progress=False, score_every=3, batch_real=16)
    loaded = load_synset(out)
    assert loaded.method == "dm" and loaded.fyi == "flip" and loaded.ipc == 1
    assert loaded.config["iterations"] == 3 and loaded.config["lr_img"] == 1.0
    assert torch.equal(loaded.images, s.images)
    assert (tmp_path / "dm.log.csv").read_text().startswith("iteration,loss")
    assert (tmp_path / "dm.curves.png").stat().st_size > 1000
    assert "score" in s.config or loaded.extra["iterations_done"] == 3


def test_fyi_inner_loop_trains_on_flipped_copies(digits, monkeypatch):
    """DC/DSA with FYI also update the inner network on cat([S, flip(S)]) (official code)."""
    from fyi_apps.distill import dc

    seen = []
    orig = dc.DC.train_net

    def spy(self, net, opt_net):
        import torch.nn.functional as F

        real_ce = F.cross_entropy
        def ce(out, y, *a, **k):
            seen.append(out.shape[0])
            return real_ce(out, y, *a, **k)
        monkeypatch.setattr(dc.F, "cross_entropy", ce)
        try:
            return orig(self, net, opt_net)
        finally:
            monkeypatch.setattr(dc.F, "cross_entropy", real_ce)

    monkeypatch.setattr(dc.DC, "train_net", spy)
    _run(digits, "dsa", ipc=2, iterations=1, fyi="flip", options={"outer_loop": 2, "inner_loop": 1})
    assert sum(seen) == 40  # 20 stored images + their 20 flips in one update (forwarded in CPU slices)
    seen.clear()
    _run(digits, "dsa", ipc=2, iterations=1, fyi="flip", options={"outer_loop": 2, "inner_loop": 1, "fyi_inner": False})
    assert sum(seen) == 20


def test_dm_real_chunks_give_the_same_loss(digits):
    """Embedding the real batch in chunks (memory bound) leaves the DM loss unchanged."""
    losses = []
    for chunk in (7, 100000):
        d = Distiller(DistillConfig(method="dm", dataset="digits", ipc=2, iterations=1, batch_real=40, seed=1,
                                   options={"real_chunk": chunk}), digits, device="cpu")
        d.run(progress=False)
        losses.append(d.log[0]["loss"])
    assert abs(losses[0] - losses[1]) <= 1e-5 * abs(losses[1])


@pytest.mark.parametrize("bad", [0, -3, "many"])
def test_dm_rejects_a_bad_real_chunk(digits, bad):
    d = Distiller(DistillConfig(method="dm", dataset="digits", ipc=2, iterations=1, batch_real=40, seed=1,
                                options={"real_chunk": bad}), digits, device="cpu")
    with pytest.raises(FyiError, match="real_chunk"):
        d.run(progress=False)


@pytest.mark.parametrize("arch", ["convnet", "ConvNetBN"])
def test_real_gradient_in_slices_equals_the_whole_batch_gradient(arch):
    from fyi_apps.distill.matching import real_gradient
    from fyi_apps.networks import create_model

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(37, 3, 8, 8, generator=g), torch.randint(0, 5, (37,), generator=g)
    net = create_model(arch, channels=3, num_classes=5, image_size=8, seed=0)
    params = list(net.parameters())
    whole = torch.autograd.grad(torch.nn.functional.cross_entropy(net(x), y), params)
    sliced = real_gradient(net, x, y, params, net)
    assert len(sliced) == len(whole)
    for a, b in zip(whole, sliced):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)
        assert not b.requires_grad


def test_callbacks_run_every_iteration_and_log_their_entries(digits, tmp_path):
    """Built-in score callback at its period and the last iteration; a user callback sees every row."""
    import json

    from fyi_apps.distill import Callback

    seen = []

    class Spy(Callback):
        def on_iteration(self, distiller, iteration, row):
            seen.append((iteration, "score" in row))
            row["spy"] = float(iteration)

    out = tmp_path / "dm.safetensors"
    distill("dm", digits, ipc=1, iterations=5, output=out, progress=False, score_every=2, batch_real=8,
            callbacks=[Spy()])
    # the built-in score callback runs first, so the spy sees the score at iterations 2, 4 and 5 (the last)
    assert seen == [(1, False), (2, True), (3, False), (4, True), (5, True)]
    log = json.loads((tmp_path / "dm.log.json").read_text())["log"]
    assert [r["spy"] for r in log] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert all(r["score"] > 0 for r in log if "score" in r) and sum("score" in r for r in log) == 3
