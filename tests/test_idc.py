"""IDC (multi-formation + gradient matching on real-trained networks), on the bundled digits."""
import math

import pytest
import torch

from fyi_apps.distill import DistillConfig, Distiller, resolve_config
from fyi_apps.errors import FyiError
from fyi_apps.synset.multiformation import multiformation_decode, multiformation_encode
from fyi_apps.synset import load_synset

# Tiny budgets: a 16-channel ConvNet, one inner round, a few real images per network update.
TINY = dict(arch="convnet:width=16", batch_real=16, checkpoint_every=100)
TINY_OPTS = {"inner_loop": 1, "n_data": 16, "batch_net": 16}


def _cfg(ipc=1, iterations=2, options=None, **kw):
    return DistillConfig(method="idc", dataset="digits", ipc=ipc, iterations=iterations,
                         options={**TINY_OPTS, **(options or {})}, **{**TINY, **kw})


def _run(digits, out=None, **kw):
    d = Distiller(_cfg(**kw), digits, device="cpu")
    return d, d.run(out, progress=False, write_report=False)


def test_multiformation_round_trip_and_layout():
    # 8 constant images of distinct values: encode packs 4 into one, decode gives them back exactly
    vals = torch.arange(8, dtype=torch.float32)
    images = vals.view(8, 1, 1, 1).expand(8, 1, 8, 8).contiguous()
    stored = multiformation_encode(images, 2)
    assert stored.shape == (2, 1, 8, 8)
    assert stored[0, 0, :4, :4].unique().tolist() == [0.0] and stored[0, 0, 4:, 4:].unique().tolist() == [3.0]
    decoded = multiformation_decode(stored, 2)
    assert torch.equal(decoded, images)
    # a non-constant image is not a fixed point (the check above is not vacuous)
    rnd = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    assert not torch.allclose(multiformation_decode(multiformation_encode(rnd, 2), 2), rnd)


def test_distilled_set_is_stored_small_and_decoded_large(digits, tmp_path):
    out = tmp_path / "idc.fyi.safetensors"
    d, s = _run(digits, out=out, ipc=2, iterations=2)
    # stored: ipc * K images; decoded: factor**2 times more, full resolution, labels kept per tile
    assert s.images.shape == (20, 1, 8, 8)
    assert s.labels.tolist() == [c for c in range(10) for _ in range(2)]
    x, y = s.decoded()
    assert x.shape == (80, 1, 8, 8)
    assert y.tolist() == [c for c in range(10) for _ in range(8)]
    assert torch.equal(x, d.method.decode(s.images)) and torch.equal(y, d.method.decoded_labels(s.labels))
    # the file says how to decode and how to evaluate
    loaded = load_synset(out)
    assert loaded.encoding == {"type": "multiformation", "factor": 2}
    assert loaded.config["eval_cutmix"] == 0.5
    assert loaded.method == "idc" and torch.equal(loaded.images, s.images)
    assert loaded.decoded()[0].shape == (80, 1, 8, 8)
    # evaluation trains on the decoded images, with IDC's CutMix
    from fyi_apps.evaluate import EvalConfig, evaluate_synset

    res = evaluate_synset(loaded, digits, cfg=EvalConfig(epochs=1), seeds=[0], device="cpu")["convnet"]
    assert res.num_train == 80 and res.extra["config"]["cutmix"] == 0.5


def test_initialisation_tiles_downsampled_real_images(digits):
    d = Distiller(_cfg(ipc=1, iterations=1), digits, device="cpu")
    stored, labels = d.init_images()
    assert stored.shape == (10, 1, 8, 8) and labels.tolist() == list(range(10))
    # every 4x4 tile is the area-average of a real training image of the right class
    real = digits.normalize(digits.train.images)
    small = torch.nn.functional.interpolate(real, size=(4, 4), mode="area")
    for c in (0, 7):
        pool = small[digits.train.labels == c]
        for i in range(2):
            for j in range(2):
                tile = stored[c, :, 4 * i: 4 * i + 4, 4 * j: 4 * j + 4]
                assert (pool - tile).abs().flatten(1).amax(1).min() < 1e-5


def test_matching_loss_decreases_on_a_tiny_problem(digits):
    # Deterministic objective: one network kept for the whole run and not trained
    # (n_data=0), whole classes as the real batch, no augmentation.
    d, _ = _run(digits, ipc=1, iterations=16, init="noise", dsa=False, lr_img=0.01, batch_real=150,
                options={"n_data": 0, "fix_iter": 1000, "tune_lr_img": False})
    losses = [r["loss"] for r in d.log]
    assert all(math.isfinite(v) for v in losses)
    assert sum(losses[-4:]) / 4 < 0.85 * sum(losses[:4]) / 4, losses


def test_fyi_on_and_off_both_run_and_fyi_changes_the_result(digits):
    _, plain = _run(digits, ipc=1, iterations=2, lr_img=0.05, options={"tune_lr_img": False})
    _, flipped = _run(digits, ipc=1, iterations=2, lr_img=0.05, fyi="flip", options={"tune_lr_img": False})
    assert plain.images.shape == flipped.images.shape == (10, 1, 8, 8)
    assert torch.isfinite(plain.images).all() and torch.isfinite(flipped.images).all()
    assert flipped.fyi == "flip" and plain.fyi is None
    assert not torch.allclose(plain.images, flipped.images)


def test_resume_ends_identical_to_an_uninterrupted_run(digits, tmp_path):
    # fix_iter=3: the real-trained network and its optimiser's momentum live across the
    # checkpoint and shape iteration 3's matching (forgetting either makes this test fail)
    kw = dict(ipc=1, iterations=3, lr_img=0.05, options={"fix_iter": 3, "tune_lr_img": False})
    _, full = _run(digits, out=tmp_path / "full.fyi.safetensors", **kw)
    out = tmp_path / "resumed.fyi.safetensors"
    first = Distiller(_cfg(**kw), digits, device="cpu")
    assert first.run(out, progress=False, stop_after=1, write_report=False) is None
    assert first.checkpoint_path(out).exists()
    second = Distiller(_cfg(**kw), digits, device="cpu")
    resumed = second.run(out, resume=True, progress=False, write_report=False)
    assert second.start_iteration == 1
    assert torch.equal(resumed.images, full.images)


def test_presets_and_learning_rate_scaling(digits):
    cifar = resolve_config(DistillConfig(method="idc", dataset="cifar10", ipc=10))
    assert cifar.iterations == 2000 and cifar.batch_real == 64 and cifar.dsa is True
    assert cifar.lr_img == 5e-3
    assert cifar.options["metric"] == "mse" and cifar.options["n_data"] == 2000
    assert cifar.options["factor"] == 2 and cifar.options["inner_loop"] == 100
    fashion = resolve_config(DistillConfig(method="idc", dataset="fashion-mnist", ipc=10))
    assert fashion.options["metric"] == "l1" and fashion.lr_img == 1e-4
    # the reference's tune_lr_img: lr * ipc / 10 * (size / 32) ** 2
    d = Distiller(_cfg(ipc=5, lr_img=0.01), digits, device="cpu")
    assert d.method.lr_img == pytest.approx(0.01 * 0.5 * (8 / 32) ** 2)


def test_bad_options_are_one_line_errors(digits):
    with pytest.raises(FyiError, match="factor"):
        Distiller(_cfg(options={"factor": 3}), digits, device="cpu")
    with pytest.raises(FyiError, match="metric"):
        Distiller(_cfg(options={"metric": "l7"}), digits, device="cpu")
    with pytest.raises(FyiError, match="real images per class"):
        Distiller(_cfg(ipc=40, iterations=1), digits, device="cpu").run(None, progress=False)
