"""fyi-apps: dataset distillation with FYI (Flip Your Images) and its applications.

The public facade, imported lazily so that ``import fyi_apps`` (and ``fyi --help``)
stays fast::

    import fyi_apps as fyi

    ds = fyi.load_dataset("digits")
    s = fyi.distill("dm", ds, ipc=10, fyi=True, iterations=200, output="dm_fyi.safetensors")
    res = fyi.evaluate(fyi.load_synset("dm_fyi.safetensors"), ds, cfg=fyi.EvalConfig(epochs=300))
    net = fyi.create_model("nb201:|nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|avg_pool_3x3~2|",
                           channels=3, num_classes=10, image_size=32, seed=0)

Every name below is documented where it is defined; ``help(fyi.distill)`` shows it.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

from .errors import FyiError  # noqa: E402

# public name -> (module, attribute): resolved on first use
_LAZY = {
    "load_dataset": ("fyi_apps.data", "load_dataset"),
    "list_datasets": ("fyi_apps.data", "list_datasets"),
    "register_dataset": ("fyi_apps.data", "register_dataset"),
    "distill": ("fyi_apps", "distill"),  # the subpackage, callable: distill(...)
    "DistillConfig": ("fyi_apps.distill", "DistillConfig"),
    "Distiller": ("fyi_apps.distill", "Distiller"),
    "Method": ("fyi_apps.distill", "Method"),
    "register_method": ("fyi_apps.distill", "register_method"),
    "list_methods": ("fyi_apps.distill", "list_methods"),
    "evaluate": ("fyi_apps", "evaluate"),  # the module, callable: evaluate_synset(...)
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
    "rank": ("fyi_apps.tasks.nas", "run_ranking"),
    "NasConfig": ("fyi_apps.tasks.nas", "NasConfig"),
}

__all__ = ["FyiError", "__version__", *_LAZY]


def __getattr__(name: str):
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'fyi_apps' has no attribute {name!r}") from None
    if module == "fyi_apps":  # a callable submodule (see _facade)
        value = importlib.import_module(f"fyi_apps.{attr}")
    else:
        value = getattr(importlib.import_module(module), attr)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__():
    return sorted(__all__)


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, eagerly
    from .baselines import herding_subset, random_subset  # noqa: F401
    from .data import list_datasets, load_dataset, register_dataset  # noqa: F401
    from .distill import DistillConfig, Distiller, Method, distill, list_methods, register_method  # noqa: F401
    from .evaluate import EvalConfig, evaluate_images  # noqa: F401
    from .evaluate import evaluate_synset as evaluate  # noqa: F401
    from .networks import create_model, list_models, register_model  # noqa: F401
    from .distill.score import unequalness  # noqa: F401
    from .synset import SyntheticSet, load_synset, save_synset  # noqa: F401
    from .tasks.continual import make_memory  # noqa: F401
    from .tasks.nas import NasConfig  # noqa: F401
    from .tasks.nas import run_ranking as rank  # noqa: F401
