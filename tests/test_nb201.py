"""NAS-Bench-201: cell strings, networks, the accuracy table and `fyi nas --truth nb201`."""
import csv
import json
from pathlib import Path

import pytest
import torch

from fyi_apps.networks import nb201
from fyi_apps.tasks.nas import nb201_table
from fyi_apps.errors import FyiError
from fyi_apps.networks import create_model
from test_data import write_cifar10

SHARED_CSV = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "nas-bench-201-accuracies.csv"
BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
ALL_CONV3 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
COLUMNS = ["CIFAR10TestAccuracy200Epochs", "CIFAR100TestAccuracy200Epochs", "ImageNetTestAccuracy200Epochs",
           "ArchitectureString", "UniqueString"]


def write_table(path: Path, cells=None, acc=None):
    """A stand-in of the benchmark's CSV: the real columns, made-up accuracies (a function of the cell)."""
    cells = nb201.all_cells() if cells is None else cells
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for i, c in enumerate(cells):
            a = acc(c) if acc else 10 + 80 * (sum(op == "nor_conv_3x3" for n in nb201.parse_cell(c) for op, _ in n) / 6)
            w.writerow([a, a / 2, a / 3, c, f"u{i}"])
    return path


# ----------------------------------------------------------------- cell strings
def test_the_space_has_15625_distinct_cells_that_round_trip():
    cells = nb201.all_cells()
    assert len(cells) == len(set(cells)) == 5 ** 6
    assert all(nb201.cell_string(nb201.parse_cell(c)) == c for c in cells[::97])


@pytest.mark.skipif(not SHARED_CSV.exists(), reason="the shared NAS-Bench-201 table is not beside this checkout")
def test_every_architecture_string_of_the_benchmark_parses():
    table = nb201_table.BenchmarkTable.read(SHARED_CSV)
    assert len(table.order) == 15625
    assert set(table.order) == set(nb201.all_cells())  # the file's strings are exactly our space
    col = table.accs["CIFAR10TestAccuracy200Epochs"]
    assert max(col.values()) == pytest.approx(0.9437, abs=1e-4)  # the README's best cell
    disconnected = [c for c in table.order if not nb201.is_connected(c)]
    assert disconnected and all(col[c] == pytest.approx(0.10, abs=0.005) for c in disconnected)
    assert all(col[c] > 0.11 for c in table.order if nb201.is_connected(c) and c.count("none") == 0)


@pytest.mark.parametrize("bad, says", [
    ("", "three"),
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|", "2 node"),
    ("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|", "ops are"),
    ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "read from node 0"),
    ("|none~0|+|none~0|+|none~0|none~1|none~2|", "needs 2"),
    ("none~0+|none~0|none~1|+|none~0|none~1|none~2|", "not |op~i|"),
])
def test_malformed_cells_are_refused_with_one_line(bad, says):
    with pytest.raises(FyiError) as e:
        create_model("nb201:" + bad, channels=3, num_classes=10, image_size=32)
    assert says in str(e.value) and "\n" not in str(e.value)


def test_connectivity():
    assert not nb201.is_connected("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    assert not nb201.is_connected("|nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|none~2|")
    assert nb201.is_connected("|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")
    assert nb201.is_connected("|nor_conv_1x1~0|+|none~0|none~1|+|none~0|avg_pool_3x3~1|none~2|")
    assert sum(not nb201.is_connected(c) for c in nb201.all_cells()) == 341


# ----------------------------------------------------------------- networks
def _independent_count(cell, C=16, N=5, channels=3, classes=10):
    """Parameters from the benchmark's description, written out by hand (no module code involved)."""
    ops = [op for node in nb201.parse_cell(cell) for op, _ in node]

    def cell_params(c):
        return sum({"nor_conv_3x3": 9 * c * c + 2 * c, "nor_conv_1x1": c * c + 2 * c}.get(op, 0) for op in ops)

    def reduction(ci, co):
        return 9 * ci * co + 2 * co + 9 * co * co + 2 * co + ci * co

    stem = channels * C * 9 + 2 * C
    return (stem + N * (cell_params(C) + cell_params(2 * C) + cell_params(4 * C)) + reduction(C, 2 * C)
            + reduction(2 * C, 4 * C) + 2 * 4 * C + 4 * C * classes + classes)


@pytest.mark.parametrize("cell, options", [(ALL_CONV3, {}), (BEST, {}), (BEST, {"cells": 1}),
                                           (ALL_CONV3, {"cells": 2, "width": 8})])
def test_parameter_count_matches_an_independent_count(cell, options):
    net = create_model("nb201:" + cell, channels=3, num_classes=10, image_size=32, **options)
    n = sum(p.numel() for p in net.parameters())
    assert n == _independent_count(cell, C=options.get("width", 16), N=options.get("cells", 5))
    if cell == ALL_CONV3 and not options:
        assert round(n / 1e6, 2) == 1.53  # the benchmark paper's largest CIFAR-10 network: 1.53 MB


def test_a_sample_of_cells_builds_and_runs_at_32px():
    g = torch.Generator().manual_seed(0)
    cells = nb201.all_cells()
    for i in torch.randperm(len(cells), generator=g)[:12].tolist():
        net = create_model(f"nb201:{cells[i]};cells=1", channels=3, num_classes=10, image_size=32, seed=0)
        x = torch.randn(2, 3, 32, 32)
        out, emb = net(x), net.embed(x)
        assert out.shape == (2, 10) and emb.shape == (2, 64) and torch.isfinite(out).all()
    net = create_model("nb201:" + BEST, channels=1, num_classes=7, image_size=8, seed=0)  # digits-sized
    assert net(torch.randn(3, 1, 8, 8)).shape == (3, 7)


def test_same_seed_same_weights_and_options_in_the_name():
    a = create_model(f"nb201:{BEST};cells=1;width=8", channels=3, num_classes=10, image_size=32, seed=3)
    b = create_model("nb201:" + BEST, channels=3, num_classes=10, image_size=32, seed=3, cells=1, width=8)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    with pytest.raises(FyiError, match="options are cells=N and width=C"):
        create_model(f"nb201:{BEST};depth=2", channels=3, num_classes=10, image_size=32)
    with pytest.raises(FyiError, match="no option"):
        create_model("nb201:" + BEST, channels=3, num_classes=10, image_size=32, act="relu")


# ----------------------------------------------------------------- the table
def test_table_lookup_and_refusals(tmp_path, monkeypatch):
    path = write_table(tmp_path / "nb.csv", cells=[BEST, ALL_CONV3])
    t = nb201_table.BenchmarkTable.read(path)
    assert t.truth("cifar10-jpeg", ["nb201:" + ALL_CONV3 + ";cells=1"]) == {"nb201:" + ALL_CONV3 + ";cells=1": 0.9}
    assert t.truth("cifar100", [BEST])[BEST] == pytest.approx((10 + 80 * 5 / 6) / 2 / 100)  # its own column
    with pytest.raises(FyiError, match="not in the NAS-Bench-201 table .* has only 2 of the benchmark's 15625 cells"
                       ".*pass the whole CSV"):  # a cut table: the advice is the whole table, not other candidates
        t.truth("cifar10", ["nb201:|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"])
    with pytest.raises(FyiError, match="only nb201:<cell> candidates"):
        t.truth("cifar10", ["convnet"])
    with pytest.raises(FyiError, match="no accuracies for dataset 'digits'"):
        t.truth("digits", [BEST])
    monkeypatch.setenv("FYI_NB201", str(path))
    assert nb201_table.find_table() == path
    monkeypatch.setenv("FYI_NB201", str(tmp_path / "missing.csv"))
    with pytest.raises(FyiError, match="nb201=PATH"):
        nb201_table.find_table()


@pytest.mark.parametrize("content, says", [
    ("a,b,c\n1,2,3\n", "needs the columns"),
    (",".join(COLUMNS) + "\n90,50,30,|nor_conv_3x3~0|+|bad|,u\n", "line 2 is malformed"),
    (",".join(COLUMNS) + f"\nninety,50,30,{BEST},u\n", "line 2 is malformed"),
    (",".join(COLUMNS) + f"\n190,50,30,{BEST},u\n", "percentages"),
    ("", "is empty"),
    (",".join(COLUMNS) + "\n", "no rows (a header only)"),
])
def test_malformed_table_is_refused_with_one_line(tmp_path, content, says):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(FyiError) as e:
        nb201_table.BenchmarkTable.read(path)
    assert says in str(e.value) and "\n" not in str(e.value)


# ----------------------------------------------------------------- sampling
def test_sampling_connected_only_and_stratified():
    from fyi_apps.tasks.nas import nb201_space, sample_candidates

    plain = sample_candidates("nb201", 30, seed=1, image_size=32)
    assert plain == sample_candidates("nb201", 30, seed=1, image_size=32)  # seeded
    conn = sample_candidates("nb201", 200, seed=1, image_size=32, connected_only=True, variant=";cells=1")
    assert all(c.endswith(";cells=1") and nb201.is_connected(nb201.split_name(c)[0]) for c in conn)
    truth = {c: float(i) for i, c in enumerate(nb201_space())}  # accuracy = position: strata are index ranges
    strat = sample_candidates("nb201", 5, seed=0, image_size=32, stratify=truth)
    bins = sorted(int(truth[c] // (15625 / 5)) for c in strat)
    assert bins == [0, 1, 2, 3, 4]
    with pytest.raises(FyiError, match="nb201 space only"):
        sample_candidates("dc720", 3, connected_only=True)


# ----------------------------------------------------------------- end to end
def _run_cli(argv, capsys):
    from fyi_apps.cli import main

    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_truth_nb201_ranks_a_tiny_run_end_to_end(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FYI_CACHE", str(tmp_path / "cache"))
    write_cifar10(tmp_path / "data", per_batch=20, n_test=20)  # 100 training images in CIFAR-10's pickle format
    table = write_table(tmp_path / "nb.csv")
    out = tmp_path / "out"
    code, stdout, err = _run_cli([
        "nas", "--dataset", "cifar10", "--data-root", str(tmp_path / "data"), "--space", "nb201", "--sample", "4",
        "--nb201-cells", "1", "--nb201-width", "4", "--truth", "nb201", "--nb201", str(table), "--proxy", "random",
        "--proxy", "params", "--proxy", "early", "--ipc", "2", "--proxy-epochs", "2", "--topk", "50%",
        "--device", "cpu", "--out", str(out), "--quiet"], capsys)
    assert code in (0, None), err
    report = json.loads((out / "nas.json").read_text())
    assert report["truth"]["kind"] == "table" and len(report["candidates"]) == 4
    truth = report["truth"]["accs"]
    for c in report["candidates"]:
        cell = nb201.split_name(c)[0]
        assert truth[c] == pytest.approx(write_table_acc(cell))
    labels = [p["label"] for p in report["proxies"]]
    assert labels[0] == "random ipc2" and labels[1] == "parameter count" and labels[2].startswith("early stopping")
    params = report["proxies"][1]["accs"]
    assert all(v == sum(p.numel() for p in create_model(c, channels=3, num_classes=10, image_size=32).parameters())
               for c, v in params.items())
    assert report["proxies"][2]["set"]["num_images"] == 2 * 2 * 10  # ipc x proxy epochs per class, one epoch
    assert report["proxies"][0]["stats"]["n"] == 4 and "2" in report["proxies"][0]["stats"]["top"]
    assert (out / "nas.png").stat().st_size > 0


def write_table_acc(cell):
    return (10 + 80 * (sum(op == "nor_conv_3x3" for n in nb201.parse_cell(cell) for op, _ in n) / 6)) / 100


def test_cli_refuses_bad_nb201_input_with_one_line(tmp_path, capsys):
    table = write_table(tmp_path / "nb.csv", cells=[BEST])
    write_cifar10(tmp_path / "data", per_batch=20, n_test=20)
    c10 = ["--dataset", "cifar10", "--data-root", str(tmp_path / "data")]
    base = ["nas", "--space", "nb201", "--sample", "2", "--truth", "nb201", "--out", str(tmp_path / "o"), "--quiet"]
    for argv, says in [
        (["--dataset", "digits", "--nb201", str(table)], "no accuracies for dataset 'digits'"),
        (c10 + ["--nb201", str(tmp_path / "none.csv")], "is not a file"),
        (c10 + ["--nb201", str(table)], "not in the NAS-Bench-201 table"),
        (c10 + ["--nb201", str(table), "--topk", "5,x%"], "--topk"),
    ]:
        code, _, err = _run_cli(base + argv, capsys)
        lines = [ln for ln in err.strip().splitlines() if ln.strip()]
        assert code == 2 and len(lines) == 1 and says in lines[0], err
