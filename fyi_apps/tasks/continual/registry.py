"""Small registries: a new CL protocol, stream strategy or memory kind is one decorated class.

>>> @register_memory("noise")
... class Noise(MemorySource): ...

A registry maps a lower-case name (and aliases) to a class and refuses unknown
names with one line listing the known ones.  Importing this module imports
nothing heavy.
"""
from __future__ import annotations

from typing import Callable, TypeVar

from ...errors import FyiError

T = TypeVar("T")


class Registry:
    """Name -> class.  ``register(name, *aliases)`` is a class decorator that also sets ``cls.name``."""

    def __init__(self, what: str, modules: tuple[str, ...] = ()):
        self.what = what
        self._items: dict[str, type] = {}
        self._aliases: dict[str, str] = {}
        self._modules = modules  # imported on first lookup: they register the built-in entries

    def _load(self) -> None:
        if self._modules:
            import importlib

            modules, self._modules = self._modules, ()
            for m in modules:
                importlib.import_module(m)

    def register(self, name: str, *aliases: str) -> Callable[[type[T]], type[T]]:
        def deco(cls: type[T]) -> type[T]:
            for key in (name, *aliases):
                key = key.lower()
                if key in self._items or key in self._aliases:
                    raise ValueError(f"{self.what} {key!r} is registered twice")
            cls.name = name.lower()
            self._items[name.lower()] = cls
            for a in aliases:
                self._aliases[a.lower()] = name.lower()
            return cls

        return deco

    def canonical(self, name: str) -> str:
        self._load()
        key = str(name).strip().lower()
        key = self._aliases.get(key, key)
        if key not in self._items:
            raise FyiError(f"unknown {self.what} {name!r}; use one of {', '.join(self.names())}")
        return key

    def get(self, name: str) -> type:
        return self._items[self.canonical(name)]

    def __contains__(self, name: object) -> bool:
        self._load()
        key = str(name).strip().lower()
        return self._aliases.get(key, key) in self._items

    def __iter__(self):
        return iter(self.names())

    def names(self) -> list[str]:
        self._load()
        return list(self._items)


#: CL protocols (``fyi cl --protocol``): :class:`~.protocols.Protocol` subclasses
PROTOCOLS = Registry("protocol", (f"{__package__}.protocols",))
#: Avalanche strategies that train on the stream (``--strategy``): :class:`~.strategies.StreamStrategy` subclasses
STRATEGIES = Registry("strategy", (f"{__package__}.strategies",))
#: memory kinds (``--memory``): :class:`~.memory.MemorySource` subclasses
MEMORIES = Registry("memory kind", (f"{__package__}.sources", f"{__package__}.online"))

register_protocol = PROTOCOLS.register
register_strategy = STRATEGIES.register
register_memory = MEMORIES.register
