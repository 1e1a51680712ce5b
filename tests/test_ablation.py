"""benchmarks/ablation.py on digits with tiny budgets: cells, decomposition, curves, cache reuse."""
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def ablation(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks import ablation

    return ablation


def test_decompose_adds_up_to_the_paper_style_total(ablation):
    acc = {(False, "single", "single"): [0.50, 0.52], (True, "single", "single"): [0.55, 0.56],
           (False, "fyi", "fyi"): [0.58, 0.57], (True, "fyi", "fyi"): [0.60, 0.63]}
    d = ablation.decompose(acc)
    assert d["flip_gain_at_single_dsa"]["mean"] == pytest.approx(100 * (0.045), abs=1e-9)
    total = d["flip_gain_at_single_dsa"]["mean"] + d["aug_gain_fyi_on"]["mean"] + 0  # flip at single, aug with FYI
    assert d["paper_style_total"]["mean"] == pytest.approx(total, abs=1e-9)
    assert d["interaction"]["mean"] == pytest.approx(
        d["flip_gain_at_fyi_dsa"]["mean"] - d["flip_gain_at_single_dsa"]["mean"], abs=1e-9)
    assert "aug_gain_fyi_off_distillation_only" not in d  # that cell is missing: no number made up for it


def test_quick_run_writes_every_cell_and_the_curves(ablation, tmp_path, capsys):
    work = tmp_path / "work"
    argv = ["--quick", "--work", str(work), "--ipcs", "1", "--device", "cpu"]
    assert ablation.main(argv) == 0
    rep = json.loads((work.parent / "work-quick" / "ablation-quick.json").read_text())
    dm_cells = [k for k in rep["cells"] if k.startswith("dm")]
    dsa_cells = [k for k in rep["cells"] if k.startswith("dsa")]
    assert len(dm_cells) == 8 and len(dsa_cells) == 4  # FYI x distill DSA x eval DSA; DSA: FYI x mode
    for c in rep["cells"].values():
        assert 0.0 <= c["mean"] <= 1.0 and len(c["accs"]) == 2 and c["unequalness_dm"] > 0
    d = rep["decomposition"]["dm ipc1"]
    assert {"flip_gain_at_single_dsa", "flip_gain_at_fyi_dsa", "interaction", "paper_style_total"} <= set(d)
    # the DSA IPC-10 curve runs and the DM IPC-1 curves: D(S, flip S) and the loss, one PNG each
    assert {"dsa ipc10 score", "dsa ipc10 loss", "dm ipc1 score", "dm ipc1 loss"} <= set(rep["curves"])
    assert all(Path(p).stat().st_size > 1000 for p in rep["curves"].values())
    # a second run computes nothing: every cell comes from the cache
    before = {p: p.stat().st_mtime_ns for p in (work.parent / "work-quick").glob("*.eval.json")}
    assert ablation.main([*argv, "--report-only"]) == 0
    assert {p: p.stat().st_mtime_ns for p in before} == before
    assert "pending" not in capsys.readouterr().out.split("written")[-2]
