"""One registry type for every name users pick: models, datasets, methods, spaces, CL memories, protocols, codecs.

A :class:`Registry` maps names to objects (classes, functions, instances).
Every registry of fyi-apps is one, so they all behave alike:

* names are normalised: case-insensitive, surrounding blanks ignored, ``_`` and
  ``-`` the same (``ConvNetD1`` == ``convnetd1``, ``er_ace`` == ``er-ace``);
  the name as registered is kept for display;
* aliases are other names of an entry;
* a name (or alias) registered twice is refused with one
  :class:`~fyi_apps.errors.FyiError` line, unless ``replace=True``;
  registering the same object under the same name again does nothing;
* an unknown name is refused with one line that lists the known names and
  the closest ones ("did you mean ...?", :mod:`difflib`);
* :meth:`Registry.names` lists the names, optionally those matching a
  shell-style wildcard (``names("resnet*")``, :mod:`fnmatch`, like timm's
  ``list_models(pattern)``).

Registration is a decorator on the thing registered::

    MODELS: Registry[Callable[..., nn.Module]] = Registry("model")

    @MODELS.register("mynet", "my-net")
    class MyNet(nn.Module): ...

    MODELS.get("MyNet")          # -> MyNet
    MODELS.get("mynte")          # FyiError: unknown model 'mynte' (did you mean mynet?); use one of ...

A registry whose built-in entries live in modules that are slow to import
takes loaders: functions (with ordinary import statements, which the
architecture test sees) called once, before the first lookup::

    @PROTOCOLS.loader
    def _builtin_protocols():
        from . import protocols  # registers them

A loader belongs where the import does not close a circle (the package
``__init__``, not the module the registering modules import).  This module imports nothing from the library but
:mod:`fyi_apps.errors`.
"""
from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Mapping
from typing import Any, Callable, Iterable, Iterator, TypeVar

from .errors import FyiError

T = TypeVar("T")
V = TypeVar("V")
_REQUIRED: Any = object()  # get() without a default: an unknown name raises


def normalize_name(name: str) -> str:
    """The key of a name: stripped, lower case, ``_`` written ``-``."""
    return str(name).strip().lower().replace("_", "-")


def check_pattern(pattern) -> str:
    """A wildcard a ``list_*`` function filters names with: a string (anything else is one line)."""
    if not isinstance(pattern, str):
        raise FyiError(f"pattern must be a wildcard string such as 'cifar*', got {pattern!r} "
                       f"(a {type(pattern).__name__})")
    return pattern


class Registry(Mapping[str, T]):
    """Names -> objects of one kind (``what``: ``"model"``, ``"dataset"``, ...), with aliases.

    A read-only mapping (key -> object; ``in``, ``[]``, ``keys()``, ``items()``,
    ``dict(registry)``) whose lookups normalise the name; an unknown name raises
    one :class:`~fyi_apps.errors.FyiError` line, not a ``KeyError``.

    Args:
        what: the kind of entry, as error messages name it.
        load: called once, before the first lookup, to register the built-in
            entries (a function with import statements: the architecture test sees them); see :meth:`loader`.
        choices: the end of the unknown-name message (default: ``use one of <names>``).
        set_name: the attribute of a registered object that receives its key (``"name"``), or None.
        replace_hint: how the duplicate-name message offers the escape hatch (None: not at all).
    """

    def __init__(self, what: str, *, load: Callable[[], None] | None = None,
                 choices: Callable[[], str] | None = None, set_name: str | None = None,
                 replace_hint: str | None = "replace=True") -> None:
        self.what = what
        self._entries: dict[str, T] = {}
        self._display: dict[str, str] = {}
        self._aliases: dict[str, str] = {}
        self._loaders: list[Callable[[], None]] = [load] if load is not None else []
        self._choices = choices
        self._set_name = set_name
        self._replace_hint = replace_hint

    # ------------------------------------------------------------------ registering
    def register(self, name: str | None = None, *aliases: str, replace: bool = False) -> Callable[[V], V]:
        """Decorator: register the decorated object under ``name`` (default: its ``name`` attribute) and ``aliases``.

        Returns the object unchanged (with ``set_name`` set, if the registry has one).
        """

        def decorator(obj: V) -> V:
            self.add(name if name is not None else getattr(obj, "name", ""), obj, aliases=aliases, replace=replace)
            return obj

        return decorator

    def add(self, name: str, obj: T, *, aliases: Iterable[str] = (), replace: bool = False) -> T:
        """Register ``obj`` under ``name`` and ``aliases``; returns ``obj``.

        A name already taken by another object is refused (one line) unless
        ``replace`` is true, which first removes the old entry and its aliases.
        """
        if not isinstance(name, str) or not name.strip():
            raise FyiError(f"a {self.what} needs a non-empty name, got {name!r}")
        key = normalize_name(name)
        keys = [key, *(normalize_name(a) for a in aliases)]
        if len(set(keys)) < len(keys):
            raise FyiError(f"{self.what} {name!r} lists the same name twice among its aliases {list(aliases)}; "
                           "give each name once (case, '_' and '-' do not count)")
        if self._entries.get(key) is obj and all(self._aliases.get(k) == key for k in keys[1:]):
            return obj  # the same registration again (a module imported twice)
        for k in keys:
            owner = self._aliases.get(k, k if k in self._entries else None)
            if owner is None:
                continue
            if not replace:
                taken = "" if owner == k else f" (an alias of {self._display[owner]})"
                hint = f" or pass {self._replace_hint}" if self._replace_hint else ""
                raise FyiError(f"{self.what} {self._display.get(k, k)!r}{taken} is already registered; "
                               f"pick another name{hint}")
            self.unregister(owner)
        self._entries[key] = obj
        self._display[key] = name.strip()
        for a, k in zip(aliases, keys[1:]):
            self._aliases[k] = key
            self._display[k] = str(a).strip()
        if self._set_name:
            setattr(obj, self._set_name, key)
        return obj

    def unregister(self, name: str) -> T:
        """Remove an entry (by its name or an alias) and its aliases; returns the object."""
        key = self.canonical(name)
        for alias in [a for a, k in self._aliases.items() if k == key]:
            del self._aliases[alias]
            self._display.pop(alias, None)
        self._display.pop(key, None)
        return self._entries.pop(key)

    def copy(self) -> "Registry[T]":
        """A registry with the same entries (registering in the copy leaves this one alone: for tests)."""
        self._loaded()
        new = Registry(self.what, choices=self._choices, set_name=self._set_name, replace_hint=self._replace_hint)
        new._entries, new._display, new._aliases = dict(self._entries), dict(self._display), dict(self._aliases)
        return new

    # ------------------------------------------------------------------ looking up
    def loader(self, load: Callable[[], None]) -> Callable[[], None]:
        """Decorator: call ``load`` once, before the next lookup (it imports the modules that register entries)."""
        self._loaders.append(load)
        return load

    def _loaded(self) -> None:
        while self._loaders:
            self._loaders.pop(0)()

    def canonical(self, name: str) -> str:
        """The key of ``name`` (an alias gives its entry's); an unknown name raises :meth:`unknown`."""
        self._loaded()
        key = normalize_name(name) if isinstance(name, str) else None
        key = self._aliases.get(key, key)
        if key not in self._entries:
            raise self.unknown(name)
        return key

    def get(self, name: str, default: Any = _REQUIRED) -> T:
        """The object registered under ``name`` (or an alias).

        An unknown name raises one :class:`FyiError` line, or gives ``default`` when one is passed.
        """
        if default is not _REQUIRED and name not in self:
            return default
        return self._entries[self.canonical(name)]

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def display(self, name: str) -> str:
        """``name``'s entry as registered (``convnetd1`` -> ``ConvNetD1``)."""
        return self._display[self.canonical(name)]

    def __contains__(self, name: object) -> bool:
        self._loaded()
        if not isinstance(name, str):
            return False
        key = normalize_name(name)
        return self._aliases.get(key, key) in self._entries

    def names(self, pattern: str | None = None) -> list[str]:
        """The registered names (as registered, in registration order; aliases left out).

        ``pattern``: only the names matching this shell-style wildcard (``"vgg*"``, ``"dm?"``), compared like
        names are (case-insensitive, ``_`` == ``-``).
        """
        self._loaded()
        out = [self._display[k] for k in self._entries]
        if pattern is not None:
            pat = normalize_name(check_pattern(pattern))
            out = [n for n in out if fnmatch.fnmatchcase(normalize_name(n), pat)]
        return out

    def aliases(self) -> dict[str, str]:
        """Alias -> the name it stands for (both as registered)."""
        self._loaded()
        return {self._display[a]: self._display[k] for a, k in self._aliases.items()}

    def __iter__(self) -> Iterator[str]:
        self._loaded()
        return iter(list(self._entries))

    def __len__(self) -> int:
        self._loaded()
        return len(self._entries)

    __eq__ = object.__eq__  # a registry is itself (hashable, as before), not equal to a dict of its entries
    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return f"Registry({self.what!r}: {', '.join(self.names())})"

    # ------------------------------------------------------------------ errors
    def close_matches(self, name: str, n: int = 3) -> list[str]:
        """Up to ``n`` registered names or aliases close to ``name`` (as registered)."""
        self._loaded()
        keys = [*self._entries, *self._aliases]
        return [self._display[k] for k in difflib.get_close_matches(normalize_name(name), keys, n=n)]

    def unknown(self, name: object) -> FyiError:
        """The error for an unknown name: one line, the closest names first, then the known ones."""
        close = self.close_matches(name) if isinstance(name, str) else []
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        tail = self._choices() if self._choices is not None else f"use one of {', '.join(self.names())}"
        return FyiError(f"unknown {self.what} {name!r}{hint}; {tail}")
