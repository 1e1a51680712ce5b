"""Continual learning beyond GDumb: ER-ACE with our memory, offline memories from files (LABEL:PATH),
the registries, and the DM paper's protocol end to end on a CIFAR-100 stand-in."""
import json
import pickle

import numpy as np
import pytest
import torch

from fyi_apps.errors import FyiError
from fyi_apps.tasks import continual as cl

ARCH = "ConvNetW32"


@pytest.fixture(scope="module")
def bench(digits):
    return cl.make_benchmark(digits, 5, seed=0)


def _noise_synset(info, per_class=4, seed=5, shift=0.0):
    from fyi_apps.synset import SyntheticSet

    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(info.num_classes).repeat_interleave(per_class)
    images = torch.randn(labels.numel(), info.channels, info.image_size, info.image_size, generator=g) + shift
    return SyntheticSet(images=images, labels=labels, dataset=info.name, class_names=list(info.class_names),
                        mean=list(info.mean), std=list(info.std), method="noise", ipc=per_class)


# --------------------------------------------------------------------------- ER-ACE
def test_er_ace_fills_the_memory_before_each_experience_and_replays_it(bench, digits, tmp_path):
    from avalanche.core import SupervisedPlugin

    from fyi_apps.networks import create_model
    from fyi_apps.synset import save_synset

    path = tmp_path / "noise.safetensors"
    save_synset(path, _noise_synset(digits.info))
    memory = cl.make_memory(f"noise:{path}", ipc=2, num_classes=10)
    assert memory.source.label == "noise"

    class Spy(SupervisedPlugin):
        def __init__(self):
            super().__init__()
            self.rows, self.filled = {}, {}

        def before_training_exp(self, strategy, **kwargs):
            self.filled[strategy.clock.train_exp_counter] = set(memory.class_counts())

        def after_forward(self, strategy, **kwargs):
            if strategy.replay_loader is not None:
                e = strategy.clock.train_exp_counter
                self.rows.setdefault(e, []).append(strategy.mb_buffer_x.detach().cpu().clone())

    spy = Spy()
    model = create_model(ARCH, channels=1, num_classes=10, image_size=8, seed=0)
    out = cl.run_replay(bench, memory, model=model, strategy="er-ace", epochs=1, batch_size=32, seed=0,
                        device="cpu", extra_plugins=[spy], batch_size_mem=8)
    assert type(out) is dict and out["train"]["strategy"] == "er-ace" and out["train"]["batch_size_mem"] == 8
    # ER-ACE adds the experience's classes before training on it (ReplayPlugin adds them after)
    for e in range(5):
        assert spy.filled[e] == set(c for cs in bench.experience_classes[: e + 1] for c in cs)
    assert [m["size"] for m in out["memory"]] == [4, 8, 12, 16, 20]
    assert 0 not in spy.rows and set(spy.rows) == {1, 2, 3, 4}  # replay from the second experience on
    for e in (1, 4):  # every replayed row is a memory image (noise exists nowhere else)
        rows = torch.cat(spy.rows[e])
        mem = memory.images
        assert all(bool((mem == r).flatten(1).all(1).any()) for r in rows[:50])
    s = cl.summarize(out, bench.experience_classes)
    assert s["classes_seen"] == [2, 4, 6, 8, 10] and s["final_forgetting"] is not None
    assert s["final_acc"] == pytest.approx(s["stream_acc"][-1]) and 0.0 <= s["final_acc"] <= 1.0


def test_er_ace_default_memory_batch_lets_it_replay_from_the_second_experience(monkeypatch):
    """ER-ACE replays only once the memory holds batch_size_mem images; the protocol's default guarantees it."""
    import fyi_apps.tasks.continual.protocols as protocols

    seen = {}
    monkeypatch.setattr(protocols, "run_replay", lambda bench, memory, **kw: seen.update(kw) or {})
    fake_bench = type("B", (), {"experience_classes": [[0, 1], [2, 3]]})()
    cfg = cl.CLConfig(protocol="replay", strategy="er-ace", ipc=3, batch_size=128)
    cl.StreamReplay().run(cfg, fake_bench, None, model=None, seed=0, device="cpu", progress=False)
    assert seen["batch_size_mem"] == 2 * 2 * 3 and seen["strategy"] == "er-ace"
    cl.StreamReplay().run(cl.CLConfig(protocol="replay", strategy="naive"), fake_bench, None, model=None, seed=0,
                          device="cpu", progress=False)
    assert seen["batch_size_mem"] is None  # ReplayPlugin's own rule


# --------------------------------------------------------------------------- memory specs and registries
def test_memory_specs():
    p = cl.parse_memory_spec
    assert p("dm+fyi") == cl.MemorySpec("dm+fyi", "dm+fyi", "dm", "fyi")
    assert p("dm+fyi:vflip").variant == "fyi:vflip" and not p("dm+fyi:vflip").is_file
    s = p("dm-2000it:results/dm_ipc10.safetensors")
    assert (s.label, s.kind, s.path) == ("dm-2000it", "file", "results/dm_ipc10.safetensors")
    assert p("file:x.safetensors").label == "file:x.safetensors" and p("x.safetensors").kind == "file"
    assert cl.memory_label("dm+fyi:sets/a.safetensors") == "dm+fyi"
    with pytest.raises(FyiError, match="memory label"):
        p("a b:x.safetensors")


def test_a_new_memory_kind_is_one_decorated_class(bench, digits):
    from fyi_apps.tasks.continual.memory import MemorySource
    from fyi_apps.tasks.continual.registry import MEMORIES

    @cl.register_memory("test-constant")
    class Constant(MemorySource):
        needs_data = False

        @classmethod
        def from_spec(cls, spec, opts):
            return cls()

        def select(self, classes, per_class, x, y, *, agent_state=None, experience=None):
            labels = torch.tensor(classes).repeat_interleave(per_class)
            return labels.float().view(-1, 1, 1, 1).expand(-1, 1, 8, 8).clone(), labels

    try:
        memory = cl.make_memory("test-constant", ipc=2, num_classes=10)
        state = type("S", (), {"device": torch.device("cpu")})()
        memory.post_adapt(state, bench.train_stream[0])
        c = bench.experience_classes[0][0]
        assert torch.equal(memory.images[memory.labels == c], torch.full((2, 1, 8, 8), float(c)))
        with pytest.raises(FyiError, match="unknown memory kind"):
            cl.make_memory("test-constant+fyi", ipc=2, num_classes=10)
    finally:
        MEMORIES.unregister("test-constant")
    with pytest.raises(FyiError, match="unknown memory kind"):
        cl.make_memory("test-constant", ipc=2, num_classes=10)
    with pytest.raises(FyiError, match="unknown options"):
        cl.make_memory("random", ipc=2, num_classes=10, herding_epoch=3)
    with pytest.raises(FyiError, match="unknown strategy"):
        cl.make_strategy("naïve", torch.nn.Linear(2, 2), None)
    with pytest.raises(FyiError, match="unknown protocol"):
        cl.CLConfig.for_protocol("gdump")
    assert {"gdumb", "dm-paper", "replay"} <= set(cl.list_protocols())
    assert {"naive", "ewc", "lwf", "er-ace"} <= set(cl.list_strategies())


def test_distillation_options_are_split_by_method_and_typos_refused():
    from fyi_apps.distill import option_names

    opts = {"outer_loop": 5, "inner_loop": 10}
    assert cl.method_options("dsa", opts) == {k: v for k, v in opts.items() if k in option_names("dsa")}
    assert set(cl.method_options("dm", opts)) <= set(option_names("dm"))
    with pytest.raises(FyiError, match="outer_lop"):
        cl.method_options("dm", {"outer_lop": 10})
    with pytest.raises(FyiError, match="outer_lop"):  # refused before anything runs, whatever the memories
        cl.run_experiment(cl.CLConfig(benchmark="split-digits", memories=["random"], distill_options={"outer_lop": 1}),
                          device="cpu", progress=False)


# --------------------------------------------------------------------------- offline memories in experiments
def test_offline_memories_by_label_and_their_cache_follows_the_file(digits, tmp_path):
    from fyi_apps.synset import save_synset
    from fyi_apps.tasks.continual.experiment import _run_key

    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    save_synset(a, _noise_synset(digits.info, seed=1))
    save_synset(b, _noise_synset(digits.info, seed=2, shift=0.5))
    cfg = cl.CLConfig(benchmark="split-digits", memories=[f"dm-2000it:{a}", f"noise:{b}"], ipc=2, seeds=[0],
                      arch=ARCH, epochs=2)
    runs = tmp_path / "runs"
    payload = cl.run_experiment(cfg, out=tmp_path / "x", device="cpu", progress=False, resume_dir=runs)
    assert list(payload["aggregate"]) == ["dm-2000it", "noise"]
    rec = payload["runs"][0]
    assert rec["buffer"] == "dm-2000it" and rec["memory_spec"] == f"dm-2000it:{a}"
    assert rec["memory_policy"]["label"] == "dm-2000it" and rec["memory_policy"]["source"]["path"] == str(a)
    assert "dm-2000it" in cl.results_table(payload["aggregate"])
    cached = sorted(runs.glob("*.json"))
    assert len(cached) == 2 and all("dm-2000it" in p.name or "noise" in p.name for p in cached)
    # a different file under the same path is a different run: the cache does not serve the old result
    key_before = _run_key(cfg, f"dm-2000it:{a}", 0)
    save_synset(a, _noise_synset(digits.info, seed=3))
    assert _run_key(cfg, f"dm-2000it:{a}", 0) != key_before
    assert _run_key(cfg, "random", 0) == _run_key(cfg, "random", 0)
    # ... and the same bytes elsewhere are the same run (a committed cache serves any clone)
    moved = tmp_path / "moved" / "a.safetensors"
    moved.parent.mkdir()
    moved.write_bytes(a.read_bytes())
    assert _run_key(cfg, f"dm-2000it:{moved}", 0) == _run_key(cfg, f"dm-2000it:{a}", 0)
    assert _run_key(cfg, f"other:{moved}", 0) != _run_key(cfg, f"dm-2000it:{a}", 0)
    with pytest.raises(FyiError, match="two memories are named"):
        cl.run_experiment(cl.CLConfig(benchmark="split-digits", memories=[f"n:{a}", f"n:{b}"], ipc=2, seeds=[0]),
                          device="cpu", progress=False)


def test_run_keys_of_older_configs_are_unchanged():
    """Fields added with the package (order_rule, batch_size_mem, train_per_class, ...) leave older runs' cache keys alone."""
    import dataclasses
    import hashlib

    from fyi_apps.tasks.continual.experiment import _run_key

    cfg = cl.CLConfig()
    d = dataclasses.asdict(cfg)
    for k in ("memories", "seeds", "distill_cache", "order_rule", "batch_size_mem", "train_per_class", "dsa_mode",
              "stream_aug", "momentum", "weight_decay", "holdout", "drop_last", "eval_batch_size"):
        d.pop(k)  # fields the older configs did not have
    d.update(buffer="dm", seed=1)
    old = hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:20]
    assert _run_key(cfg, "dm", 1) == old
    assert _run_key(dataclasses.replace(cfg, order_rule="numpy"), "dm", 1) != old
    assert _run_key(dataclasses.replace(cfg, train_per_class=1000), "dm", 1) != old
    assert _run_key(dataclasses.replace(cfg, momentum=0.0), "dm", 1) != old


# --------------------------------------------------------------------------- the DM paper's protocol
def _write_cifar100_standin(root, train_per_class=20, test_per_class=1, seed=0):
    """CIFAR-100's on-disk format (torchvision's ``cifar-100-python`` pickles) with random pixels."""
    from fyi_apps.data import CIFAR100_CLASSES

    rng = np.random.RandomState(seed)
    d = root / "cifar-100-python"
    d.mkdir(parents=True)
    for name, per in (("train", train_per_class), ("test", test_per_class)):
        fine = [c for c in range(100) for _ in range(per)]
        rng.shuffle(fine)
        data = rng.randint(0, 256, size=(len(fine), 3072)).astype(np.uint8)
        data[:, 0] = np.asarray(fine, dtype=np.uint8) * 2  # a class signal in the first red pixel
        with open(d / name, "wb") as f:
            pickle.dump({"filenames": [f"x{i}.png" for i in range(len(fine))], "fine_labels": fine,
                         "coarse_labels": [v // 5 for v in fine], "data": data}, f)
    with open(d / "meta", "wb") as f:
        pickle.dump({"fine_label_names": list(CIFAR100_CLASSES),
                     "coarse_label_names": [f"super{i}" for i in range(20)]}, f)


def test_dm_paper_protocol_end_to_end_on_a_cifar100_standin(tmp_path, capsys, monkeypatch):
    from fyi_apps.cli import main

    monkeypatch.delenv("FYI_DATA", raising=False)
    _write_cifar100_standin(tmp_path / "data")
    argv = ["cl", "--benchmark", "split-cifar100", "--protocol", "dm-paper", "--memory", "random", "--seeds", "1",
            "--epochs", "1", "--arch", ARCH, "--data-root", str(tmp_path / "data"), "--out", str(tmp_path / "o"),
            "--quiet", "--device", "cpu"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "5 experiences" in text and "10 experiences" in text and "dm-paper" in text
    state = np.random.get_state()
    np.random.seed(0)
    reference = [int(c) for c in np.random.permutation(100)]  # CL_DM.py's class order for k = 0
    np.random.set_state(state)
    for steps in (5, 10):
        payload = json.loads((tmp_path / "o" / "cl" / f"split-cifar100-{steps}_dm-paper_ipc20.json").read_text())
        c = payload["config"]
        assert (c["ipc"], c["epochs"], c["lr"], c["dsa"], c["order_rule"]) == (20, 1, 0.01, True, "numpy")
        assert payload["n_experiences"] == steps and payload["dataset"] == "cifar100"
        run = payload["runs"][0]
        assert run["benchmark"]["class_order"] == reference
        per = 100 // steps
        assert run["benchmark"]["experience_classes"][1] == reference[per:2 * per]
        assert [m["size"] for m in run["memory"]] == [20 * per * (i + 1) for i in range(steps)]
        assert run["train"]["eval_config"]["epochs"] == 1 and run["train"]["eval_config"]["dsa"] is True
        assert len(run["summary"]["stream_acc"]) == steps
    # the paper's defaults where the user gives nothing
    from fyi_apps.tasks.continual.cli import configs_from_args

    args = type("A", (), dict(protocol="dm-paper", benchmark=None, seeds=None, seed=0, memory="dm", distill_option=[],
                              experiences=None, ipc=None, epochs=None, lr=None, no_dsa=False, class_order=None,
                              arch="convnet", lr_img=None, herding_epochs=1, strategy="naive", train_epochs=3,
                              batch_size=128, bf16=False, batch_size_mem=None, iterations=None, batch_real=None,
                              fresh=True, out=str(tmp_path)))()
    cfgs = configs_from_args(args)
    assert [(c.benchmark, c.experiences, c.ipc, c.epochs, c.seeds, c.order_rule) for c in cfgs] == [
        ("split-cifar100", 5, 20, 1000, [0, 1, 2, 3, 4], "numpy"), ("split-cifar100", 10, 20, 1000, [0, 1, 2, 3, 4], "numpy")]


def test_cl_cli_memory_flag_and_er_ace(tmp_path, capsys):
    from fyi_apps.cli import main

    argv = ["cl", "--benchmark", "split-digits", "--memory", "random", "--protocol", "replay", "--strategy", "er-ace",
            "--ipc", "2", "--seeds", "1", "--train-epochs", "1", "--batch-size", "32", "--arch", ARCH,
            "--out", str(tmp_path), "--quiet", "--device", "cpu"]
    assert main(argv) == 0
    assert "replay protocol (er-ace)" in capsys.readouterr().out
    payload = json.loads((tmp_path / "cl" / "split-digits-5_replay_ipc2.json").read_text())
    assert payload["config"]["strategy"] == "er-ace" and payload["runs"][0]["train"]["batch_size_mem"] == 8
    assert main(["cl", "--benchmark", "split-digits", "--strategy", "er-ac", "--protocol", "replay",
                 "--memory", "random", "--out", str(tmp_path)]) == 2
    assert "unknown strategy" in capsys.readouterr().err


# --------------------------------------------------------------------------- a reduced benchmark
def test_reduced_dataset_is_a_fixed_per_class_subset(digits):
    small = digits.reduced(20)
    assert small.train.class_counts() == [20] * 10
    assert small.test is digits.test and "20 training images per class" in small.source
    assert torch.equal(small.train.images, digits.reduced(20).train.images)  # same seed, same subset
    assert not torch.equal(small.train.images, digits.reduced(20, seed=1).train.images)
    # every kept image is one of the class's own training images
    full = {(bytes(x.numpy().tobytes()), int(y)) for x, y in zip(digits.train.images, digits.train.labels)}
    assert all((bytes(x.numpy().tobytes()), int(y)) in full for x, y in zip(small.train.images, small.train.labels))
    with pytest.raises(FyiError, match="larger than class .* training images; use"):
        digits.reduced(10_000)
    with pytest.raises(FyiError, match="train_per_class must be"):
        digits.reduced(0)


def test_train_per_class_reduces_the_stream_and_the_memory_sources(digits, tmp_path, capsys):
    from fyi_apps.cli import main

    base = ["cl", "--benchmark", "split-digits", "--memory", "random", "--ipc", "2", "--seeds", "1",
            "--protocol", "replay", "--strategy", "naive", "--train-epochs", "1", "--batch-size", "16",
            "--arch", "ConvNetW32", "--out", str(tmp_path), "--quiet", "--device", "cpu"]
    assert main(base + ["--train-per-class", "12"]) == 0
    payload = json.loads((tmp_path / "cl" / "split-digits-5_replay_ipc2.json").read_text())
    run = payload["runs"][0]
    assert payload["config"]["train_per_class"] == 12
    assert "12 training images per class" in payload["source"] and "12 training images" in run["benchmark"]["source"]
    # the stream is 12 images per class: Avalanche's experiences hold 2 classes x 12 images
    bench = cl.make_benchmark(digits.reduced(12), 5, seed=0)
    assert [len(e.dataset) for e in bench.train_stream] == [24] * 5
    capsys.readouterr()
    assert main(base + ["--train-per-class", "0"]) == 2
    assert "--train-per-class" in capsys.readouterr().err


def test_gdumb_dsa_mode_reaches_the_memory_training(tmp_path, capsys):
    from fyi_apps.cli import main
    from fyi_apps.tasks.continual.experiment import _run_key

    argv = ["cl", "--benchmark", "split-digits", "--memory", "random", "--ipc", "2", "--seeds", "1", "--epochs", "1",
            "--arch", "ConvNetW32", "--out", str(tmp_path), "--quiet", "--device", "cpu", "--dsa-mode", "fyi"]
    assert main(argv) == 0
    run = json.loads((tmp_path / "cl" / "split-digits-5_gdumb_ipc2.json").read_text())["runs"][0]
    assert run["train"]["eval_config"]["dsa_mode"] == "fyi"
    cfg = cl.CLConfig()
    import dataclasses
    assert _run_key(dataclasses.replace(cfg, dsa_mode="fyi"), "random", 0) != _run_key(cfg, "random", 0)
    capsys.readouterr()
    assert main(argv[:-1] + ["sometimes"]) == 2
    assert "--dsa-mode" in capsys.readouterr().err


@pytest.mark.parametrize("field, value, message", [("dsa_mode", "mirror", "dsa_mode must be one of"),
                                                   ("train_per_class", 0, "train_per_class must be")])
def test_cl_config_fields_are_checked_before_any_run(field, value, message):
    cfg = cl.CLConfig(benchmark="split-digits", memories=["random"], ipc=2, seeds=[0], **{field: value})
    with pytest.raises(FyiError, match=message):
        cl.run_experiment(cfg, device="cpu", progress=False)


def test_the_old_field_name_buffers_warns_and_still_works():
    """``CLConfig.buffers`` became ``memories`` (one word per concept); the old keyword and attribute warn."""
    import dataclasses

    from fyi_apps.deprecated import FyiDeprecationWarning

    with pytest.warns(FyiDeprecationWarning, match=r"buffers=.*use CLConfig\(memories="):
        cfg = cl.CLConfig(buffers=["random"])
    assert cfg.memories == ["random"] and "buffers" not in dataclasses.asdict(cfg)
    with pytest.warns(FyiDeprecationWarning):
        assert cfg.buffers == ["random"]
    with pytest.warns(FyiDeprecationWarning):
        cfg.buffers = ["dm"]
    assert cfg.memories == ["dm"]
    with pytest.warns(FyiDeprecationWarning):
        assert cl.CLConfig.for_protocol("gdumb", buffers=["herding"]).memories == ["herding"]
    with pytest.raises(TypeError, match="both"):
        cl.CLConfig(buffers=["random"], memories=["dm"])
