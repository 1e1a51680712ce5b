"""benchmarks/er_ace.py (issue 24): ER-ACE's own memory beside distilled ones, with and without the crop-flip."""
import json
from pathlib import Path

import pytest

from benchmarks import er_ace as bench  # the repository root is on the path (as for benchmarks.gpu_check)

ROOT = Path(__file__).resolve().parents[1]


def test_the_preset_is_the_baseline_s_so_its_runs_are_reused(tmp_path):
    """The config the benchmark builds keys its native runs as `fyi cl --protocol er-ace-avalanche` did."""
    from fyi_apps.tasks.continual.experiment import _run_key

    args = bench.parse_args(["--out", str(tmp_path)])
    cfg = bench.config(args, "crop-flip", ["native"], 3)
    assert (cfg.arch, cfg.lr, cfg.batch_size, cfg.batch_size_mem, cfg.ipc) == ("slimresnet18:incremental=True", 0.1,
                                                                             10, 10, 100)
    committed = sorted((ROOT / "benchmarks/results/cl-er-ace-avalanche/cl/runs").glob("*native_seed0_*.json"))
    assert committed and committed[0].stem.endswith(_run_key(cfg, "native", 0))
    assert _run_key(bench.config(args, "none", ["native"], 3), "native", 0) != _run_key(cfg, "native", 0)


def test_quick_run_table_bytes_and_resume(tmp_path, capsys):
    out = tmp_path / "er"
    assert bench.main(["--quick", "--no-progress", "--out", str(out)]) == 0
    rec = json.loads((out / "er-ace-memories.json").read_text())
    rows = {(r["memory"], r["aug"]): r for r in rec["rows"]}
    mems = ["native", "random", "herding", "dm", "dm+fyi"]
    assert all((m, a) in rows and rows[m, a]["n"] == 1 for m in mems for a in ("crop-flip", "none"))
    assert ("dm-uint8", "crop-flip") in rows and ("dm-uint8", "none") not in rows
    assert all(0 <= r["acc_mean"] <= 1 for r in rows.values())
    # a float32 set costs four bytes a value, the same images as uint8 one
    assert rows["dm", "none"]["bytes"] == 4 * rows["native", "none"]["bytes"] == 4 * rows["dm-uint8", "crop-flip"]["bytes"]
    assert (out / "er-ace-memories.png").stat().st_size > 0
    assert "| native" in (out / "er-ace-memories.md").read_text()
    sets = sorted((out / "sets").glob("*.safetensors"))
    assert len(sets) == 4
    # rerun: every run and set comes from disk (no file rewritten)
    runs = {p: p.stat().st_mtime_ns for p in (out / "cl" / "runs").glob("*.json")}
    assert len(runs) == 7 + 5  # crop-flip: five memories and two uint8 copies; none: five
    assert bench.main(["--quick", "--no-progress", "--out", str(out)]) == 0
    assert {p: p.stat().st_mtime_ns for p in (out / "cl" / "runs").glob("*.json")} == runs
    assert bench.main(["--quick", "--no-progress", "--out", str(out), "--report-only"]) == 0
    assert json.loads((out / "er-ace-memories.json").read_text())["rows"] == rec["rows"]


def test_protocol_config_and_finished_runs(tmp_path):
    from fyi_apps import FyiError
    from fyi_apps.tasks.continual import finished_runs, protocol_config

    cfg = protocol_config("avalanche-er-ace", memories=["native"], seeds=[0, 1, 7])  # an alias, canonical in the config
    assert (cfg.protocol, cfg.benchmark, cfg.experiences, cfg.stream_aug) == ("er-ace-avalanche", "split-cifar10", 5,
                                                                              "crop-flip")
    runs = finished_runs(cfg, ROOT / "benchmarks/results/cl-er-ace-avalanche/cl/runs")
    assert sorted(runs) == [("native", 0), ("native", 1)]  # seed 7 never ran
    assert all(0.3 < r["summary"]["final_acc"] < 0.6 for r in runs.values())
    assert finished_runs(cfg, tmp_path) == {}
    with pytest.raises(FyiError, match="stream_agu is not a CLConfig field"):
        protocol_config("er-ace-avalanche", stream_agu="none")


def test_a_set_another_process_distils_is_not_distilled_twice(tmp_path):
    import os
    import socket
    import subprocess
    import sys

    import fyi_apps as fyi

    args = bench.parse_args(["--quick", "--no-progress", "--out", str(tmp_path)])
    ds = fyi.load_dataset("digits")
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dm = bench.set_path(args, False)
        claim = dm.with_name(dm.name + ".claim")
        claim.parent.mkdir(parents=True)
        claim.write_text(json.dumps({"host": socket.gethostname(), "pid": other.pid, "time": 0}))
        assert bench.distil_sets(args, ds, wait=False) is None  # the other set was done meanwhile
        assert bench.set_path(args, True).exists() and not dm.exists()
        assert bench.memories(args, None, "crop-flip") == ["native", "random", "herding"]
    finally:
        other.kill()
        other.wait()
    assert os.path.exists(claim)  # a dead claimant's claim is taken over
    sets = bench.distil_sets(args, ds, wait=False)
    assert sets is not None and dm.exists() and not claim.exists()
    assert set(sets) == {"dm", "dm+fyi", "dm uint8", "dm+fyi uint8"}
