"""benchmarks/paper.py: the paper-budget command, run for 2 iterations and 2 epochs on digits."""
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--dataset", "digits", "--method", "dm", "--ipc", "1", "--iterations", "2", "--eval-epochs", "2",
        "--seeds", "1", "--timing-iterations", "1", "--timing-epochs", "1", "--device", "cpu", "--quiet"]


@pytest.fixture
def paper(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks import paper

    return paper


def test_paper_tiny_run_prints_estimate_writes_json_and_resumes(paper, capsys, tmp_path):
    argv = [*TINY, "--fyi", "--out", str(tmp_path)]
    assert paper.main(argv) == 0
    out = capsys.readouterr().out
    m = re.search(r"timing on cpu .*: ([0-9.e-]+) s per dm iteration", out)
    assert m and float(m.group(1)) > 0
    m = re.search(r"estimate: distillation 2 iterations = .*total .* \(([0-9]+) s", out)
    assert m, out
    files = list(tmp_path.glob("*.eval2.json"))
    assert len(files) == 1 and "dm-fyi_digits_ipc1_seed0_it2_dsa-fyi" in files[0].name
    rec = json.loads(files[0].read_text())
    assert rec["status"] == "done"
    s = rec["settings"]
    assert (s["method"], s["fyi"], s["ipc"], s["iterations"], s["dsa_mode"]) == ("dm", True, 1, 2, "fyi")
    assert s["batch_real"] == 256 and s["lr_img"] == 1.0  # the published DM settings
    assert s["eval"]["epochs"] == 2 and s["eval"]["dsa_mode"] == "fyi" and s["eval_seeds"] == [0]
    assert rec["timing"]["seconds_per_iteration"] > 0 and rec["timing"]["seconds_per_eval_epoch"] > 0
    assert rec["estimate"]["total_seconds"] >= rec["estimate"]["distill_seconds"] > 0
    assert 0.0 <= rec["result"]["mean"] <= 1.0 and rec["result"]["accs"] == [rec["per_seed"]["0"]["acc"]]
    assert rec["result"]["unequalness_dm"] > 0 and rec["measured"]["total_seconds"] > 0
    assert "torch" in rec["versions"] and rec["paper_table1"] is None  # digits is not in Table 1
    assert (tmp_path / files[0].name.replace(".eval2.json", ".safetensors")).exists()
    assert not list(tmp_path.glob("*.ckpt.pt"))

    # rerun: the set and the evaluated seed are reused, the result is the same
    assert paper.main(argv) == 0
    again = capsys.readouterr().out
    assert "estimate: distillation 0 iterations" in again
    assert json.loads(files[0].read_text())["result"]["accs"] == rec["result"]["accs"]


def test_paper_estimate_only_refusal_and_bad_input(paper, capsys, tmp_path):
    assert paper.main([*TINY, "--estimate-only", "--out", str(tmp_path)]) == 0
    assert "estimate:" in capsys.readouterr().out
    assert [p.name for p in tmp_path.iterdir()] == ["dm_digits_ipc1_seed0_it2_dsa-single.estimate.json"]
    est = json.loads(next(tmp_path.iterdir()).read_text())
    assert est["status"] == "estimate" and est["estimate"]["total_seconds"] > 0

    assert paper.main([*TINY, "--max-minutes", "0.0001", "--out", str(tmp_path)]) == paper.EXIT_BUDGET
    assert "refused: the estimate" in capsys.readouterr().out
    assert not list(tmp_path.glob("*.safetensors"))

    assert paper.main(["--method", "mtt", "--ipc", "1", "--dataset", "digits", "--out", str(tmp_path)]) == 2
    assert "needs expert trajectories" in capsys.readouterr().err


def test_paper_numbers_are_table1(paper):
    table1 = paper.H.table1  # the one copy of the paper's Table 1 (benchmarks/harness.py)
    assert table1("dm", True, 10, "cifar10") == 53.1
    assert table1("dm", False, 1, "cifar10") == 26.0
    assert table1("dsa", True, 10, "cifar10") == 54.7
    assert table1("mtt", True, 1, "cifar10") is None and table1("ftd", True, 10, "cifar10") == 68.1
    assert table1("dm", False, 10, "cifar100") is None and table1("dm", False, 50, "cifar10") is None
