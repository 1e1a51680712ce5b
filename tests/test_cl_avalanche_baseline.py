"""The er-ace-avalanche protocol: Avalanche's ER-ACE Split CIFAR-10 baseline settings, its pieces, and a tiny run."""
import argparse

import pytest
import torch

from fyi_apps.errors import FyiError
from fyi_apps.tasks import continual as cl
from fyi_apps.tasks.continual.augment import crop_flip
from fyi_apps.tasks.continual.benchmarks import class_order, make_benchmark
from test_data import write_cifar10


def test_crop_flip_pads_with_black_and_keeps_pixels():
    g = torch.Generator().manual_seed(0)
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    fill = torch.tensor([-1.0, -2.0, -3.0])
    outs = [crop_flip(x, g, fill, pad=2) for _ in range(20)]
    assert all(o.shape == x.shape for o in outs)
    for o in outs:
        for c in range(3):  # every pixel is the image's own (in place, shifted or mirrored) or the channel's black
            vals = set(o[:, c].flatten().tolist())
            assert vals <= set(x[:, c].flatten().tolist()) | {fill[c].item()}
    assert any(not torch.equal(o, x) for o in outs)
    a = crop_flip(x, torch.Generator().manual_seed(5), fill)
    assert torch.equal(a, crop_flip(x, torch.Generator().manual_seed(5), fill))  # seeded


def test_fixed_order_and_holdout(digits):
    assert class_order(10, 3, "fixed") == list(range(10))
    full = make_benchmark(digits, 5, seed=0, order_rule="fixed")
    held = make_benchmark(digits, 5, seed=0, order_rule="fixed", holdout=0.05)
    assert full.class_order == held.class_order == list(range(10))
    n_full = sum(len(e.dataset) for e in full.train_stream)
    n_held = sum(len(e.dataset) for e in held.train_stream)
    per_class = torch.bincount(digits.train.labels)
    assert n_held == n_full - sum(int(round(0.05 * int(n))) for n in per_class)
    assert sum(len(e.dataset) for e in held.test_stream) == len(digits.test)  # the test split is untouched
    with pytest.raises(FyiError, match="holdout"):
        make_benchmark(digits, 5, seed=0, holdout=1.5)


def test_the_cli_applies_the_preset_and_keeps_explicit_options(tmp_path):
    from fyi_apps.tasks.continual.cli import add_cl_arguments, configs_from_args

    p = argparse.ArgumentParser()
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(tmp_path))
    add_cl_arguments(p)
    cfg, = configs_from_args(p.parse_args(["--protocol", "er-ace-avalanche"]))
    assert (cfg.arch, cfg.strategy, cfg.lr, cfg.batch_size, cfg.batch_size_mem, cfg.train_epochs) == \
        ("slimresnet18:incremental=True", "er-ace", 0.1, 10, 10, 1)
    assert (cfg.momentum, cfg.weight_decay, cfg.holdout, cfg.drop_last, cfg.eval_batch_size) == (0.0, 0.0, 0.05, True, 64)
    assert (cfg.memories, cfg.ipc, cfg.seeds, cfg.order_rule, cfg.stream_aug) == \
        (["native"], 100, [0, 1, 2, 3, 4], "fixed", "crop-flip")
    cfg, = configs_from_args(p.parse_args(["--protocol", "er-ace-avalanche", "--memory", "random,dm", "--seeds", "3",
                                           "--stream-aug", "none"]))
    assert cfg.memories == ["random", "dm"] and cfg.seeds == [0, 1, 2] and cfg.stream_aug == "none"
    cfg, = configs_from_args(p.parse_args(["--protocol", "replay"]))  # other protocols keep their old defaults
    assert (cfg.arch, cfg.strategy, cfg.batch_size, cfg.momentum, cfg.order_rule) == ("convnet", "naive", 128, 0.9, "fyi")


def test_a_tiny_er_ace_avalanche_run_keeps_er_aces_own_buffer(tmp_path):
    write_cifar10(tmp_path, per_batch=24, n_test=20)  # 12 training images per class
    cfg = cl.CLConfig.for_protocol("er-ace-avalanche", seeds=[0], ipc=4, memories=["native", "random"])
    out = cl.run_experiment(cfg, root=tmp_path, device="cpu", progress=False)
    native, random_ = out["runs"]
    # ER-ACE's class-balanced buffer fills all 40 slots at once; our policy holds 4 per seen class
    assert [m["size"] for m in native["memory"]] == [min(40, 2 * 11 * (i + 1)) for i in range(5)][:1] + \
        [40] * 4 and native["memory"][0]["policy"] == "ClassBalancedBuffer"
    assert [m["size"] for m in random_["memory"]] == [8, 16, 24, 32, 40]
    assert random_["memory"][-1]["bytes"] == 4 * 40 * 3 * 32 * 32 and random_["memory"][-1]["bytes_uint8"] == 40 * 3072
    assert native["train"]["optimizer"] == "SGD momentum 0 wd 0" and native["train"]["stream_aug"] == "crop-flip"
    with pytest.raises(FyiError, match="native memory is ER-ACE's own buffer"):
        cl.run_experiment(cl.CLConfig(benchmark="split-cifar10", protocol="replay", strategy="naive", seeds=[0],
                                      ipc=4, memories=["native"], arch="mlp"), root=tmp_path, device="cpu",
                          progress=False)
