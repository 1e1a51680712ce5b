"""Cross-architecture matrix on a tiny digits problem."""
from __future__ import annotations

import json
import math

import pytest

from fyi_apps.baselines import random_subset
from fyi_apps.errors import FyiError
from fyi_apps.evaluate import EvalConfig, evaluate_synset
from fyi_apps.synset import save_synset
from fyi_apps.tasks import xarch
from fyi_apps.tasks.nas import runner

ARCHS = ["convnet:depth=1,width=8", "mlp:width=16"]
CFG = EvalConfig(epochs=3, dsa=False, batch_size=64)


@pytest.fixture()
def two_sets(digits, tmp_path):
    paths = []
    for seed in (0, 1):
        s = random_subset(digits, 2, seed=seed)
        p = tmp_path / f"set{seed}.fyi.safetensors"
        save_synset(p, s)
        paths.append(str(p))
    return paths


def test_matrix_structure_and_values(digits, two_sets, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    rep = xarch.run_xarch(two_sets + ["random"], archs=ARCHS, cfg=CFG, seeds=[0, 1], ipc=2, cache_dir=cache,
                          device="cpu", progress=False, loaded=digits)
    assert rep["archs"] == ARCHS and rep["seeds"] == [0, 1] and rep["dataset"] == "digits"
    labels = [r["label"] for r in rep["rows"]]
    assert len(labels) == 3 and len(set(labels)) == 3  # two "random ipc2" files are told apart
    assert labels[0].endswith("(set0.fyi.safetensors)") and labels[2].startswith("random ipc2")
    for row in rep["rows"]:
        assert list(row["cells"]) == ARCHS
        for cell in row["cells"].values():
            accs = cell["accs"]
            assert len(accs) == 2 and cell["seeds"] == [0, 1]
            assert cell["mean"] == pytest.approx(sum(accs) / 2)
            assert cell["std"] == pytest.approx(math.sqrt(sum((a - cell["mean"]) ** 2 for a in accs) / 2))
    assert len(list(cache.glob("*.json"))) == 3 * 2 * 2
    # a cell is exactly what `fyi eval` gives for the same set, architecture and seeds
    from fyi_apps.synset import load_synset

    ref = evaluate_synset(load_synset(two_sets[1]), digits, arch=[ARCHS[0]], cfg=CFG, seeds=[0, 1], device="cpu")
    assert rep["rows"][1]["cells"][ARCHS[0]]["accs"] == ref[ARCHS[0]].accs
    # the "random" row (seed 0, ipc 2, uint8 real images) is the same subset as the set0 file: same accuracies
    for a in ARCHS:
        assert rep["rows"][2]["cells"][a]["accs"] == rep["rows"][0]["cells"][a]["accs"]

    rows, headers = xarch.matrix_rows(rep)
    assert headers == ["training set", *ARCHS] and len(rows) == 3 and all(len(r) == 3 for r in rows)
    assert rows[0][1] == f"{100 * rep['rows'][0]['cells'][ARCHS[0]]['mean']:.2f} +- " \
                         f"{100 * rep['rows'][0]['cells'][ARCHS[0]]['std']:.2f}"
    paths = xarch.write_xarch(rep, tmp_path / "out", command="fyi xarch ...")
    assert json.loads(paths["json"].read_text())["command"] == "fyi xarch ..."
    md = paths["md"].read_text()
    assert "| training set" in md and md.count("\n|") >= 4

    # cached: a rerun trains nothing
    def boom(*a, **k):
        raise AssertionError("trained again")

    monkeypatch.setattr(runner, "train_job", boom)
    again = xarch.run_xarch(two_sets + ["random"], archs=ARCHS, cfg=CFG, seeds=[0, 1], ipc=2, cache_dir=cache,
                            device="cpu", progress=False, loaded=digits)
    assert [r["cells"] for r in again["rows"]] == [r["cells"] for r in rep["rows"]]


def test_arch_titles():
    assert [xarch.arch_title(a) for a in ("convnet", "vgg11", "resnet18", "timm:resnet18")] == [
        "ConvNet", "VGG-11", "ResNet-18", "timm:resnet18"]


def test_errors(digits, two_sets, tmp_path):
    kw = dict(cfg=CFG, seeds=[0], cache_dir=tmp_path, device="cpu", progress=False, loaded=digits)
    with pytest.raises(FyiError, match="no training set"):
        xarch.run_xarch([], archs=ARCHS, **kw)
    with pytest.raises(FyiError, match="unknown model"):
        xarch.run_xarch(two_sets, archs=["nonet"], **kw)
    with pytest.raises(FyiError, match="image size 8"):  # too deep for 8 px digits with pooling
        xarch.run_xarch(two_sets, archs=["convnet:depth=4"], **kw)
    with pytest.raises(FyiError, match="ipc"):
        xarch.run_xarch(["random"], archs=ARCHS, **kw)


def test_cli(two_sets, tmp_path):
    from fyi_apps.cli import main

    out = tmp_path / "out"
    code = main(["--out", str(out), "--device", "cpu", "--quiet", "xarch", *two_sets, "--archs", ",".join(ARCHS),
                 "--epochs", "1", "--seeds", "1", "--no-dsa"])
    assert code == 0
    rep = json.loads((out / "xarch.json").read_text())
    assert rep["archs"] == ARCHS and len(rep["rows"]) == 2 and rep["command"].startswith("fyi ")
    assert (out / "xarch.md").exists() and list((out / "xarch-cache").glob("*.json"))
