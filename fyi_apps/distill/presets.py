"""Published hyper-parameters per method, dataset and IPC (overridable from the CLI and API).

Sources: the DC/DSA/DM papers and their reference code, IDC (Kim et al. 2022),
MTT (Cazenavette et al. 2022) and FTD (Du et al. 2023, Table "hyper-parameters").
Methods register their generic defaults in their own module (``Method.defaults``);
this file only holds what varies with dataset or IPC.
"""
from __future__ import annotations

# DC / DSA: (outer_loop, inner_loop) by images per class (reference code).
DC_LOOPS = {1: (1, 1), 10: (10, 50), 20: (20, 25), 30: (30, 20), 40: (40, 15), 50: (50, 10)}


def dc_loops(ipc: int) -> tuple[int, int]:
    """The reference's table; IPCs between entries use the nearest smaller entry, above 50 use 50's."""
    key = max(k for k in DC_LOOPS if k <= max(ipc, 1))
    return DC_LOOPS[key]


def dataset_family(name: str) -> str:
    n = name.lower()
    if n.startswith("cifar100"):
        return "cifar100"
    if n.startswith("cifar10"):
        return "cifar10"
    if n.startswith("tiny"):
        return "tiny"
    return n


# Extra per-(method, family, ipc) settings; filled by the trajectory-matching module.
TABLE: dict[tuple[str, str, int], dict] = {}


def preset(method: str, dataset: str, ipc: int) -> dict:
    """Settings that depend on dataset/IPC for ``method`` ({} when the generic defaults apply)."""
    out: dict = {}
    if method in ("dc", "dsa"):
        outer, inner = dc_loops(ipc)
        out.update(outer_loop=outer, inner_loop=inner)
    out.update(TABLE.get((method, dataset_family(dataset), ipc), {}))
    return out
