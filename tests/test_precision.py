"""--precision auto|fp32|bf16: resolution by hardware, what is autocast, and what the outputs record."""
import pytest
import torch

from fyi_apps import runtime
from fyi_apps.distill import DistillConfig, Distiller
from fyi_apps.errors import FyiError


@pytest.mark.parametrize("flags, want", [(set(), "fp32"), ({"avx2", "avx512f"}, "fp32"), ({"amx_bf16"}, "bf16"),
                                         ({"avx512_bf16"}, "bf16")])
def test_auto_follows_native_bf16_on_the_cpu(monkeypatch, flags, want):
    monkeypatch.setattr(runtime, "_cpu_flags", lambda: set(flags))
    assert runtime.resolve_precision("auto", "cpu") == want
    assert runtime.resolve_precision("fp32", "cpu") == "fp32" and runtime.resolve_precision("bf16", "cpu") == "bf16"
    with pytest.raises(FyiError, match="precision must be one of auto, fp32, bf16"):
        runtime.resolve_precision("fp16", "cpu")


@pytest.mark.parametrize("flags, want", [(set(), "fp32"), ({"amx_bf16"}, "bf16")])
def test_outputs_record_the_precision_used(digits, monkeypatch, tmp_path, flags, want):
    import json

    from fyi_apps.synset import load_synset

    monkeypatch.setattr(runtime, "_cpu_flags", lambda: set(flags))
    cfg = DistillConfig("dm", "digits", 1, iterations=2, batch_real=8, precision="auto")
    Distiller(cfg, digits, device="cpu").run(tmp_path / "s.safetensors", progress=False)
    s = load_synset(tmp_path / "s.safetensors")
    assert s.config["precision"] == "auto" and s.config["precision_used"] == want  # the file
    log = json.loads((tmp_path / "s.log.json").read_text())["config"]
    assert log["precision"] == "auto" and log["precision_used"] == want  # and the log beside it


@pytest.mark.parametrize("method", ["dc", "dsa", "dm", "idc", "mtt", "ftd"])
def test_the_default_precision_is_the_methods(monkeypatch, method):
    from fyi_apps.distill import resolve_config

    cfg = resolve_config(DistillConfig(method, "digits", 1))
    assert cfg.precision == runtime.DEFAULT_PRECISION.get(method, "fp32") == runtime.default_precision(method)
    for flags, native in ((set(), False), ({"avx512_bf16"}, True), ({"amx_bf16", "avx512f"}, True)):
        monkeypatch.setattr(runtime, "_cpu_flags", lambda flags=flags: set(flags))
        want = "bf16" if native and cfg.precision == "auto" else "fp32"
        assert runtime.resolve_precision(cfg.precision, "cpu") == want
    assert resolve_config(DistillConfig(method, "digits", 1, precision="fp32")).precision == "fp32"  # given: kept
    # the one mapping decides: flip this method's entry and the default follows
    flipped = "fp32" if cfg.precision == "auto" else "auto"
    monkeypatch.setattr(runtime, "DEFAULT_PRECISION", {method: flipped})
    assert resolve_config(DistillConfig(method, "digits", 1)).precision == flipped


def test_the_default_runs_and_records_auto_where_the_table_allows(digits, monkeypatch):
    monkeypatch.setattr(runtime, "DEFAULT_PRECISION", {"dm": "auto"})
    base = dict(method="dm", dataset="digits", ipc=1, iterations=2, batch_real=8)
    monkeypatch.setattr(runtime, "_cpu_flags", lambda: {"avx512_bf16"})
    s = Distiller(DistillConfig(**base), digits, device="cpu").run(progress=False)
    assert (s.config["precision"], s.config["precision_used"]) == ("auto", "bf16")
    monkeypatch.setattr(runtime, "_cpu_flags", lambda: set())  # no native bf16: auto is fp32, the same set
    a = Distiller(DistillConfig(**base), digits, device="cpu").run(progress=False)
    b = Distiller(DistillConfig(**base, precision="fp32"), digits, device="cpu").run(progress=False)
    assert a.config["precision_used"] == "fp32" and torch.equal(a.images, b.images)


def test_the_defaults_follow_the_accuracy_table_and_the_speed_rows():
    """A method defaults to auto only where benchmarks/precision.py found every row within the seed spread
    and benchmarks/speed.py's interleaved rows found auto faster (the committed results)."""
    import json
    from pathlib import Path

    results = Path(__file__).resolve().parents[1] / "benchmarks/results"
    report = json.loads((results / "precision-cifar10.json").read_text())
    speed = json.loads((results / "speed-precision.json").read_text())["precision"]
    verdicts = report["method_within_spread"]
    assert verdicts, "the accuracy table has no finished row"
    for method, precision in runtime.DEFAULT_PRECISION.items():
        assert precision in ("auto", "fp32")
        if precision == "auto":
            assert verdicts.get(method) is True, f"{method} defaults to auto without the accuracy table's support"
            assert speed[method]["precision_used"]["auto"] == "bf16", f"the speed row of {method} ran no bf16"
            assert all(u["auto_vs_fp32"] < 1 for u in speed[method]["units"].values()), f"auto does not pay for {method}"
    for row in report["rows"]:  # the verdicts are the rule applied to the recorded accuracies
        if "within_spread" in row:
            from benchmarks.precision import within_spread

            assert row["within_spread"] == within_spread(row["fp32"]["accs"], row[row["precision"]]["accs"])


def test_the_spread_rule():
    from benchmarks.precision import method_verdicts, within_spread

    assert within_spread([0.50, 0.52, 0.54], [0.51, 0.53, 0.55])  # 1 point apart, spread 1.6 points
    assert not within_spread([0.50, 0.51, 0.52], [0.53, 0.54, 0.55])  # 3 points apart, spread 0.8
    assert method_verdicts([{"method": "dm", "within_spread": True}, {"method": "dm", "within_spread": False},
                            {"method": "dsa", "within_spread": True}, {"method": "dc"}]) == {"dm": False, "dsa": True}


def test_an_fp32_checkpoint_resumed_under_another_precision_says_how(digits, tmp_path, monkeypatch):
    monkeypatch.setattr(runtime, "DEFAULT_PRECISION", {"dm": "auto"})
    out = tmp_path / "s.safetensors"
    base = dict(method="dm", dataset="digits", ipc=1, iterations=4, batch_real=8, checkpoint_every=1)
    Distiller(DistillConfig(**base, precision="fp32"), digits, device="cpu").run(out, progress=False, stop_after=2)
    with pytest.raises(FyiError, match=r"\(precision\); it ran in fp32: add precision=fp32 to resume it"):
        Distiller(DistillConfig(**base), digits, device="cpu").run(out, resume=True, progress=False)
    s = Distiller(DistillConfig(**base, precision="fp32"), digits, device="cpu").run(out, resume=True, progress=False)
    assert s.extra["iterations_done"] == 4


def test_bf16_autocasts_the_real_branch_only(digits):
    base = dict(method="dm", dataset="digits", ipc=1, iterations=2, batch_real=8)
    a = Distiller(DistillConfig(**base, precision="fp32"), digits, device="cpu").run(progress=False)
    passes = []  # (autocast on, input needs a gradient) of every embedding pass
    c = Distiller(DistillConfig(**base, precision="bf16"), digits, device="cpu")
    make = c.ctx.new_net

    def new_net(*args, **kw):
        net = make(*args, **kw)
        inner = net.embed

        def embed(x):
            passes.append((torch.is_autocast_enabled("cpu"), x.requires_grad))
            return inner(x)

        net.embed = embed
        return net

    c.ctx.new_net = new_net
    s = c.run(progress=False)
    assert set(passes) == {(True, False), (False, True)}  # real images in bf16, synthetic images in fp32
    assert s.config["precision_used"] == "bf16" and torch.isfinite(s.images).all()
    assert not torch.equal(s.images, a.images)


def test_the_gpu_check_runs_dry_on_the_cpu(tmp_path, capsys):
    import json

    from benchmarks import gpu_check

    assert gpu_check.main(["--device", "cpu", "--dry", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    steps = [r["step"] for r in report["steps"]]
    for method in ("dc", "dsa", "dm", "idc", "mtt", "ftd"):
        assert f"distill {method}" in steps and f"distill {method}+fyi" in steps
    assert {"experts", "eval", "score", "cl", "nas", "xarch"} <= set(steps)
    assert all(r["exit"] == 0 for r in report["steps"])
    assert {(t["method"], t["precision"]) for t in report["timings"]} == \
        {(m, p) for m in ("dm", "dsa", "mtt") for p in ("fp32", "auto")}
    assert all(t["seconds_per_iteration"] > 0 for t in report["timings"])
    used = {(t["method"], t["precision"]): t["precision_used"] for t in report["timings"]}
    assert used[("mtt", "auto")] == "fp32" and used[("dm", "auto")] == runtime.resolve_precision("auto", "cpu")
    assert "18/18 steps passed" in capsys.readouterr().out


def test_the_gpu_check_keeps_to_its_budget(tmp_path, capsys):
    import json

    from benchmarks import gpu_check

    assert gpu_check.main(["--device", "cpu", "--dry", "--budget-s", "0", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert report["complete"] and report["budget_s"] == 0
    assert report["steps"] and all(r["exit"] is None and "budget" in r["error"] for r in report["steps"])
    assert report["timings"] and all(t.get("skipped") == "budget spent" for t in report["timings"])
    out = capsys.readouterr().out
    assert "0/0 steps passed" in out and "skipped for time: experts" in out
    assert not (tmp_path / "paper-experts").exists()


def test_options_without_effect_say_so(digits, tmp_path, capsys):
    import warnings

    from fyi_apps.tasks import nas

    cfg = nas.NasConfig(dataset="digits", proxies=["params"], space="mlp:width=8,mlp:width=16", truth="real:2",
                        full_epochs=1, curve=[1], proxy_epochs=1)
    nas.run_ranking(cfg, cache_dir=tmp_path, dataset=digits, device="cpu", progress=False)
    assert "--curve records the learning curves of trained proxies" in capsys.readouterr().err
    from fyi_apps.distill.experts import ExpertConfig, train_experts

    train_experts(ExpertConfig(dataset="digits", experts=1, epochs=2, arch="mlp", train_per_class=5), digits,
                  tmp_path / "e", progress=False)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        d = Distiller(DistillConfig("mtt", "digits", 1, iterations=1, arch="mlp", precision="bf16",
                                    options={"experts": str(tmp_path / "e"), "expert_epochs": 1,
                                             "max_start_epoch": 1, "syn_steps": 1}), digits, device="cpu")
    assert any("has none" in str(w.message) for w in seen) and d.ctx.precision == "fp32"
