"""NAS-Bench-201's table: the 200-epoch test accuracies of all 15,625 cells, a NAS ground truth.

``--truth nb201`` ranks ``nb201:<cell>`` candidates against the column of the
dataset (CIFAR-10, CIFAR-100, ImageNet16-120) in the CSV described in
``shared/data/README.md`` (found with :func:`find_table`).  The cells and the
network are :mod:`fyi_apps.networks.nb201`.
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ...errors import FyiError
from ...networks.nb201 import OPS, PREFIX, parse_cell, split_name

CSV_NAME = "nas-bench-201-accuracies.csv"
#: the cells of NAS-Bench-201 (its operations on 6 edges): the rows of a whole table
NUM_CELLS = len(OPS) ** 6
#: dataset (family) -> the table's column of 200-epoch test accuracies
COLUMNS = {
    "cifar10": "CIFAR10TestAccuracy200Epochs",
    "cifar100": "CIFAR100TestAccuracy200Epochs",
    "imagenet16-120": "ImageNetTestAccuracy200Epochs",
}


def column_for(dataset: str) -> str:
    """The table column of ``dataset``'s 200-epoch test accuracies; refuses datasets the table lacks."""
    name = dataset.strip().lower()
    family = "cifar100" if name.startswith("cifar100") else "cifar10" if name.startswith("cifar10") else name
    if family not in COLUMNS:
        raise FyiError(f"NAS-Bench-201 has no accuracies for dataset {dataset!r}; --truth nb201 works with "
                       "cifar10 / cifar10-jpeg, cifar100 and imagenet16-120 (else use --truth full or real:N)")
    return COLUMNS[family]


def find_table(path: str | os.PathLike | None = None, data_root: str | os.PathLike | None = None) -> Path:
    """``path``, else ``$FYI_NB201``, else ``nas-bench-201-accuracies.csv`` in the data roots."""
    if path is None:
        path = os.environ.get("FYI_NB201") or None
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise FyiError(f"NAS-Bench-201 table {p} is not a file; pass the CSV with --nb201 PATH (or $FYI_NB201)")
        return p
    from ...data import DEFAULT_SEARCH_DIRS

    env = os.environ.get("FYI_DATA")
    roots = [data_root] if data_root else (env.split(os.pathsep) if env else list(DEFAULT_SEARCH_DIRS))
    for r in roots:
        p = Path(r).expanduser() / CSV_NAME
        if p.is_file():
            return p
    raise FyiError(f"no {CSV_NAME} found in {', '.join(str(r) for r in roots)}; pass it with --nb201 PATH "
                   "or set FYI_NB201")


@dataclass
class BenchmarkTable:
    """The 200-epoch test accuracies (fractions) of every cell, by cell string and column."""

    path: Path
    accs: dict[str, dict[str, float]]  # column -> {cell string: accuracy in [0, 1]}
    order: list[str]  # the cells in the file's order (= the benchmark's index)

    @classmethod
    def read(cls, path: str | os.PathLike | None = None, data_root=None) -> "BenchmarkTable":
        p = find_table(path, data_root)
        try:
            with open(p, newline="") as f:
                reader = csv.DictReader(f)
                rows = list(reader)
                header = list(reader.fieldnames or [])
        except (OSError, UnicodeDecodeError, csv.Error) as e:
            raise FyiError(f"cannot read the NAS-Bench-201 table {p}: {e}; pass a valid CSV with --nb201 PATH") from None
        need = ["ArchitectureString", *COLUMNS.values()]
        if not header:
            raise FyiError(f"{p} is empty; pass the NAS-Bench-201 accuracy CSV with --nb201 PATH")
        if not rows and all(k in header for k in need):
            raise FyiError(f"{p} has the NAS-Bench-201 columns but no rows (a header only); pass the whole CSV "
                           "with --nb201 PATH")
        if not rows or any(k not in rows[0] for k in need):
            raise FyiError(f"{p} is not the NAS-Bench-201 accuracy table: it needs the columns {', '.join(need)}; "
                           "pass the right CSV with --nb201 PATH")
        accs: dict[str, dict[str, float]] = {c: {} for c in COLUMNS.values()}
        order = []
        for n, row in enumerate(rows, start=2):
            arch = (row.get("ArchitectureString") or "").strip()
            try:
                parse_cell(arch)
                vals = {c: float(row[c]) / 100.0 for c in COLUMNS.values()}
            except (FyiError, TypeError, ValueError):
                raise FyiError(f"{p} line {n} is malformed (cell {arch!r}); pass an intact NAS-Bench-201 CSV "
                               "with --nb201 PATH") from None
            if not all(0.0 <= v <= 1.0 for v in vals.values()):
                raise FyiError(f"{p} line {n}: accuracies must be percentages in [0, 100]; pass an intact CSV")
            for c, v in vals.items():
                accs[c][arch] = v
            order.append(arch)
        return cls(path=p, accs=accs, order=order)

    def truth(self, dataset: str, cells: Sequence[str]) -> dict[str, float]:
        """Accuracy of each candidate (``nb201:<cell>...`` or a bare cell string) on ``dataset``'s column."""
        col = self.accs[column_for(dataset)]
        out = {}
        for c in cells:
            cell = split_name(c)[0] if c.startswith(PREFIX) else c
            if cell not in col and c.startswith(PREFIX) and len(self.order) < NUM_CELLS:
                raise FyiError(f"cell {cell} is not in the NAS-Bench-201 table {self.path}, which has only "
                               f"{len(self.order)} of the benchmark's {NUM_CELLS} cells (a cut or filtered copy?); "
                               "pass the whole CSV with --nb201 PATH")
            if cell not in col:
                raise FyiError(f"architecture {c!r} is not in the NAS-Bench-201 table {self.path}; "
                               "only nb201:<cell> candidates can be ranked with --truth nb201")
            out[c] = col[cell]
        return out
