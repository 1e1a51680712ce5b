"""Synthetic sets by DC, DSA, DM, IDC, MTT and FTD, each with or without FYI.

>>> from fyi_apps.data import load_dataset
>>> from fyi_apps.distill import distill
>>> ds = load_dataset("digits")
>>> synset = distill("dm", ds, ipc=10, fyi=True, iterations=200, output="dm_fyi.safetensors")

Methods register themselves (``register_method``); ``list_methods()`` names them.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import FyiError
from .base import (METHODS, DistillConfig, Distiller, Method, MethodOptions, option, option_names, register_method,
                   resolve_config)
from .fyi import FYIView, get_view

# one module per method; importing it registers the method (a new method: a new module imported here)
from . import dc, dsa, dm, idc, mtt, ftd  # noqa: E402,F401,I001

#: the modules that register the built-in methods, in import order
METHOD_MODULES = tuple(m.__name__.rpartition(".")[2] for m in (dc, dsa, dm, idc, mtt, ftd))

# helpers public for the benchmarks and user code: DM's real-branch chunk, the sliced real-data gradient, experts
from .dm import real_chunk  # noqa: E402
from .experts import ExpertConfig, ExpertStore, train_experts  # noqa: E402
from .matching import real_gradient  # noqa: E402


def list_methods(pattern: str | None = None) -> list[str]:
    """The registered method names, sorted; ``pattern``: only those matching a wildcard (``"d*"``)."""
    return sorted(METHODS.names(pattern))


def distill(
    method: str,
    dataset,
    ipc: int,
    *,
    fyi=None,
    output: str | Path | None = None,
    resume: bool = False,
    device: str = "auto",
    progress: bool = True,
    callbacks=(),
    **overrides,
):
    """Distil ``dataset`` (a name or a loaded :class:`fyi_apps.data.Dataset`) into ``ipc`` images per class.

    ``fyi``: ``None``/``False`` (off), ``True``/``"flip"`` (the paper) or a Table-4
    view (``"vflip"``, ``"rot15"``, ``"scale"``).  ``overrides`` are
    :class:`DistillConfig` fields (``iterations``, ``lr_img``, ``init``, ``seed`` ...)
    or method options (``outer_loop``, ``lr_net``, ``syn_steps`` ...: each method's ``Options`` dataclass);
    an unknown name or an ill-typed value is refused with :class:`~fyi_apps.errors.FyiError`.
    ``callbacks``: objects with ``on_iteration(distiller, iteration, row)``, run after every
    iteration (:mod:`fyi_apps.distill.callbacks`).
    Returns the :class:`~fyi_apps.synset.SyntheticSet` (also written to ``output``).
    """
    import dataclasses

    from ..data import load_dataset

    if not isinstance(dataset, str) and not hasattr(dataset, "info"):
        raise FyiError(f"dataset must be a dataset name or a loaded fyi_apps.data.Dataset, got {type(dataset).__name__}")
    fields = {f.name for f in dataclasses.fields(DistillConfig)}
    name = overrides.pop("dataset_name", None)
    options = dict(overrides.pop("options", {}) or {})
    options.update({k: overrides.pop(k) for k in list(overrides) if k not in fields})

    def config(dataset_name: str) -> DistillConfig:
        return resolve_config(DistillConfig(method=method, dataset=dataset_name, ipc=ipc, fyi=fyi,
                                            options=dict(options), **overrides))

    cfg = config(name or (dataset if isinstance(dataset, str) else dataset.info.name))
    callbacks = check_callbacks(callbacks)
    if isinstance(dataset, str):  # every argument checked: now load
        dataset = load_dataset(dataset, extend_flip=cfg.extend_flip)
        if cfg.dataset != (name or dataset.info.name):
            cfg = config(name or dataset.info.name)
    return Distiller(cfg, dataset, device=device).run(output, resume=resume, progress=progress,
                                                      callbacks=callbacks)


from .callbacks import Callback, EvalCallback, ScoreCallback, check_callbacks  # noqa: E402

__all__ = [
    "Callback", "EvalCallback", "ScoreCallback", "DistillConfig", "Distiller", "FYIView", "METHODS", "Method", "MethodOptions", "distill", "get_view",
    "list_methods", "option", "option_names", "register_method", "resolve_config",
    "real_chunk", "real_gradient", "ExpertConfig", "ExpertStore", "train_experts",
]
