"""Continual learning: synthetic replay memories inside Avalanche (fyi_apps.tasks.continual).

Everything runs on the bundled digits split into 5 experiences of 2 classes,
with a small ConvNet and tiny budgets.
"""
import json
import warnings
from types import SimpleNamespace

import pytest
import torch

from fyi_apps.errors import FyiError

from fyi_apps.tasks import continual as cl

ARCH = "ConvNetW32"


@pytest.fixture(scope="module")
def bench(digits):
    return cl.make_benchmark(digits, 5, seed=0)


def _state():
    return SimpleNamespace(model=None, device=torch.device("cpu"), eval_mb_size=256, experience=None)


def _seen(bench, i):
    return sorted(c for cs in bench.experience_classes[: i + 1] for c in cs)


def _noise_synset(digits, per_class=4, seed=5):
    from fyi_apps.synset import SyntheticSet

    g = torch.Generator().manual_seed(seed)
    info = digits.info
    labels = torch.arange(info.num_classes).repeat_interleave(per_class)
    images = torch.randn(labels.numel(), info.channels, info.image_size, info.image_size, generator=g)
    return SyntheticSet(images=images, labels=labels, dataset=info.name, class_names=list(info.class_names),
                        mean=list(info.mean), std=list(info.std), method="noise", ipc=per_class)


# --------------------------------------------------------------------------- benchmarks
def test_class_order_is_fixed_by_seed_and_is_avalanches_split(digits):
    assert cl.class_order(10, 3) == cl.class_order(10, 3)
    assert cl.class_order(10, 3) != cl.class_order(10, 4)
    assert sorted(cl.class_order(10, 3)) == list(range(10))
    state = torch.random.get_rng_state()
    b = cl.make_benchmark(digits, 5, seed=3)
    assert torch.equal(state, torch.random.get_rng_state())  # the global RNG was not reseeded
    order = cl.class_order(10, 3)
    assert b.class_order == order
    assert b.experience_classes == [order[2 * i: 2 * i + 2] for i in range(5)]
    for i, exp in enumerate(b.train_stream):
        assert set(exp.classes_in_this_experience) == set(order[2 * i: 2 * i + 2])
        assert set(exp.dataset.targets.uniques) == set(order[2 * i: 2 * i + 2])
    # same classes in the test stream, images are the dataset's normalised floats
    x, y, t = cl.experience_tensors(b.test_stream[1].dataset)
    assert set(y.tolist()) == set(order[2:4]) and set(t.tolist()) == {0}
    pool = digits.normalize(digits.test.images[digits.test.labels == y[0]])
    assert any(torch.equal(x[0], r) for r in pool)


def test_split_fashion_mnist_when_present():
    from fyi_apps.data import load_dataset

    try:
        ds = load_dataset("fashion-mnist")
    except FyiError:
        pytest.skip("Fashion-MNIST files not present")
    b = cl.make_benchmark(ds, 5, seed=0, name="split-fashion-mnist")
    assert b.experience_classes == [cl.class_order(10, 0)[2 * i: 2 * i + 2] for i in range(5)]
    x, y, t = cl.experience_tensors(b.train_stream[4].dataset)
    assert x.shape[1:] == (1, 28, 28) and x.dtype == torch.float32
    assert set(y.tolist()) == set(b.experience_classes[4]) and len(y) == 12000


def test_benchmark_names_and_bad_splits(digits):
    assert cl.resolve_benchmark("split-cifar100-20") == ("split-cifar100", "cifar100", 20)
    assert cl.resolve_benchmark("split-cifar10") == ("split-cifar10", "cifar10", 5)
    assert cl.resolve_benchmark("Split-Digits", 2) == ("split-digits", "digits", 2)
    with pytest.raises(FyiError, match="unknown benchmark"):
        cl.resolve_benchmark("split-mnist-ish")
    with pytest.raises(FyiError, match="cannot be split"):
        cl.make_benchmark(digits, 3)


# --------------------------------------------------------------------------- the storage policy
def test_random_memory_holds_ipc_per_seen_class_with_task_labels(bench, digits):
    buf = cl.make_memory("random", ipc=3, num_classes=10, seed=0)
    assert buf.max_size == 30
    real = digits.normalize(digits.train.images)
    for i, exp in enumerate(bench.train_stream):
        buf.post_adapt(_state(), exp)
        seen = _seen(bench, i)
        assert buf.class_counts() == {c: 3 for c in seen}
        assert len(buf.buffer) == 3 * len(seen) <= buf.max_size
        ys = [int(buf.buffer[k][1]) for k in range(len(buf.buffer))]
        assert sorted(set(ys)) == seen
        x, y, t = buf.buffer[len(buf.buffer) - 1]
        assert int(t) == 0 and x.shape == (1, 8, 8)
    # random memory images are real training images of their class
    for k in range(0, len(buf.buffer), 7):
        x, y, _ = buf.buffer[k]
        pool = real[digits.train.labels == int(y)]
        assert any(torch.equal(x, r) for r in pool)
    # adding an experience again adds nothing (classes keep their images)
    before = buf.images.clone()
    buf.post_adapt(_state(), bench.train_stream[0])
    assert torch.equal(before, buf.images)


def test_memory_never_exceeds_max_size_including_resize(bench):
    with pytest.raises(FyiError, match="cannot hold"):
        cl.make_memory("random", ipc=3, max_size=2)
    buf = cl.make_memory("random", ipc=3, max_size=12)
    expected = [3, 3, 2, 1, 1]  # quota = min(ipc, 12 // seen classes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, exp in enumerate(bench.train_stream):
            buf.post_adapt(_state(), exp)
            assert len(buf.buffer) <= 12
            assert set(buf.class_counts().values()) == {expected[i]}
    full = cl.make_memory("random", ipc=3, num_classes=10)
    for exp in bench.train_stream:
        full.post_adapt(_state(), exp)
    first = {c: full.images[full.labels == c][:2].clone() for c in range(10)}
    full.resize(None, 20)
    assert full.max_size == 20 and len(full.buffer) == 20 and set(full.class_counts().values()) == {2}
    for c in range(10):  # resize keeps the first images of each class
        assert torch.equal(full.images[full.labels == c], first[c])
    full.resize(None, 7)
    assert len(full.buffer) == 0 and set(full.class_counts()) == set(range(10))


def test_task_labels_come_from_the_experience(digits):
    """With a task-incremental nc_benchmark, each class's memory items carry its experience's task label."""
    from avalanche.benchmarks.scenarios.deprecated.generators import nc_benchmark

    x = digits.normalize(digits.train.images)
    xt = digits.normalize(digits.test.images)
    train = cl._tensor_dataset(x, digits.train.labels)
    test = cl._tensor_dataset(xt, digits.test.labels)
    order = cl.class_order(10, 1)
    b = nc_benchmark(train, test, 5, task_labels=True, fixed_class_order=order)
    buf = cl.make_memory("random", ipc=2, num_classes=10)
    for exp in b.train_stream:
        buf.post_adapt(_state(), exp)
    for k in range(len(buf.buffer)):
        _, y, t = buf.buffer[k]
        assert int(t) == order.index(int(y)) // 2


def test_mode_a_images_come_from_the_synthetic_set_file(bench, digits, tmp_path):
    from fyi_apps.synset import save_synset

    syn = _noise_synset(digits)
    path = tmp_path / "noise.fyi.safetensors"
    save_synset(path, syn)
    buf = cl.make_memory(f"file:{path}", ipc=3, num_classes=10)
    for i, exp in enumerate(bench.train_stream):
        buf.post_adapt(_state(), exp)
        assert buf.class_counts() == {c: 3 for c in _seen(bench, i)}
    for c in range(10):
        assert torch.equal(buf.images[buf.labels == c], syn.images[syn.labels == c][:3])
    with pytest.raises(FyiError, match="normalised with mean"):
        other = SimpleNamespace(name="other", channels=1, image_size=8, mean=(0.5,), std=(0.2,))
        cl.make_memory(f"file:{path}", ipc=3, num_classes=10, info=other)
    with pytest.raises(FyiError, match="px images"):
        cl.make_memory(f"file:{path}", ipc=3, num_classes=10,
                       info=SimpleNamespace(name="big", channels=3, image_size=32, mean=(0,) * 3, std=(1,) * 3))
    assert len(cl.make_memory(f"file:{path}", ipc=3, num_classes=10, info=digits.info).source.images) == 40
    with pytest.raises(FyiError, match=r"has 4 image\(s\) of class 0 but the memory keeps 5 per class; use ipc=4"):
        cl.make_memory(str(path), ipc=5, num_classes=10)  # refused when the memory is built, before any training
    with pytest.raises(FyiError, match="does not exist"):
        cl.make_memory(f"file:{tmp_path / 'missing.safetensors'}", ipc=1, num_classes=10)
    with pytest.raises(FyiError, match="unknown memory kind"):
        cl.make_memory("dm+flop", ipc=1, num_classes=10, info=digits.info)
    with pytest.raises(FyiError, match="online distillation supports"):
        cl.OnlineDistillation("idc", info=digits.info)


@pytest.mark.parametrize("kind,options", [("dm+fyi", None), ("dsa", {"outer_loop": 1, "inner_loop": 1})])
def test_mode_b_online_distillation_keeps_original_labels(bench, digits, kind, options):
    buf = cl.make_memory(kind, ipc=2, num_classes=10, info=digits.info, iterations=3, batch_real=16, arch=ARCH,
                         distill_options=options, device="cpu")
    real = digits.normalize(digits.train.images)
    for i, exp in enumerate(list(bench.train_stream)[:2]):
        buf.post_adapt(_state(), exp)
        assert buf.class_counts() == {c: 2 for c in _seen(bench, i)}
    for c in _seen(bench, 1):
        imgs = buf.images[buf.labels == c]
        pool = real[digits.train.labels == c]
        # initialised from real images of class c, then optimised: close to them, but none is a real image now
        assert not any(torch.equal(im, r) for im in imgs for r in pool)
        assert torch.isfinite(imgs).all()
    log = buf.source.log
    assert [sorted(r["classes"]) for r in log] == [sorted(bench.experience_classes[0]), sorted(bench.experience_classes[1])]
    assert all(r["iterations"] == 3 for r in log)
    method, _, fyi = kind.partition("+")
    assert log[0]["config"]["method"] == method and log[0]["config"]["fyi"] == ("flip" if fyi else None)


def test_dataset_from_tensors_round_trips_uint8(digits):
    x = digits.normalize(digits.train.images)
    sub = cl.dataset_from_tensors(x, digits.train.labels, digits.info, classes=[7, 2])
    assert sub.info.class_names == (digits.info.class_names[7], digits.info.class_names[2])
    assert torch.equal(sub.train.images[sub.train.labels == 0], digits.train.images[digits.train.labels == 7])
    assert torch.equal(sub.train.images[sub.train.labels == 1], digits.train.images[digits.train.labels == 2])


# --------------------------------------------------------------------------- inside Avalanche strategies
class _Recorder:
    """A plugin that records every training minibatch with the memory at that moment."""

    def __new__(cls, buffer):
        from avalanche.core import SupervisedPlugin

        class Recorder(SupervisedPlugin):
            def __init__(self):
                super().__init__()
                self.batches = []

            def before_forward(self, strategy, **kwargs):
                self.batches.append((strategy.clock.train_exp_counter, strategy.mb_x.detach().cpu().clone(),
                                     strategy.mb_y.cpu().clone(), strategy.mb_task_id.cpu().clone(),
                                     buffer.images.clone()))

        return Recorder()


@pytest.mark.parametrize("strategy,kind", [("naive", "file"), ("lwf", "herding"), ("ewc", "random")])
def test_buffer_in_avalanche_strategies_feeds_training_batches(bench, digits, tmp_path, strategy, kind):
    from fyi_apps.networks import create_model
    from fyi_apps.synset import save_synset

    model = create_model(ARCH, channels=1, num_classes=10, image_size=8, seed=0)
    if kind == "file":
        path = tmp_path / "noise.fyi.safetensors"
        save_synset(path, _noise_synset(digits))
        kind = f"file:{path}"
    buf = cl.make_memory(kind, ipc=2, num_classes=10, model=model, device="cpu")
    rec = _Recorder(buf)
    out = cl.run_replay(bench, buf, model=model, strategy=strategy, epochs=1, batch_size=64, seed=0, device="cpu",
                        extra_plugins=[rec])
    assert len(buf.buffer) == 20 and set(buf.class_counts().values()) == {2}
    assert [m["size"] for m in out["memory"]] == [4, 8, 12, 16, 20]
    for e in range(1, 5):
        batches = [b for b in rec.batches if b[0] == e]
        assert batches
        old = set(_seen(bench, e - 1))
        labels = torch.cat([b[2] for b in batches]).tolist()
        assert old & set(labels), f"no old-class label in the minibatches of experience {e}"
        assert all(int(t) == 0 for b in batches for t in b[3])
        if kind.startswith("file:"):  # noise images exist only in the memory: they were in the batches
            mem = batches[0][4]
            rows = torch.cat([b[1] for b in batches])
            hits = sum(bool((rows == m).flatten(1).all(1).any()) for m in mem)
            assert hits == mem.shape[0]
    assert len(rec.batches[0][2]) and all(int(y) in bench.experience_classes[0] for y in rec.batches[0][2])
    s = cl.summarize(out, bench.experience_classes)
    assert s["classes_seen"] == [2, 4, 6, 8, 10]
    assert all(0.0 <= a <= 1.0 for a in s["stream_acc"])
    assert s["acc_matrix"][4][4] is not None and s["acc_matrix"][0][1] is None
    f = s["forgetting_matrix"][4][0]
    assert f == pytest.approx(s["acc_matrix"][0][0] - s["acc_matrix"][4][0])


# --------------------------------------------------------------------------- protocol 1 and the CLI
def test_gdumb_protocol_structure_and_accuracy(bench):
    from fyi_apps.evaluate import EvalConfig

    buf = cl.make_memory("random", ipc=5, num_classes=10, seed=0)
    out = cl.run_gdumb(bench, buf, arch=ARCH, cfg=EvalConfig(epochs=60, lr=0.01), seed=0, device="cpu")
    assert out["protocol"] == "gdumb" and len(out["history"]) == 5
    assert [m["size"] for m in out["memory"]] == [10, 20, 30, 40, 50]
    last = out["history"][-1]
    assert set(last) == ({cl.KEY_STREAM_ACC, cl.KEY_STREAM_FORGET}
                         | {f"Top1_Acc_Exp/eval_phase/test_stream/Exp{j:03d}" for j in range(5)}
                         | {f"ExperienceForgetting/eval_phase/test_stream/Exp{j:03d}" for j in range(4)})
    s = cl.summarize(out, bench.experience_classes)
    assert s["final_acc"] > 0.4  # chance is 0.1
    assert s["stream_acc"][0] > 0.8  # two classes
    assert s["final_forgetting"] == pytest.approx(
        sum(s["acc_matrix"][j][j] - s["acc_matrix"][4][j] for j in range(4)) / 4)
    agg = cl.aggregate([{**out, "buffer": "random", "seed": 0, "seconds": 1.0, "summary": s}])
    assert agg["random"]["final_acc"] == pytest.approx(s["final_acc"])
    assert agg["random"]["curve_mean"] == pytest.approx(s["stream_acc"])


def test_cli_cl_writes_json_csv_png(tmp_path, capsys):
    from fyi_apps.cli import main

    argv = ["cl", "--benchmark", "split-digits", "--buffer", "random,herding,dm+fyi", "--ipc", "2", "--seeds", "2",
            "--epochs", "2", "--arch", ARCH, "--herding-epochs", "0", "--iterations", "2", "--batch-real", "dm=8",
            "--out", str(tmp_path), "--quiet", "--device", "cpu"]
    rc = main(argv)
    assert rc == 0
    text = capsys.readouterr().out
    assert "random" in text and "herding" in text and "dm+fyi" in text and "final acc" in text
    stem = tmp_path / "cl" / "split-digits-5_gdumb_ipc2"
    payload = json.loads(stem.with_suffix(".json").read_text())
    assert set(payload["aggregate"]) == {"random", "herding", "dm+fyi"}
    assert payload["config"]["iterations"] == {"dm": 2, "dsa": 2, "dc": 2}
    assert payload["config"]["batch_real"]["dm"] == 8
    dm_run = next(r for r in payload["runs"] if r["buffer"] == "dm+fyi")
    assert dm_run["distill_config"]["batch_real"] == 8 and dm_run["distill_config"]["fyi"] == "flip"
    assert [d["iterations"] for d in dm_run["distillation"]] == [2] * 5
    assert [r["benchmark"]["class_order"] for r in payload["runs"][:2]] == [cl.class_order(10, 0), cl.class_order(10, 1)]
    assert payload["versions"]["avalanche-lib"] == "0.6.0" and payload["command"].startswith("fyi ")
    assert payload["config"]["seeds"] == [0, 1] and payload["config"]["ipc"] == 2
    rows = stem.with_suffix(".csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 3 * 2 * 5
    assert stem.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    # the same command again reuses the finished runs (files under OUT/cl/runs), with identical results
    runs = sorted((tmp_path / "cl" / "runs").glob("*.json"))
    assert len(runs) == 6
    stamp = {p: p.stat().st_mtime_ns for p in runs}
    assert main(argv) == 0
    again = json.loads(stem.with_suffix(".json").read_text())
    assert again["aggregate"] == payload["aggregate"]
    assert {p: p.stat().st_mtime_ns for p in runs} == stamp
    capsys.readouterr()
    rc = main(["cl", "--benchmark", "split-digits", "--buffer", "dm+flip", "--seeds", "1", "--out", str(tmp_path)])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown memory kind" in err[0]


@pytest.mark.parametrize("k", [1, 7, 40])
def test_first_k_herding_picks_what_avalanches_full_ranking_picks_first(k):
    from avalanche.training.storage_policy import HerdingSelectionStrategy

    from fyi_apps.tasks.continual import FirstKHerding

    feats = torch.randn(40, 12, generator=torch.Generator().manual_seed(k))
    full = HerdingSelectionStrategy(torch.nn.Identity(), "").make_sorted_indices_from_features(feats)
    ours = FirstKHerding(torch.nn.Identity(), "", k=k).make_sorted_indices_from_features(feats)
    assert ours[:k] == full[:k]
    assert sorted(ours) == list(range(40))
    assert ours[:k] != list(range(k))  # herding is not the identity order on random features
