"""How expert trajectories are trained: :class:`ExpertConfig`, whose fields are ``fyi experts``'s options.

Each field declares its option once (:mod:`fyi_apps.options`); the config is
frozen and checked when it is made (each field, then the rule between ``flat``
and ``rho``).  Training and storage are in :mod:`.experts`.
"""
from __future__ import annotations

import dataclasses

from ..augment import DEFAULT_STRATEGY, MODES
from ..errors import FyiError
from ..options import check_fields, config, option

#: storage precisions of the trajectories (torch dtype names)
DTYPES = ("float32", "bfloat16", "float16")


@config
class ExpertConfig:
    """How the experts are trained (stored in ``experts.json``; ``fyi experts`` options; frozen)."""

    dataset: str = option(help="dataset name (see `fyi data`)")
    experts: int = option(100, min=1, help="number of experts (reference: 100); more can be added later")
    epochs: int = option(50, min=1, help="epochs per expert (reference: 50)")
    arch: str = option("convnet", help="architecture (must match `fyi distill --arch`)")
    lr_teacher: float = option(0.01, min=0.0, min_open=True, help="SGD learning rate of the experts")
    momentum: float = option(0.0, min=0.0, help="SGD momentum of the experts")
    weight_decay: float = option(0.0, min=0.0, help="SGD weight decay of the experts")
    batch_size: int = option(256, min=1, help="training minibatch size")
    dsa: bool = option(True, flag="--no-dsa", help="train the experts without DSA augmentation")
    dsa_strategy: str = option(DEFAULT_STRATEGY, help="the DSA operations, joined by _")
    dsa_mode: str = option("single", choices=MODES, help=(
        "DSA op choice: single (original), fyi (official FYI code: flip + one op), all"))
    zca: bool = option(False, help="ZCA-whiten the inputs (published CIFAR settings)")
    zca_eps: float = option(0.1, min=0.0, min_open=True, help="ZCA regularisation")
    flat: bool = option(False, help="FTD's flat experts: train with GSAM")  # GSAM instead of SGD
    rho: float = option(0.01, min=0.0, help="GSAM perturbation radius (FTD: 0.01)")
    alpha: float = option(0.3, min=0.0, help="GSAM surrogate-gap weight (FTD: 0.3)")
    adaptive: bool = option(True, flag="--no-adaptive", help="non-adaptive GSAM perturbation")
    train_per_class: int | None = option(None, min=1, help=(
        "train on this many random images per class (CPU budgets; default: all)"))
    dtype: str = option("float32", choices=DTYPES, help="storage precision of the trajectories")
    bf16: bool = option(False, help="bf16 autocast while training the experts (CPUs with AVX-512 BF16, or CUDA)")
    extend_flip: bool = option(False, help="train on the flip-extended training set")
    test_every: int = option(0, min=0, help="also record test accuracy every N epochs (0: after the last one only)")
    seed: int = option(0, min=0, help="base random seed")

    def __post_init__(self) -> None:
        """Each field checked (one line naming it), then the rule between ``flat`` and ``rho``."""
        self.check()

    def check(self) -> None:
        """Refuse ill-typed or out-of-range fields (done when the config is made; kept for callers)."""
        check_fields(self)
        if self.flat and not (self.rho > 0):
            raise FyiError(f"--rho must be positive for flat (GSAM) experts, got {self.rho}")

    def identity(self) -> dict:
        """Fields that must agree to continue an existing folder (``experts`` may grow)."""
        d = dataclasses.asdict(self)
        d.pop("experts")
        d.pop("test_every")
        return d
