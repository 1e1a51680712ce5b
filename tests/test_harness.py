"""benchmarks/harness.py: IPC lists, presets, Table 1, and the record cache it shares with the NAS runner."""
import argparse
import json

import pytest

from fyi_apps.errors import FyiError
from fyi_apps.records import RecordCache
from fyi_apps.runtime import read_sealed_json


@pytest.fixture
def H(monkeypatch):
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1]))
    from benchmarks import harness

    return harness


def test_per_ipc_accepts_every_syntax_the_benchmarks_had(H):
    assert H.per_ipc("2000", [1, 10], "--x") == {1: 2000, 10: 2000}  # one value (all)
    assert H.per_ipc("1:500,10:2000", [1, 10], "--x") == {1: 500, 10: 2000}  # by IPC (ablation)
    assert H.per_ipc("500,300", [1, 10], "--x") == {1: 500, 10: 300}  # one per IPC (fidelity, trajectory)
    assert H.per_ipc("100,20", [1, 10, 50], "--x") == {1: 100, 10: 20, 50: 20}  # the trajectory presets' pair
    assert H.per_ipc("100,20", [10], "--x") == {10: 20}
    with pytest.raises(FyiError, match="gives no value for IPC \\[50\\]"):
        H.per_ipc("1:500,10:2000", [1, 50], "--dm-iterations")
    for bad in ("a", "1,2,3", "1:2:3"):
        with pytest.raises(FyiError) as e:
            H.per_ipc(bad, [1, 10], "--x")
        assert e.value.args[0].startswith("--x takes N, one value per IPC")
    assert H.int_list(" 1, 10,", "--ipcs") == [1, 10] and H.names("dm, dsa,") == ["dm", "dsa"]
    assert H.int_pair("5,10", "--loops") == (5, 10)
    with pytest.raises(FyiError, match="OUTER,INNER"):
        H.int_pair("5", "--loops")


def test_quick_fills_only_what_was_not_given(H):
    p = argparse.ArgumentParser()
    H.add_common_arguments(p, "quick", "device", seeds={"default": None})
    p.add_argument("--iterations")
    full, quick = {"seeds": 3, "iterations": "1000"}, {"seeds": 1, "iterations": "10"}
    assert vars(H.apply_preset(p.parse_args([]), full, quick)) == \
        {"quick": False, "device": "auto", "seeds": 3, "iterations": "1000"}
    assert vars(H.apply_preset(p.parse_args(["--quick", "--seeds", "2"]), full, quick))["seeds"] == 2
    assert H.quick_path("benchmarks/results/ablation", True) == "benchmarks/results/ablation-quick"
    assert H.quick_path("runs/x/", True) == "runs/x-quick" and H.quick_path("runs/x", False) == "runs/x"


def test_table1_is_both_old_copies(H):
    # the copies benchmarks/ablation.py and benchmarks/fidelity.py had before the harness (they agreed)
    ablation = {("dm", 1): (26.0, 28.7), ("dm", 10): (48.9, 53.1), ("dsa", 1): (28.8, 30.6), ("dsa", 10): (52.1, 54.7)}
    fidelity = {"dc": (28.3, 44.9), "dc+fyi": (30.0, 49.5), "dsa": (28.8, 52.1), "dsa+fyi": (30.6, 54.7),
                "dm": (26.0, 48.9), "dm+fyi": (28.7, 53.1)}
    for (method, ipc), pair in ablation.items():
        assert (H.table1(method, False, ipc), H.table1(method, True, ipc)) == pair
    assert {k: v for k, v in H.TABLE1.items() if k in fidelity} == fidelity
    assert H.table1("mtt", True, 1) is None and H.table1("ftd", True, 10, "cifar10-jpeg") == 68.1
    assert H.table1("dm", False, 10, "cifar100") is None and H.table1("dm", False, 50) is None
    assert H.table1("dm", True, 10, "digits") is None


def test_record_cache_reads_old_unsealed_files_and_refuses_damaged_ones(tmp_path, capsys):
    cache = RecordCache(tmp_path, suffix=".eval.json", what="cached evaluation")
    (tmp_path / "old.eval.json").write_text(json.dumps({"mean": 0.5}))  # written before records were sealed
    assert cache.get("old") == {"mean": 0.5} and cache.get("missing") is None
    calls = []
    rec = cache.fetch("new", lambda: calls.append(1) or {"mean": 0.25})
    assert rec == {"mean": 0.25} and cache.fetch("new", lambda: calls.append(1) or {}) == rec and calls == [1]
    assert read_sealed_json(tmp_path / "new.eval.json") == ({"mean": 0.25}, None)
    assert cache.keys() == {"old", "new"}
    text = (tmp_path / "new.eval.json").read_text()
    (tmp_path / "new.eval.json").write_text(text.replace("0.25", "0.75"))
    assert cache.get("new") is None
    assert "cached evaluation" in capsys.readouterr().err
    checked = RecordCache(tmp_path, suffix=".eval.json", check=lambda r, k: None if "acc" in r else "no accuracy")
    assert checked.get("old") is None and "no accuracy" in capsys.readouterr().err


def test_errors_are_one_line(H, capsys):
    @H.reports_errors("bench")
    def main(argv=None):
        H.per_ipc("x", [1], "--iterations")

    assert main([]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bench: error: --iterations takes N") and err.count("\n") == 1
