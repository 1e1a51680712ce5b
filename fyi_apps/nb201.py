"""NAS-Bench-201: its cell strings, its networks and its table of full-data accuracies.

NAS-Bench-201 (Dong & Yang, ICLR 2020; the topology space of NATS-Bench) is the
space NAS researchers measure proxies on.  A *cell* is a 4-node DAG; node ``j``
sums one operation applied to each earlier node ``i < j``; the benchmark writes
a cell as

    |op~0|+|op~0|op~1|+|op~0|op~1|op~2|

(node 1 <- node 0; node 2 <- nodes 0, 1; node 3 <- nodes 0, 1, 2) with ops
``none``, ``skip_connect``, ``nor_conv_1x1``, ``nor_conv_3x3``,
``avg_pool_3x3``: 5^6 = 15,625 cells.

The network (the benchmark's macro skeleton): a 3x3 conv stem with C channels +
BatchNorm; three stages of N cells with C, 2C, 4C channels, separated by
residual reduction blocks (ReLU-Conv3x3/2-BN, ReLU-Conv3x3-BN, plus a 2x2
average-pool + 1x1 conv shortcut); then BN-ReLU, global average pooling and a
linear classifier.  Convolution ops are ReLU-Conv-BN; the 3x3 average pool does
not count padding.  The benchmark trains N=5, C=16; ``cells=1`` is the cheaper
network DC-Bench trains on its proxies.

Built through the model registry as ``nb201:<cell string>`` (options ``cells``
and ``width`` as keyword arguments, or appended as ``;cells=1;width=16``).

:class:`BenchmarkTable` reads the benchmark's 200-epoch test accuracies (the
CSV described in ``shared/data/README.md``) as a ground truth.
"""
from __future__ import annotations

import csv
import itertools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from .errors import FyiError

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
PREFIX = "nb201:"
CSV_NAME = "nas-bench-201-accuracies.csv"
#: dataset (family) -> the table's column of 200-epoch test accuracies
COLUMNS = {
    "cifar10": "CIFAR10TestAccuracy200Epochs",
    "cifar100": "CIFAR100TestAccuracy200Epochs",
    "imagenet16-120": "ImageNetTestAccuracy200Epochs",
}

Cell = tuple[tuple[tuple[str, int], ...], ...]  # per node 1..3: ((op, input), ...)


# --------------------------------------------------------------------------- #
# cell strings
# --------------------------------------------------------------------------- #
_EXAMPLE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


def parse_cell(text: str) -> Cell:
    """``'|op~0|+|op~0|op~1|+|op~0|op~1|op~2|'`` -> per-node ``((op, input), ...)``; refuses anything else."""
    bad = f"bad NAS-Bench-201 cell {text!r}"
    how = f"; write three '+'-separated nodes with 1, 2, 3 edges |op~i|, e.g. {_EXAMPLE}"
    if not isinstance(text, str) or not text.strip():
        raise FyiError(f"{bad}{how}")
    nodes = text.strip().split("+")
    if len(nodes) != 3:
        raise FyiError(f"{bad}: {len(nodes)} node(s), the benchmark's cells have 3{how}")
    out = []
    for j, node in enumerate(nodes, start=1):
        if not (node.startswith("|") and node.endswith("|")) or len(node) < 3:
            raise FyiError(f"{bad}: node {j} {node!r} is not |op~i|...|{how}")
        edges = node[1:-1].split("|")
        if len(edges) != j:
            raise FyiError(f"{bad}: node {j} has {len(edges)} edge(s), it needs {j}{how}")
        parsed = []
        for i, edge in enumerate(edges):
            op, tilde, src = edge.partition("~")
            if not tilde or op not in OPS:
                raise FyiError(f"{bad}: edge {edge!r} of node {j}; ops are {', '.join(OPS)}{how}")
            if src != str(i):
                raise FyiError(f"{bad}: edge {edge!r} of node {j} should read from node {i} (~{i}){how}")
            parsed.append((op, i))
        out.append(tuple(parsed))
    return tuple(out)


def cell_string(cell: Cell) -> str:
    return "+".join("|" + "|".join(f"{op}~{i}" for op, i in node) + "|" for node in cell)


def all_cells() -> list[str]:
    """The 15,625 cell strings, in a fixed order (the 6 edges' ops varying fastest at the last edge)."""
    out = []
    for ops in itertools.product(OPS, repeat=6):
        it = iter(ops)
        cell = tuple(tuple((next(it), i) for i in range(j)) for j in (1, 2, 3))
        out.append(cell_string(cell))
    return out


def is_connected(cell: Cell | str) -> bool:
    """Whether the output node is reachable from the input through edges other than ``none``.

    Disconnected cells output zeros (the benchmark's ~10 % accuracy on CIFAR-10).
    """
    cell = parse_cell(cell) if isinstance(cell, str) else cell
    reach = {0}
    for j, node in enumerate(cell, start=1):
        if any(op != "none" and i in reach for op, i in node):
            reach.add(j)
    return 3 in reach


# --------------------------------------------------------------------------- #
# the network
# --------------------------------------------------------------------------- #
class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1):
        super().__init__(nn.ReLU(inplace=False), nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False),
                         nn.BatchNorm2d(c_out))


class Zero(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def _op(name: str, c: int) -> nn.Module:
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(c, c, 1)
    if name == "nor_conv_3x3":
        return ReLUConvBN(c, c, 3)
    return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)


class SearchCell(nn.Module):
    """One cell: node j = sum of op(node i) over its incoming edges; the output is node 3."""

    def __init__(self, cell: Cell, c: int):
        super().__init__()
        self.edges = nn.ModuleList(nn.ModuleList(_op(op, c) for op, _ in node) for node in cell)
        self.inputs = [[i for _, i in node] for node in cell]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for ops, inputs in zip(self.edges, self.inputs):
            nodes.append(sum(op(nodes[i]) for op, i in zip(ops, inputs)))
        return nodes[-1]


class ResidualReduction(nn.Module):
    """The benchmark's reduction block: two ReLU-Conv3x3-BN (the first with stride 2) + pooled 1x1 shortcut."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride=2)
        self.conv_b = ReLUConvBN(c_out, c_out, 3)
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


class NB201Net(nn.Module):
    """A NAS-Bench-201 network; ``embed(x)`` is the pooled feature before the classifier."""

    def __init__(self, cell: Cell | str, channels: int, num_classes: int, *, cells: int = 5, width: int = 16):
        super().__init__()
        for what, v in (("cells", cells), ("width", width)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise FyiError(f"nb201 option {what} must be a positive integer, got {v!r}")
        self.cell = parse_cell(cell) if isinstance(cell, str) else cell
        self.arch = cell_string(self.cell)
        self.stem = nn.Sequential(nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width))
        layers: list[nn.Module] = []
        c = width
        for stage in range(3):
            if stage:
                layers.append(ResidualReduction(c, 2 * c))
                c *= 2
            layers += [SearchCell(self.cell, c) for _ in range(cells)]
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=False))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)
        self.feature_dim = c

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.lastact(self.cells(self.stem(x)))).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))


def split_name(name: str) -> tuple[str, dict]:
    """``'nb201:<cell>;cells=1;width=16'`` -> (cell string, {'cells': 1, 'width': 16})."""
    body = name.strip()[len(PREFIX):].strip()
    cell, *opts = body.split(";")
    options = {}
    for part in filter(None, (o.strip() for o in opts)):
        key, eq, value = part.partition("=")
        if not eq or key.strip() not in ("cells", "width"):
            raise FyiError(f"bad nb201 option {part!r} in {name!r}; the options are cells=N and width=C")
        try:
            options[key.strip()] = int(value)
        except ValueError:
            raise FyiError(f"nb201 option {key.strip()} must be an integer, got {value!r}") from None
    return cell.strip(), options


def create(name: str, channels: int, num_classes: int, image_size: int, **kwargs) -> NB201Net:
    """The registry's builder for ``nb201:<cell>[;cells=N;width=C]`` (kwargs ``cells``, ``width`` too)."""
    cell, options = split_name(name)
    unknown = sorted(set(kwargs) - {"cells", "width"})
    if unknown:
        raise FyiError(f"nb201 networks have no option(s) {', '.join(unknown)}; their options: cells, width")
    clash = sorted(k for k in options if k in kwargs and kwargs[k] != options[k])
    if clash:
        raise FyiError(f"option(s) {', '.join(clash)} given both in {name!r} and as arguments; give each once")
    return NB201Net(cell, channels, num_classes, **{**options, **kwargs})


# --------------------------------------------------------------------------- #
# the benchmark's table (the ground truth)
# --------------------------------------------------------------------------- #
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
    from .data import DEFAULT_SEARCH_DIRS

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
                rows = list(csv.DictReader(f))
        except (OSError, UnicodeDecodeError, csv.Error) as e:
            raise FyiError(f"cannot read the NAS-Bench-201 table {p}: {e}; pass a valid CSV with --nb201 PATH") from None
        need = ["ArchitectureString", *COLUMNS.values()]
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
            if cell not in col:
                raise FyiError(f"architecture {c!r} is not in the NAS-Bench-201 table {self.path}; "
                               "only nb201:<cell> candidates can be ranked with --truth nb201")
            out[c] = col[cell]
        return out
