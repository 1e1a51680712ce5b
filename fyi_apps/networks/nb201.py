"""NAS-Bench-201: its cell strings and its networks.

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

The benchmark's table of 200-epoch accuracies (the NAS ground truth) is
:mod:`fyi_apps.tasks.nas.nb201_table`.
"""
from __future__ import annotations

import itertools

import torch
from torch import nn

from ..errors import FyiError

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
PREFIX = "nb201:"

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
