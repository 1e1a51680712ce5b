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
def test_outputs_record_the_precision_used(digits, monkeypatch, flags, want):
    monkeypatch.setattr(runtime, "_cpu_flags", lambda: set(flags))
    cfg = DistillConfig("dm", "digits", 1, iterations=2, batch_real=8, precision="auto")
    s = Distiller(cfg, digits, device="cpu").run(progress=False)
    assert s.config["precision"] == "auto" and s.config["precision_used"] == want


def test_bf16_autocasts_the_real_branch_only_and_fp32_is_unchanged(digits):
    base = dict(method="dm", dataset="digits", ipc=1, iterations=2, batch_real=8)
    a = Distiller(DistillConfig(**base), digits, device="cpu").run(progress=False)
    b = Distiller(DistillConfig(**base, precision="fp32"), digits, device="cpu").run(progress=False)
    assert torch.equal(a.images, b.images)  # fp32 is the default and changes nothing

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
    assert "18/18 steps passed" in capsys.readouterr().out


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
