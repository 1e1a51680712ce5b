"""fyi-apps: dataset distillation with FYI (Flip Your Images) and its applications.

The public facade, imported lazily so that ``import fyi_apps`` (and ``fyi --help``)
stays fast::

    import fyi_apps as fyi

    ds = fyi.load_dataset("digits")
    s = fyi.distill("dm", ds, ipc=10, fyi=True, iterations=200, output="dm_fyi.safetensors")
    res = fyi.evaluate("dm_fyi.safetensors", ds, epochs=300)          # an EvalResult
    print(res.summary(), fyi.score(s), fyi.list_models("nb201:*")[:3])
    grid = fyi.show(s)                                                # a [3, H, W] tensor

Every name below is documented where it is defined; ``help(fyi.distill)`` shows it.
``fyi.distill`` and ``fyi.evaluate`` are functions (:mod:`fyi_apps.api`); the
subpackage and module of the same names are imported as usual
(``from fyi_apps.distill import DistillConfig``).
"""
from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING

__version__ = "0.1.0"

from .errors import FyiError  # noqa: E402

# public name -> (module, attribute): resolved on first use
_LAZY = {
    "load_dataset": ("fyi_apps.data", "load_dataset"),
    "list_datasets": ("fyi_apps.data", "list_datasets"),
    "register_dataset": ("fyi_apps.data", "register_dataset"),
    "distill": ("fyi_apps.api", "distill"),
    "Callback": ("fyi_apps.distill", "Callback"),
    "DistillConfig": ("fyi_apps.distill", "DistillConfig"),
    "Distiller": ("fyi_apps.distill", "Distiller"),
    "Method": ("fyi_apps.distill", "Method"),
    "register_method": ("fyi_apps.distill", "register_method"),
    "list_methods": ("fyi_apps.distill", "list_methods"),
    "evaluate": ("fyi_apps.api", "evaluate"),
    "EvalResult": ("fyi_apps.evaluate", "EvalResult"),
    "show": ("fyi_apps.api", "show"),
    "score": ("fyi_apps.api", "score"),
    "UnequalnessResult": ("fyi_apps.distill.score", "UnequalnessResult"),
    "evaluate_images": ("fyi_apps.evaluate", "evaluate_images"),
    "EvalConfig": ("fyi_apps.evaluate", "EvalConfig"),
    "load_synset": ("fyi_apps.synset", "load_synset"),
    "save_synset": ("fyi_apps.synset", "save_synset"),
    "SyntheticSet": ("fyi_apps.synset", "SyntheticSet"),
    "create_model": ("fyi_apps.networks", "create_model"),
    "list_models": ("fyi_apps.networks", "list_models"),
    "register_model": ("fyi_apps.networks", "register_model"),
    "unequalness": ("fyi_apps.distill.score", "unequalness"),
    "random_subset": ("fyi_apps.baselines", "random_subset"),
    "herding_subset": ("fyi_apps.baselines", "herding_subset"),
    "make_memory": ("fyi_apps.tasks.continual", "make_memory"),
    "rank": ("fyi_apps.api", "rank"),
    "RankingResult": ("fyi_apps.tasks.nas", "RankingResult"),
    "NasConfig": ("fyi_apps.tasks.nas", "NasConfig"),
}

__all__ = ["FyiError", "__version__", *_LAZY]


#: public functions named like a submodule: the import system binds ``fyi_apps.<name>`` to the submodule once it is
#: imported; the package keeps the function there (the submodule stays in ``sys.modules`` for ``from ... import``)
_FUNCTIONS_OVER_MODULES = ("distill", "evaluate")


def _resolve(name: str):
    module, attr = _LAZY[name]
    return getattr(importlib.import_module(module), attr)


class _Package(types.ModuleType):
    def __setattr__(self, name: str, value) -> None:
        if name in _FUNCTIONS_OVER_MODULES and isinstance(value, types.ModuleType):
            function = _resolve(name)
            for public in getattr(value, "__all__", ()):  # fyi.distill.Callback, fyi.distill.DistillConfig
                function.__dict__.setdefault(public, getattr(value, public))
            value = function
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'fyi_apps' has no attribute {name!r}")
    value = _resolve(name)
    if name in _FUNCTIONS_OVER_MODULES:
        importlib.import_module(f"{__name__}.{name}")  # binds the function, with the submodule's public names
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__():
    return sorted(__all__)


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, eagerly
    from .baselines import herding_subset, random_subset  # noqa: F401
    from .data import list_datasets, load_dataset, register_dataset  # noqa: F401
    from .api import distill, evaluate, rank, score, show  # noqa: F401
    from .distill import Callback, DistillConfig, Distiller, Method, list_methods, register_method  # noqa: F401
    from .distill.score import UnequalnessResult  # noqa: F401
    from .evaluate import EvalConfig, EvalResult, evaluate_images  # noqa: F401
    from .networks import create_model, list_models, register_model  # noqa: F401
    from .distill.score import unequalness  # noqa: F401
    from .synset import SyntheticSet, load_synset, save_synset  # noqa: F401
    from .tasks.continual import make_memory  # noqa: F401
    from .tasks.nas import NasConfig, RankingResult  # noqa: F401
