"""benchmarks/continual.py: each protocol gets its own augmentation option; the distillation cache can be shared."""
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    from benchmarks import continual

    return continual


def test_augmentation_options_go_to_their_own_protocol(bench, tmp_path):
    args = bench.parse_args(["--stream-aug", "flip", "--dsa-mode", "fyi", "--out", str(tmp_path)])
    gdumb, naive, er_ace = (bench.make_config(args, name) for name in ("gdumb", "naive", "er-ace"))
    assert (gdumb.dsa_mode, gdumb.stream_aug) == ("fyi", "none")
    assert (naive.dsa_mode, naive.stream_aug, naive.protocol) == ("single", "flip", "replay")
    assert (er_ace.strategy, er_ace.stream_aug) == ("er-ace", "flip")


def test_distill_cache_defaults_to_the_output_folder_and_can_point_elsewhere(bench, tmp_path):
    args = bench.parse_args(["--out", str(tmp_path / "a")])
    assert Path(bench.make_config(args, "gdumb").distill_cache) == tmp_path / "a" / "distill-cache"
    args = bench.parse_args(["--out", str(tmp_path / "a"), "--distill-cache", str(tmp_path / "shared")])
    assert Path(bench.make_config(args, "naive").distill_cache) == tmp_path / "shared"
    assert bench.make_config(bench.parse_args(["--fresh", "--out", str(tmp_path)]), "naive").distill_cache is None
