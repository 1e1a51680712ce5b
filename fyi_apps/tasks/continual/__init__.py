"""Synthetic sets as replay memories for class-incremental learning, inside Avalanche.

The toolkit plugs into Avalanche rather than replacing it.  One concept per module:

=================  ==========================================================================
``benchmarks``     Split CIFAR-10/100, Fashion-MNIST, digits from fyi-apps datasets (Avalanche's
                   ``class_incremental_benchmark``), class orders, tensors <-> Avalanche datasets
``memory``         what a memory kind is, ``--memory`` specs, :func:`make_memory`
``sources``        memory kinds from real data and files: ``random``, ``herding``, ``file:PATH`` / ``LABEL:PATH``
``online``         memory kinds distilled per experience: ``dm``, ``dm+fyi``, ``dsa``, ``dc`` (+fyi)
``policy``         :class:`ReplayMemory`, the Avalanche storage policy (``ExemplarsBuffer``)
``strategies``     Avalanche strategies that train on the stream: Naive/EWC/LwF + ``ReplayPlugin``, ER-ACE
``protocols``      ``gdumb``, ``dm-paper`` (GDumb with CL_DM.py's settings), ``replay`` (stream strategies)
``experiment``     :class:`CLConfig`, runs over memories x class orders, caching, aggregation, files
``cli``            the ``fyi cl`` arguments and command
``registry``       ``register_protocol``, ``register_strategy``, ``register_memory``
=================  ==========================================================================

A new protocol, stream strategy or memory kind is one decorated class
(``@register_protocol("name")``, ``@register_strategy("name")``,
``@register_memory("name")``) in the module of its concept.  The memory in
any Avalanche strategy::

    memory = make_memory("dm+fyi", ipc=10, num_classes=10, info=ds.info, iterations=500)
    strategy = Naive(model=..., optimizer=..., criterion=...,
                     plugins=[ReplayPlugin(mem_size=memory.max_size, storage_policy=memory)])

Names are loaded on first use: importing this package (or ``.cli``/``.registry``)
does not import Avalanche; the names below do (several seconds; Avalanche
writes ``~/.avalanche/config.json``).  The names used before the "memory"
vocabulary still work and warn (listed in :mod:`fyi_apps.deprecated`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ...deprecated import module_getattr
from .registry import MEMORIES, PROTOCOLS, STRATEGIES


@PROTOCOLS.loader
def _builtin_protocols() -> None:
    from . import protocols  # noqa: F401  (registers gdumb, dm-paper, replay, er-ace-avalanche)


@STRATEGIES.loader
def _builtin_strategies() -> None:
    from . import strategies  # noqa: F401  (registers naive, ewc, lwf, er-ace)


@MEMORIES.loader
def _builtin_memories() -> None:
    from . import sources  # noqa: F401  (registers native, random, herding, file)
    from . import online  # noqa: F401  (registers dm, dsa, dc: in this order, as before)


_NAMES = {
    "benchmarks": ("BENCHMARKS", "ORDER_RULES", "CLBenchmark", "resolve_benchmark", "class_order", "make_benchmark",
                   "experience_tensors", "dataset_from_tensors", "tensor_dataset", "split_sizes"),
    "memory": ("MEMORY_KINDS", "MemorySource", "MemorySpec", "MemoryOptions", "make_memory", "parse_memory_spec",
               "memory_label"),
    "sources": ("RandomSelection", "HerdingSelection", "FirstKHerding", "FromSynset"),
    "online": ("ONLINE_METHODS", "OnlineDistillation", "method_options"),
    "policy": ("ReplayMemory",),
    "augment": ("StreamAugmentPlugin", "STREAM_AUG_NAMES", "stream_augment_plugins"),
    "strategies": ("StreamStrategy", "make_strategy", "list_strategies", "seeded_global_rng"),
    "protocols": ("KEY_STREAM_ACC", "KEY_STREAM_FORGET", "CLProtocol", "GDumbProtocol", "DMPaper", "StreamReplay",
                  "run_gdumb", "run_replay", "summarize", "list_protocols"),
    "experiment": ("CLConfig", "run_one", "aggregate", "results_table", "write_outputs", "run_experiment",
                   "protocol_config", "finished_runs"),
    "registry": ("Registry", "PROTOCOLS", "STRATEGIES", "MEMORIES", "register_protocol", "register_strategy",
                 "register_memory"),
}
_WHERE = {name: module for module, names in _NAMES.items() for name in names}

__all__ = sorted(_WHERE)


def _submodule(name: str):
    """The submodule ``name``, imported by an import statement (the architecture test sees each one)."""
    if name == "benchmarks":
        from . import benchmarks as module
    elif name == "memory":
        from . import memory as module
    elif name == "sources":
        from . import sources as module
    elif name == "online":
        from . import online as module
    elif name == "policy":
        from . import policy as module
    elif name == "augment":
        from . import augment as module
    elif name == "strategies":
        from . import strategies as module
    elif name == "protocols":
        from . import protocols as module
    elif name == "experiment":
        from . import experiment as module
    else:
        from . import registry as module
    return module


def _lookup(name: str):
    value = getattr(_submodule(_WHERE[name]), name)
    globals()[name] = value
    return value


_renamed = module_getattr(__name__, _lookup, stacklevel=4)  # the old names (fyi_apps.deprecated.NAMES) warn


def __getattr__(name: str):
    if name in _WHERE:
        return _lookup(name)
    return _renamed(name)


def __dir__():
    return sorted(set(globals()) | set(_WHERE))


if TYPE_CHECKING:  # the same names, eagerly, for type checkers
    from .benchmarks import (BENCHMARKS, ORDER_RULES, CLBenchmark, class_order, dataset_from_tensors,  # noqa: F401
                             experience_tensors, make_benchmark, resolve_benchmark, split_sizes, tensor_dataset)
    from .experiment import (CLConfig, aggregate, finished_runs, protocol_config, results_table,  # noqa: F401
                             run_experiment, run_one, write_outputs)
    from .memory import (MEMORY_KINDS, MemoryOptions, MemorySource, MemorySpec, make_memory,  # noqa: F401
                         memory_label, parse_memory_spec)
    from .online import ONLINE_METHODS, OnlineDistillation, method_options  # noqa: F401
    from .policy import ReplayMemory  # noqa: F401
    from .augment import STREAM_AUG_NAMES, StreamAugmentPlugin, stream_augment_plugins  # noqa: F401
    from .protocols import (KEY_STREAM_ACC, KEY_STREAM_FORGET, CLProtocol, DMPaper, GDumbProtocol,  # noqa: F401
                            StreamReplay, list_protocols, run_gdumb, run_replay, summarize)
    from .registry import Registry, register_memory, register_protocol, register_strategy  # noqa: F401
    from .sources import FirstKHerding, FromSynset, HerdingSelection, RandomSelection  # noqa: F401
    from .strategies import StreamStrategy, list_strategies, make_strategy, seeded_global_rng  # noqa: F401
