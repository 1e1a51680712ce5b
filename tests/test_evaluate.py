"""The evaluation protocol, the real-data baselines and the unequalness score."""
import pytest
import torch

from fyi_apps.baselines import herding_select, herding_subset, random_subset
from fyi_apps.errors import FyiError
from fyi_apps.evaluate import EvalConfig, evaluate_images, evaluate_synset
from fyi_apps.distill.score import unequalness, unequalness_curve

FAST = EvalConfig(epochs=60)


def test_random_subset_is_class_balanced_real_data(digits):
    s = random_subset(digits, 5, seed=1)
    assert s.images.shape == (50, 1, 8, 8) and s.ipc == 5 and s.method == "random"
    assert torch.bincount(s.labels, minlength=10).tolist() == [5] * 10
    idx = torch.tensor(s.extra["indices"])
    assert torch.equal(digits.train.labels[idx], s.labels)
    assert torch.allclose(s.images, digits.normalize(digits.train.images[idx]))
    assert not torch.equal(random_subset(digits, 5, seed=2).images, s.images)


def test_ipc_larger_than_a_class_is_refused(digits):
    smallest = min(digits.train.class_counts())
    with pytest.raises(FyiError, match=f"use ipc={smallest} or less"):
        random_subset(digits, smallest + 1)


def test_herding_select_tracks_the_mean():
    f = torch.tensor([[0.0, 0.0], [10.0, 0.0], [-10.0, 0.0], [1.0, 1.0], [-1.0, -1.0]])
    # mean is (0,0): the first pick is the point nearest to it, then the pair that cancels
    sel = herding_select(f, 3).tolist()
    assert sel[0] == 0 and set(sel[1:]) == {3, 4}


def test_herding_subset(digits):
    s = herding_subset(digits, 3, seed=0, feature_epochs=0, device="cpu")
    assert torch.bincount(s.labels, minlength=10).tolist() == [3] * 10
    assert s.method == "herding" and s.config["feature_epochs"] == 0
    again = herding_subset(digits, 3, seed=0, feature_epochs=0, device="cpu")
    assert again.extra["indices"] == s.extra["indices"]


def test_evaluation_beats_chance_clearly_and_is_reproducible(digits):
    s = random_subset(digits, 10, seed=0)
    r = evaluate_synset(s, digits, cfg=FAST, seeds=[0, 1], device="cpu")["convnet"]
    assert r.mean > 0.6  # chance is 0.1
    assert len(r.accs) == 2 and r.epochs == 60 and r.lr == 0.01
    again = evaluate_synset(s, digits, cfg=FAST, seeds=[0], device="cpu")["convnet"]
    assert again.accs[0] == r.accs[0]  # same seed, same machine: same result


def test_learned_lr_is_used_and_can_be_overridden(digits):
    s = random_subset(digits, 2, seed=0)
    s.lr = 0.003
    assert evaluate_synset(s, digits, cfg=EvalConfig(epochs=1), seeds=[0], device="cpu")["convnet"].lr == 0.003
    assert evaluate_synset(s, digits, cfg=EvalConfig(epochs=1, lr=0.05), seeds=[0], device="cpu")["convnet"].lr == 0.05


def test_mismatched_set_is_refused(digits):
    s = random_subset(digits, 2, seed=0)
    s.images = s.images.repeat(1, 3, 1, 1)
    with pytest.raises(FyiError, match="channel"):
        evaluate_synset(s, digits, cfg=EvalConfig(epochs=1), seeds=[0])
    with pytest.raises(FyiError, match="shape"):
        evaluate_images(torch.zeros(4, 1, 16, 16), torch.zeros(4, dtype=torch.long), digits, cfg=EvalConfig(epochs=1))


def test_nonfinite_training_is_a_clear_error(digits):
    s = random_subset(digits, 2, seed=0)
    s.images[0, 0, 0, 0] = float("nan")
    with pytest.raises(FyiError, match="training loss became nan"):
        evaluate_synset(s, digits, cfg=EvalConfig(epochs=2, dsa=False), seeds=[0], device="cpu")


def test_cutmix_and_bf16_paths_run(digits):
    s = random_subset(digits, 2, seed=0)
    r = evaluate_synset(s, digits, cfg=EvalConfig(epochs=3, cutmix=1.0, bf16=True), seeds=[0], device="cpu")
    assert 0.0 <= r["convnet"].mean <= 1.0


# ----------------------------------------------------------------------------- unequalness score
@pytest.mark.parametrize("distance", ["dm", "dc"])
def test_unequalness_is_zero_for_a_flip_closed_set(digits, distance):
    idx = torch.arange(0, 60)
    x = digits.normalize(digits.train.images[idx])
    y = digits.train.labels[idx]
    closed_x, closed_y = torch.cat([x, x.flip(-1)]), torch.cat([y, y])
    r_closed = unequalness(closed_x, closed_y, 10, distance=distance, num_nets=2, device="cpu")
    r_open = unequalness(x, y, 10, distance=distance, num_nets=2, device="cpu")
    assert r_closed["score"] < 1e-6 * max(r_open["score"], 1.0)
    assert r_open["score"] > 1e-3
    assert len(r_open["per_net"]) == 2


def test_unequalness_symmetric_images_score_zero_and_missing_classes_skipped():
    x = torch.randn(6, 3, 8, 8)
    x = x + x.flip(-1)  # every image equals its own mirror
    y = torch.tensor([0, 0, 1, 1, 3, 3])
    r = unequalness(x, y, 5, num_nets=1, device="cpu")
    assert r["score"] < 1e-8
    assert r["per_class"][2] is None and r["per_class"][4] is None


def test_unequalness_curve_shape(digits):
    rows = unequalness_curve(digits, sizes=(1, 20), num_nets=2, device="cpu")
    assert [r["ipc"] for r in rows] == [1, 20]
    assert rows[0]["score"] > rows[1]["score"]  # paper Fig. 3: larger subsets are closer to flip-equal
    with pytest.raises(FyiError, match="exceeds the smallest class"):
        unequalness_curve(digits, sizes=(10_000,))


def _train_once(arch, micro, cutmix=0.0):
    from fyi_apps.evaluate import train_network
    from fyi_apps.networks import create_model
    from fyi_apps.runtime import make_generator

    x, y = torch.randn(40, 1, 8, 8, generator=torch.Generator().manual_seed(0)), torch.arange(40) % 4
    net = create_model(arch, channels=1, num_classes=4, image_size=8, seed=3)
    cfg = EvalConfig(epochs=2, batch_size=32, dsa=False, cutmix=cutmix, micro_batch=micro)
    out = train_network(net, x, y, cfg, lr=0.05, generator=make_generator(0), device=torch.device("cpu"))
    return torch.cat([p.detach().flatten() for p in net.parameters()]), out["final_loss"]


@pytest.mark.parametrize("cutmix", [0.0, 1.0])
def test_micro_batches_give_the_whole_batch_update(cutmix):
    """Slicing a batch into micro-batches sums to the same gradient: same weights, same loss."""
    whole, loss_whole = _train_once("convnet", 0, cutmix)
    sliced, loss_sliced = _train_once("convnet", 5, cutmix)
    assert torch.allclose(whole, sliced, rtol=1e-4, atol=1e-5)
    assert loss_sliced == pytest.approx(loss_whole, rel=1e-4)
    assert not torch.equal(whole, _train_once("convnet", 0, abs(0.5 - cutmix))[0])  # the check can tell runs apart


def test_micro_batches_are_off_for_batchnorm_and_negative_is_refused():
    from fyi_apps.training import micro_batch_size
    from fyi_apps.networks import create_model

    cpu = torch.device("cpu")
    bn = create_model("ConvNetBN", channels=1, num_classes=4, image_size=8, seed=0)
    inorm = create_model("convnet", channels=1, num_classes=4, image_size=8, seed=0)
    assert micro_batch_size(EvalConfig(), bn, cpu) is None
    assert micro_batch_size(EvalConfig(), inorm, cpu) == 16
    assert micro_batch_size(EvalConfig(micro_batch=0), inorm, cpu) is None
    with pytest.raises(FyiError, match="micro_batch"):
        micro_batch_size(EvalConfig(micro_batch=-1), inorm, cpu)


def test_training_flushes_denormals_and_restores_the_mode():
    """Denormal activations (sigmoid nets without normalisation) are flushed while training, not after."""
    from fyi_apps.evaluate import train_network
    from fyi_apps.runtime import denormals_flushed, flush_denormals, make_generator

    assert not denormals_flushed()
    with flush_denormals():
        assert denormals_flushed()
        assert torch.tensor([1e-39]).mul(1.0).item() == 0.0
    assert not denormals_flushed() and torch.tensor([1e-39]).mul(1.0).item() > 0.0

    seen = []

    class Probe(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(4, 2)

        def forward(self, x):
            seen.append(denormals_flushed())
            return self.fc(x.flatten(1))

    x, y = torch.randn(8, 1, 2, 2), torch.tensor([0, 1] * 4)
    train_network(Probe(), x, y, EvalConfig(epochs=1, dsa=False), lr=0.1, generator=make_generator(0),
                  device=torch.device("cpu"))
    assert seen and all(seen)
    assert not denormals_flushed()
