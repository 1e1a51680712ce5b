"""Synthetic sets as replay memories for class-incremental learning, inside Avalanche.

The toolkit plugs into Avalanche rather than replacing it.  One concept per module:

=================  ==========================================================================
``benchmarks``     Split CIFAR-10/100, Fashion-MNIST, digits from fyi-apps datasets (Avalanche's
                   ``class_incremental_benchmark``), class orders, tensors <-> Avalanche datasets
``memory``         what a memory kind is, ``--memory`` specs, :func:`make_memory`
``sources``        memory kinds from real data and files: ``random``, ``herding``, ``file:PATH`` / ``LABEL:PATH``
``online``         memory kinds distilled per experience: ``dm``, ``dm+fyi``, ``dsa``, ``dc`` (+fyi)
``policy``         :class:`SyntheticReplayBuffer`, the Avalanche storage policy (``ExemplarsBuffer``)
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
writes ``~/.avalanche/config.json``).
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_NAMES = {
    "benchmarks": ("BENCHMARKS", "ORDER_RULES", "CLBenchmark", "resolve_benchmark", "class_order", "make_benchmark",
                   "experience_tensors", "dataset_from_tensors", "tensor_dataset", "split_sizes"),
    "memory": ("BUFFER_KINDS", "MEMORY_KINDS", "MemorySource", "MemorySpec", "MemoryOptions", "make_memory",
               "make_buffer", "parse_memory_spec", "memory_label"),
    "sources": ("RandomSelection", "HerdingSelection", "FirstKHerding", "FromSynset"),
    "online": ("ONLINE_METHODS", "OnlineDistillation", "method_options"),
    "policy": ("SyntheticReplayBuffer",),
    "augment": ("StreamAugmentPlugin", "STREAM_AUG_NAMES", "stream_augment_plugins"),
    "strategies": ("StreamStrategy", "make_strategy", "list_strategies", "seeded_global_rng"),
    "protocols": ("KEY_STREAM_ACC", "KEY_STREAM_FORGET", "Protocol", "GDumb", "DMPaper", "StreamReplay",
                  "run_gdumb", "run_replay", "summarise", "list_protocols"),
    "experiment": ("CLConfig", "run_one", "aggregate", "results_table", "write_outputs", "run_experiment"),
    "registry": ("Registry", "PROTOCOLS", "STRATEGIES", "MEMORIES", "register_protocol", "register_strategy",
                 "register_memory"),
}
_WHERE = {name: module for module, names in _NAMES.items() for name in names}
_WHERE["_tensor_dataset"] = "benchmarks"  # the name before it became public (tensor_dataset)
_RENAMED = {"_tensor_dataset": "tensor_dataset"}

__all__ = sorted(n for n in _WHERE if not n.startswith("_"))


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), _RENAMED.get(name, name))
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_WHERE))


if TYPE_CHECKING:  # the same names, eagerly, for type checkers
    from .benchmarks import (BENCHMARKS, ORDER_RULES, CLBenchmark, class_order, dataset_from_tensors,  # noqa: F401
                             experience_tensors, make_benchmark, resolve_benchmark, split_sizes, tensor_dataset)
    from .experiment import CLConfig, aggregate, results_table, run_experiment, run_one, write_outputs  # noqa: F401
    from .memory import (BUFFER_KINDS, MEMORY_KINDS, MemoryOptions, MemorySource, MemorySpec,  # noqa: F401
                         make_buffer, make_memory, memory_label, parse_memory_spec)
    from .online import ONLINE_METHODS, OnlineDistillation, method_options  # noqa: F401
    from .policy import SyntheticReplayBuffer  # noqa: F401
    from .augment import STREAM_AUG_NAMES, StreamAugmentPlugin, stream_augment_plugins  # noqa: F401
    from .protocols import (KEY_STREAM_ACC, KEY_STREAM_FORGET, DMPaper, GDumb, Protocol, StreamReplay,  # noqa: F401
                            list_protocols, run_gdumb, run_replay, summarise)
    from .registry import (MEMORIES, PROTOCOLS, STRATEGIES, Registry, register_memory,  # noqa: F401
                           register_protocol, register_strategy)
    from .sources import FirstKHerding, FromSynset, HerdingSelection, RandomSelection  # noqa: F401
    from .strategies import StreamStrategy, list_strategies, make_strategy, seeded_global_rng  # noqa: F401
