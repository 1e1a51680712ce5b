"""The three registries of continual learning: a new CL protocol, stream strategy or memory kind is one decorated class.

>>> @register_memory("noise")
... class Noise(MemorySource): ...

Each is a :class:`fyi_apps.registry.Registry` (the one registry type of
fyi-apps): names and aliases are case-insensitive (``_`` == ``-``), a name is
registered once, and an unknown one is refused with one line listing the known
ones ("did you mean ...?").  The decorator sets ``cls.name``.  The built-in
entries are registered by their modules, which the package imports on the
first lookup (its ``__init__`` adds the loaders), so importing this module
imports nothing heavy.
"""
from __future__ import annotations

from ...registry import Registry


#: CL protocols (``fyi cl --protocol``): :class:`~.protocols.CLProtocol` subclasses
PROTOCOLS: Registry[type] = Registry("protocol", set_name="name")
#: Avalanche strategies that train on the stream (``--strategy``): :class:`~.strategies.StreamStrategy` subclasses
STRATEGIES: Registry[type] = Registry("strategy", set_name="name")
#: memory kinds (``--memory``): :class:`~.memory.MemorySource` subclasses
MEMORIES: Registry[type] = Registry("memory kind", set_name="name")


def register_protocol(name: str, *aliases: str, replace: bool = False):
    """Class decorator: register a CL protocol (``fyi cl --protocol NAME``) under ``name`` and ``aliases``."""
    return PROTOCOLS.register(name, *aliases, replace=replace)


def register_strategy(name: str, *aliases: str, replace: bool = False):
    """Class decorator: register a stream strategy (``fyi cl --strategy NAME``) under ``name`` and ``aliases``."""
    return STRATEGIES.register(name, *aliases, replace=replace)


def register_memory(name: str, *aliases: str, replace: bool = False):
    """Class decorator: register a memory kind (``fyi cl --memory NAME``) under ``name`` and ``aliases``."""
    return MEMORIES.register(name, *aliases, replace=replace)
