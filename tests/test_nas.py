"""NAS proxies: the DC search space, the sampler, rank statistics, resume, torchrun sharding."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from fyi_apps.errors import FyiError
from fyi_apps.networks import ConvNet, create_model
from fyi_apps.tasks import nas
from fyi_apps.tasks.nas import NasConfig, rank_stats, run_ranking, runner, sample_candidates

# ------------------------------------------------------------------ the space

_NORM_LAYER = {"none": None, "batch": nn.BatchNorm2d, "layer": nn.LayerNorm, "instance": nn.GroupNorm,
               "group": nn.GroupNorm}
_POOL_LAYER = {"none": None, "max": nn.MaxPool2d, "avg": nn.AvgPool2d}
_ACT_LAYER = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU, "leakyrelu": nn.LeakyReLU}


def _knobs(name: str) -> dict:
    base, opts = name.split(":")
    assert base == "convnet"
    return dict(kv.split("=") for kv in opts.split(","))


def test_dc_space_has_720_distinct_networks_that_run_at_32px():
    space = nas.dc_space()
    assert len(space) == 720 and len(set(space)) == 720
    assert nas.space_candidates("dc720") == space
    seen = set()
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    for name in space:
        k = _knobs(name)
        # every network is built and run at 32 px; the width only changes channel counts, so the
        # numerical forward runs at width 32 and the wider ones run on the meta device (shapes only)
        real = k["width"] == "32"
        with torch.device("cpu" if real else "meta"):
            net = create_model(name, channels=3, num_classes=10, image_size=32, seed=0).eval()
            with torch.no_grad():
                out = net(x if real else torch.empty(1, 3, 32, 32))
        assert out.shape == (1, 10)
        if real:
            assert torch.isfinite(out).all()
        assert isinstance(net, ConvNet)
        convs = [m for m in net.features if isinstance(m, nn.Conv2d)]
        # the string really sets every knob
        assert len(convs) == int(k["depth"]) and {c.out_channels for c in convs} == {int(k["width"])}
        assert sum(isinstance(m, _ACT_LAYER[k["act"]]) for m in net.features) == int(k["depth"])
        norm = _NORM_LAYER[k["norm"]]
        norms = [m for m in net.features if isinstance(m, (nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm))]
        assert len(norms) == (0 if norm is None else int(k["depth"]))
        assert all(isinstance(m, norm) for m in norms)
        if k["norm"] == "group":
            assert {m.num_groups for m in norms} == {4}
        if k["norm"] == "instance":
            assert {m.num_groups for m in norms} == {int(k["width"])}
        pool = _POOL_LAYER[k["pool"]]
        pools = [m for m in net.features if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d))]
        assert len(pools) == (0 if pool is None else int(k["depth"])) and all(isinstance(m, pool) for m in pools)
        seen.add((len(convs), convs[0].out_channels, net.act, net.norm, net.pool))
    assert len(seen) == 720
    assert {s[0] for s in seen} == {1, 2, 3, 4} and {s[1] for s in seen} == {32, 64, 128, 256}
    assert {s[2] for s in seen} == {"sigmoid", "relu", "leakyrelu"}
    assert {s[3] for s in seen} == {"none", "batchnorm", "layernorm", "instancenorm", "groupnorm"}
    assert {s[4] for s in seen} == {"none", "maxpool", "avgpool"}
    # and the widest, deepest un-pooled corner runs for real
    net = create_model(nas.dc_candidate(4, 256, "leakyrelu", "layer", "none"), channels=3, num_classes=10,
                       image_size=32, seed=0).eval()
    with torch.no_grad():
        assert torch.isfinite(net(x)).all()


def test_named_spaces_and_lists():
    assert nas.space_candidates("classic") == ["convnet", "vgg11", "resnet18", "alexnet"]
    mixed = nas.space_candidates("mixed")
    assert mixed[:4] == ["convnet", "vgg11", "resnet18", "alexnet"] and any(m.startswith("timm:") for m in mixed)
    assert nas.space_candidates("vgg11, convnet:depth=2,width=64,timm:resnet18,vgg11") == [
        "vgg11", "convnet:depth=2,width=64", "timm:resnet18"]
    with pytest.raises(FyiError):
        nas.space_candidates(" , ")


def test_a_registered_space_is_one_decorated_class(monkeypatch):
    from fyi_apps.networks import spaces as registry

    monkeypatch.setattr(registry, "NAMED_SPACES", nas.NAMED_SPACES.copy())  # leave the real registry alone

    @nas.register_space("Tiny")
    class Tiny(nas.Space):
        def candidates(self):
            return ["convnet:depth=1,width=8", "mlp:width=16", "mlp:width=8"]

    assert Tiny.name == "tiny" and "tiny" in nas.list_spaces() and "tiny" not in nas.NAMED_SPACES
    assert nas.space_candidates(" TINY ") == Tiny().candidates() == registry.NAMED_SPACES["tiny"]()
    assert set(sample_candidates("tiny", 2, seed=0, channels=1, image_size=8)) < set(Tiny().candidates())
    with pytest.raises(FyiError, match="already registered"):
        nas.register_space("tiny")(type("Other", (nas.Space,), {}))
    with pytest.raises(FyiError, match="bad space name"):
        nas.register_space("a,b")
    assert nas.space_candidates("dc720") == nas.NAMED_SPACES["dc720"]() == nas.dc_space()


def test_sampler_is_deterministic_and_respects_the_image_size():
    a = sample_candidates("dc720", 20, seed=0)
    assert a == sample_candidates("dc720", 20, seed=0)
    b = sample_candidates("dc720", 20, seed=1)
    assert a != b
    space = nas.dc_space()
    assert len(set(a)) == 20 and set(a) <= set(space)
    assert [space.index(c) for c in a] == sorted(space.index(c) for c in a)  # space order
    with_extra = sample_candidates("dc720", 20, seed=0, include=["vgg11", "resnet18"])
    assert with_extra == a + ["vgg11", "resnet18"]
    # 8 px digits: depth 4 with pooling shrinks below 1x1 and is left out
    assert not nas.candidate_fits("convnet:depth=4,width=32,act=relu,norm=none,pool=max", channels=1, image_size=8)
    assert nas.candidate_fits("convnet:depth=4,width=32,act=relu,norm=none,pool=none", channels=1, image_size=8)
    small = sample_candidates("dc720", None, channels=1, image_size=8)
    assert len(small) == 720 - 4 * 3 * 5 * 2
    assert not any("depth=4" in c and "pool=none" not in c for c in small)
    with pytest.raises(FyiError, match="sample"):
        sample_candidates("dc720", 700, channels=1, image_size=8)


def test_mac_count_and_compute_cap():
    # ConvNet-3, width 128, max pooling, at 32 px: three 3x3 convolutions at 32, 16 and 8 px, then a 2048 -> 10 layer
    convs = 3 * 128 * 9 * 32 * 32 + 128 * 128 * 9 * 16 * 16 + 128 * 128 * 9 * 8 * 8
    assert nas.candidate_mmacs("convnet") == pytest.approx((convs + 128 * 4 * 4 * 10) / 1e6)
    unpooled = "convnet:depth=4,width=256,act=relu,norm=none,pool=none"
    assert nas.candidate_mmacs(unpooled) > 30 * nas.candidate_mmacs("convnet")
    capped = sample_candidates("dc720", None, max_mmacs=200.0, include=["resnet18"])
    assert unpooled not in capped and "resnet18" in capped  # the cap is for the space, not for --include
    assert nas.candidate_mmacs("resnet18") > 200.0
    assert all(nas.candidate_mmacs(c) <= 200.0 for c in capped[:-1][::37])
    assert 0 < len(capped) - 1 < 720
    with pytest.raises(FyiError, match="max_mmacs"):
        sample_candidates("convnet,vgg11", 1, max_mmacs=0.001)
    with pytest.raises(FyiError, match="max_mmacs"):
        sample_candidates("dc720", 5, max_mmacs=-1)


# ------------------------------------------------------------------ rank statistics


def test_rank_stats_identical_and_reversed_orderings():
    acc = [0.1, 0.4, 0.35, 0.8, 0.6, 0.2]
    same = rank_stats(acc, acc, ks=(3, 5, 20))
    assert same["spearman"] == pytest.approx(1.0) and same["kendall"] == pytest.approx(1.0)
    assert set(same["top"]) == {"3", "5"}  # 20 > 6 candidates: left out
    assert all(t["overlap"] == 1.0 for t in same["top"].values())
    assert same["top"]["5"]["spearman"] == pytest.approx(1.0)
    assert same["best"]["truth_rank"] == 1 and same["best"]["regret"] == 0.0
    rev = rank_stats([-a for a in acc], acc, ks=(3,))
    assert rev["spearman"] == pytest.approx(-1.0) and rev["kendall"] == pytest.approx(-1.0)
    assert rev["top"]["3"]["overlap"] == 0.0
    assert rev["best"]["truth_rank"] == 6 and rev["best"]["regret"] == pytest.approx(0.8 - 0.1)


def test_rank_stats_hand_computed():
    # one swapped pair among 4: sum d^2 = 2 -> rho = 1 - 6*2/(4*15) = 0.8; 5 concordant, 1 discordant -> tau = 4/6
    s = rank_stats([1, 2, 3, 4], [0.1, 0.3, 0.2, 0.4], ks=())
    assert s["spearman"] == pytest.approx(0.8) and s["kendall"] == pytest.approx(2 / 3)
    assert s["n"] == 4 and s["top"] == {}


def test_top_k_figures_on_a_hand_made_example():
    names = list("abcdef")
    truth = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
    proxy = [0.5, 0.9, 0.8, 0.1, 0.7, 0.2]
    s = rank_stats(proxy, truth, names=names, ks=(3, 6))
    top3 = s["top"]["3"]
    assert top3["truth_top"] == ["a", "b", "c"] and top3["proxy_top"] == ["b", "c", "e"]
    assert top3["overlap"] == pytest.approx(2 / 3)
    # within a, b, c: proxy ranks (1, 3, 2) vs truth ranks (3, 2, 1): sum d^2 = 6 -> rho = -0.5; tau = (1 - 2)/3
    assert top3["spearman"] == pytest.approx(-0.5) and top3["kendall"] == pytest.approx(-1 / 3)
    assert s["top"]["6"]["overlap"] == 1.0
    best = s["best"]
    assert best["candidate"] == "b" and best["truth_acc"] == 0.8 and best["truth_rank"] == 2
    assert best["oracle"] == "a" and best["regret"] == pytest.approx(0.1)
    assert s["truth_rank"] == {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 6}


def test_rank_stats_degenerate_inputs():
    s = rank_stats([0.5, 0.5, 0.5], [0.1, 0.2, 0.3])
    assert s["spearman"] is None and s["kendall"] is None  # undefined, not NaN
    with pytest.raises(FyiError):
        rank_stats([0.1], [0.2])
    with pytest.raises(FyiError):
        rank_stats([0.1, 0.2], [0.2, 0.3, 0.4])


def test_shard():
    items = list("abcde")
    assert nas.shard(items, 0, 2) == ["a", "c", "e"] and nas.shard(items, 1, 2) == ["b", "d"]
    assert sorted(nas.shard(items, 0, 3) + nas.shard(items, 1, 3) + nas.shard(items, 2, 3)) == items
    with pytest.raises(FyiError):
        nas.shard(items, 2, 2)


def test_execute_gives_each_rank_its_candidates_and_merges(digits, tmp_path, monkeypatch):
    import torch.distributed as dist

    spec = nas.resolve_set("random", digits, ipc=2)
    cfg = _tiny_cfg().eval_config(1)
    cands = ["mlp:width=4", "mlp:width=5", "mlp:width=6", "mlp:width=7", "mlp:width=8"]
    jobs = [nas.make_job(c, spec, cfg, s) for c in cands for s in (0, 1)]
    trained = {}

    def fake_run_jobs(js, cache, **kw):
        return {j.key: {"key": j.key, "candidate": j.candidate} for j in js}

    monkeypatch.setattr(runner, "run_jobs", fake_run_jobs)
    for rank in (0, 1):
        def gather(out, obj, rank=rank):  # what the other rank would contribute, computed the same way
            trained[rank] = obj
            other = fake_run_jobs([j for j in jobs if cands.index(j.candidate) % 2 != rank], None)
            out[:] = [obj, other] if rank == 0 else [other, obj]

        monkeypatch.setattr(runner, "rank_world", lambda rank=rank: (rank, 2))
        monkeypatch.setattr(dist, "all_gather_object", gather)
        merged = nas.execute(jobs, nas.RecordCache(tmp_path / f"c{rank}"), progress=False)
        assert set(merged) == {j.key for j in jobs}
    assert {r["candidate"] for r in trained[0].values()} == {"mlp:width=4", "mlp:width=6", "mlp:width=8"}
    assert {r["candidate"] for r in trained[1].values()} == {"mlp:width=5", "mlp:width=7"}
    assert len(trained[0]) == 6 and len(trained[1]) == 4  # both seeds of a candidate stay on its rank
    rank1_keys = {j.key for j in jobs if cands.index(j.candidate) % 2 == 1}
    assert rank1_keys <= {p.stem for p in (tmp_path / "c0").glob("*.json")}  # rank 0 keeps the other rank's records
    assert not (tmp_path / "c1").exists()


# ------------------------------------------------------------------ rankings on digits

TINY_CANDIDATES = ["convnet:depth=1,width=8,norm=none", "convnet:depth=2,width=8", "mlp:width=16"]


def _tiny_cfg(**kw) -> NasConfig:
    base = dict(dataset="digits", proxies=["random"], ipc=2, candidates=list(TINY_CANDIDATES), proxy_epochs=2,
                truth="real:10", full_epochs=1, seeds=1, topk=[2], dsa=False, batch_size=64)
    base.update(kw)
    return NasConfig(**base)


def _accs(report):
    return report["truth"]["accs"], [p["accs"] for p in report["proxies"]]


def test_resume_trains_only_the_remaining_jobs(digits, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    cfg = _tiny_cfg()
    real_train = nas.train_job
    calls = []

    def interrupted(job, *a, **k):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(job.key)
        return real_train(job, *a, **k)

    monkeypatch.setattr(runner, "train_job", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_ranking(cfg, cache_dir=cache, dataset=digits, device="cpu", progress=False)
    finished = {p.stem for p in cache.glob("*.json")}
    assert finished == set(calls) and len(finished) == 3

    again = []

    def counting(job, *a, **k):
        again.append(job.key)
        return real_train(job, *a, **k)

    monkeypatch.setattr(runner, "train_job", counting)
    report = run_ranking(cfg, cache_dir=cache, dataset=digits, device="cpu", progress=False)
    assert len(again) == 3 and not set(again) & finished  # 3 candidates x (proxy + truth) = 6 jobs in all
    assert len(list(cache.glob("*.json"))) == 6

    # nothing left: a third run trains nothing and gives the same report
    again.clear()
    assert _accs(run_ranking(cfg, cache_dir=cache, dataset=digits, device="cpu", progress=False)) == _accs(report)
    assert again == []

    # a damaged record is trained again, and only that one
    victim = sorted(cache.glob("*.json"))[0]
    victim.write_text("{ half written")
    run_ranking(cfg, cache_dir=cache, dataset=digits, device="cpu", progress=False)
    assert again == [victim.stem]

    # the interrupted-and-resumed ranking equals an uninterrupted one
    monkeypatch.setattr(runner, "train_job", real_train)
    fresh = run_ranking(cfg, cache_dir=tmp_path / "fresh", dataset=digits, device="cpu", progress=False)
    assert _accs(fresh) == _accs(report)
    t, (p,) = _accs(report)
    assert set(t) == set(p) == set(TINY_CANDIDATES)
    assert all(0.0 <= v <= 1.0 for v in list(t.values()) + list(p.values()))
    assert report["proxies"][0]["set"]["num_images"] == 20 and report["truth"]["set"]["num_images"] == 100
    stats = report["proxies"][0]["stats"]
    assert stats["n"] == 3 and set(stats["top"]) == {"2"}
    assert report["proxies"][0]["cost"]["saved"] > 0


def test_cache_key_depends_on_everything_that_defines_a_run(digits):
    spec = nas.resolve_set("random", digits, ipc=2, seed=0)
    cfg = _tiny_cfg().eval_config(2)
    key = nas.make_job("mlp", spec, cfg, 0).key
    assert key == nas.make_job("mlp", spec, cfg, 0, role="truth").key  # the role is not part of the run
    other_set = nas.resolve_set("random", digits, ipc=2, seed=1)
    others = [nas.make_job("mlp:width=8", spec, cfg, 0), nas.make_job("mlp", spec, cfg, 1),
              nas.make_job("mlp", other_set, cfg, 0), nas.make_job("mlp", spec, _tiny_cfg().eval_config(3), 0),
              nas.make_job("mlp", spec, cfg, 0, test_size=100)]
    assert len({key, *(j.key for j in others)}) == 6


def test_training_sets_and_errors(digits, tmp_path):
    from fyi_apps.baselines import random_subset
    from fyi_apps.synset import save_synset

    full = nas.resolve_set("full", digits)
    assert full.kind == "full" and full.num_images == len(digits.train)
    real = nas.resolve_set("real:10", digits)
    rand = nas.resolve_set("random:10", digits)
    assert real.indices == rand.indices and real.label == "real ipc10" and rand.label == "random ipc10"
    path = tmp_path / "r.fyi.safetensors"
    save_synset(path, random_subset(digits, 3, seed=0))
    s = nas.resolve_set(str(path), digits)
    assert s.kind == "synset" and s.ipc == 3 and s.num_images == 30 and s.label == "random ipc3"
    # the proxy IPC follows the first synthetic set when --ipc is not given
    _, proxies, truth = nas.plan(_tiny_cfg(proxies=[str(path), "random"], ipc=None), digits)
    assert [p.label for p in proxies] == ["random ipc3 (r.fyi.safetensors)", "random ipc3 #1"]
    assert proxies[1].kind == "indices" and proxies[1].ipc == 3
    assert truth.num_images == 100
    for bad in ("real", "random", "nope.fyi.safetensors", "real:x", "full:3"):
        with pytest.raises(FyiError):
            nas.resolve_set(bad, digits)
    with pytest.raises(FyiError, match="ipc"):
        nas.resolve_set("random:1000", digits)


# ------------------------------------------------------------------ torchrun / gloo


def test_torchrun_two_cpu_ranks_shard_and_merge(digits, tmp_path):
    """2 gloo ranks via torchrun: rank r trains candidates r::2, rank 0 merges; same result as one process."""
    out, cache = tmp_path / "out", tmp_path / "cache"
    args = ["--dataset", "digits", "--proxy", "random", "--ipc", "2", "--space", ",".join(TINY_CANDIDATES),
            "--sample", "0", "--proxy-epochs", "2", "--truth", "real:10", "--full-epochs", "1", "--topk", "2",
            "--no-dsa", "--batch-size", "64", "--threads", "1", "--cache", str(cache)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "fyi_apps.cli", "--device", "cpu", "--quiet", "--out", str(out), "nas", *args]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "nas.json").read_text())
    assert report["world_size"] == 2
    assert (out / "nas.png").exists() and (out / "nas.md").exists()
    records = [json.loads(p.read_text()) for p in cache.glob("*.json")]
    assert len(records) == 6
    for r in records:  # each rank trained exactly its shard of the candidates
        assert r["rank"] == TINY_CANDIDATES.index(r["candidate"]) % 2, r

    single = run_ranking(_tiny_cfg(space=",".join(TINY_CANDIDATES), candidates=None, sample=None, dsa=False),
                         cache_dir=tmp_path / "single", dataset=digits, device="cpu", progress=False)
    assert _accs(report) == _accs(single)
    assert report["proxies"][0]["stats"]["spearman"] == single["proxies"][0]["stats"]["spearman"]


def test_cli_errors_are_one_line(tmp_path, capsys):
    from fyi_apps.cli import main

    code = main(["--out", str(tmp_path), "nas", "--dataset", "digits", "--proxy", str(tmp_path / "missing.safetensors"),
                 "--space", "mlp,convnet", "--sample", "0", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and "missing.safetensors" in err
    code = main(["--out", str(tmp_path), "nas", "--dataset", "digits", "--proxy-epochs", "0", "--quiet"])
    assert code == 2 and "proxy-epochs" in capsys.readouterr().err


def test_each_candidate_is_built_once_for_fit_params_and_macs(monkeypatch):
    import fyi_apps.networks as networks

    built = []
    real = networks.create_model

    def counting(name, **kw):
        built.append(name)
        return real(name, **kw)

    monkeypatch.setattr(networks, "create_model", counting)
    nas.measure.cache_clear()
    kw = dict(channels=1, num_classes=10, image_size=8)
    assert nas.candidate_fits("mlp:width=24", **kw)
    params, mmacs = nas.candidate_params("mlp:width=24", **kw), nas.candidate_mmacs("mlp:width=24", **kw)
    assert built == ["mlp:width=24"]  # one build answered all three
    net = real("mlp:width=24", seed=0, **kw)
    assert params == sum(p.numel() for p in net.parameters())
    linear = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert mmacs * 1e6 == pytest.approx(sum(m.weight.numel() for m in linear))  # an MLP: one MAC per weight
    assert not nas.candidate_fits("convnet", channels=1, num_classes=10, image_size=2)
    with pytest.raises(FyiError):
        nas.candidate_params("convnet", channels=1, num_classes=10, image_size=2)


def test_a_resumed_set_s_making_counts_its_whole_log(tmp_path):
    """Sets written before resumed runs added up their segments: the log beside the set counts instead."""
    from fyi_apps.synset import SyntheticSet, save_synset
    from fyi_apps.tasks.nas.experiment import _distill_seconds

    s = SyntheticSet(images=torch.zeros(2, 1, 4, 4), labels=torch.tensor([0, 1]), dataset="tiny", class_names=["a", "b"],
                     mean=[0.5], std=[0.5], method="dm", ipc=1, config={"iterations": 3},
                     extra={"seconds": 1.5})
    path = tmp_path / "dm_tiny.fyi.safetensors"
    save_synset(path, s)
    assert _distill_seconds(str(path)) == 1.5  # no log: the set's own record
    log = tmp_path / "dm_tiny.log.json"
    log.write_text(json.dumps({"config": {}, "log": [{"iteration": i, "seconds": 2.0} for i in (1, 2, 3)]}))
    assert _distill_seconds(str(path)) == 6.0  # the whole run, three iterations of 2 s
    log.write_text(json.dumps({"config": {}, "log": [{"iteration": 3, "seconds": 2.0}]}))
    assert _distill_seconds(str(path)) == 1.5  # a log of part of the run is not the run
    log.write_text("{not json")
    assert _distill_seconds(str(path)) == 1.5
    assert _distill_seconds(None) is None
