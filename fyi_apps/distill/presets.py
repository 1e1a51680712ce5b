"""Published hyper-parameters per method, dataset and IPC (overridable from the CLI and API).

Sources: the DC/DSA/DM papers and their reference code, IDC (Kim et al. 2022),
MTT (Cazenavette et al. 2022) and FTD (Du et al. 2023, Table "hyper-parameters").
Methods declare their options in their own module (an ``Options`` dataclass
with typed, checked fields and their generic defaults; ``Method.defaults`` for
the DistillConfig fields left at None); this file only holds what varies with
dataset or IPC.  Every key a preset sets must be one of those.
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

# MTT / FTD: FTD's hyper-parameter table (Du et al. 2023), the published settings
# of both methods: (syn_steps, expert_epochs, max_start_epoch, lr_img, lr_lr, lr_teacher).
TRAJECTORY_TABLE: dict[tuple[str, int], tuple[int, int, int, float, float, float]] = {
    ("cifar10", 1): (50, 2, 2, 100.0, 1e-7, 0.01),
    ("cifar10", 10): (30, 2, 20, 100.0, 1e-5, 0.001),
    ("cifar10", 50): (30, 2, 40, 1000.0, 1e-5, 0.01),
    ("cifar100", 1): (40, 3, 20, 1000.0, 1e-5, 0.01),
    ("cifar100", 10): (20, 2, 40, 1000.0, 1e-5, 0.01),
    ("cifar100", 50): (80, 2, 40, 1000.0, 1e-5, 0.01),
    ("tiny", 1): (30, 2, 10, 10000.0, 1e-4, 0.01),
    ("tiny", 10): (20, 2, 40, 10000.0, 1e-4, 0.01),
}
for (_family, _ipc), (_steps, _ee, _ms, _lri, _lrl, _lrt) in TRAJECTORY_TABLE.items():
    for _method in ("mtt", "ftd"):
        TABLE[(_method, _family, _ipc)] = {"syn_steps": _steps, "expert_epochs": _ee, "max_start_epoch": _ms,
                                           "lr_img": _lri, "lr_lr": _lrl, "lr_teacher": _lrt}

# IDC (Kim et al. 2022): per-dataset settings of the reference's ``--reproduce``
# (snu-mllab/Efficient-Dataset-Condensation, misc/reproduce.py ``set_arguments``
# and argument.py).  ``lr_img`` is the reference's ``--lr_img`` before its
# ``tune_lr_img`` scaling (done in ``idc.py``); ``n_data`` is ``--n_data``;
# ``mix_p`` is the CutMix probability set in argument.py for these datasets.
IDC_DATASETS: dict[str, dict] = {
    "cifar10": {"metric": "mse", "lr_img": 5e-3, "n_data": 2000, "mix_p": 0.5, "eval_cutmix": 0.5},
    "cifar100": {"metric": "mse", "lr_img": 5e-3, "n_data": 2000, "mix_p": 0.5, "eval_cutmix": 0.5},
    "svhn": {"metric": "mse", "lr_img": 5e-3, "n_data": 500, "mix_p": 0.5, "eval_cutmix": 0.5},
    # MNIST with multi-formation: no cutout in matching, no CutMix anywhere
    "mnist": {"metric": "l1", "lr_img": 1e-4, "n_data": 500, "aug_type": "color_crop",
              "cutmix_net": False, "mix_p": 0.5, "eval_cutmix": 0.0},
    "fashion-mnist": {"metric": "l1", "lr_img": 1e-4, "n_data": 500, "mix_p": 0.5, "eval_cutmix": 0.5},
}


def preset(method: str, dataset: str, ipc: int) -> dict:
    """Settings that depend on dataset/IPC for ``method`` ({} when the generic defaults apply)."""
    out: dict = {}
    if method in ("dc", "dsa"):
        outer, inner = dc_loops(ipc)
        out.update(outer_loop=outer, inner_loop=inner)
    if method == "idc":
        out.update(IDC_DATASETS.get(dataset_family(dataset), {}))
    out.update(TABLE.get((method, dataset_family(dataset), ipc), {}))
    return out
