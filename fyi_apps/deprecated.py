"""The one list of old names: every renamed public name, config field, file and command, and their warning.

fyi-apps uses one word per concept (ARCHITECTURE.md, "Vocabulary"): *experts*
for expert trajectories, *memory* for a continual-learning replay memory,
*summarize*.  The names used before still work, and each use warns with a
:class:`FyiDeprecationWarning` (a ``FutureWarning``: shown to users by
default) naming the new one, the way Avalanche's ``@deprecated`` does.  Every
old name is in a table below, and nowhere else:

* :data:`NAMES`: module attributes (classes, functions, constants), served by
  the module's ``__getattr__`` (:func:`module_getattr`);
* :data:`MODULES`: modules that moved (the old one warns when imported);
* :data:`FIELDS`: dataclass fields (keyword arguments, attributes), through
  :func:`renamed_fields`;
* :data:`ARGUMENTS`: keyword arguments of functions, through :func:`renamed_arguments`;
* :data:`FILES`: file names still read when the new one is missing;
* :data:`COMMANDS`: command-line commands and flags kept as aliases.

Nothing here imports the rest of the library.
"""
from __future__ import annotations

import functools
import warnings
from typing import Any, Callable, Mapping, TypeVar

T = TypeVar("T", bound=type)


class FyiDeprecationWarning(FutureWarning):
    """An old fyi-apps name was used; the message names the new one (filter with this class)."""


#: module -> {old attribute: new attribute of the same module}
NAMES: dict[str, dict[str, str]] = {
    "fyi_apps.tasks.continual": {
        "SyntheticReplayBuffer": "ReplayMemory", "make_buffer": "make_memory", "BUFFER_KINDS": "MEMORY_KINDS",
        "summarise": "summarize", "GDumb": "GDumbProtocol", "Protocol": "CLProtocol",
        "_tensor_dataset": "tensor_dataset",
    },
    "fyi_apps.distill.experts": {
        "BufferConfig": "ExpertConfig", "train_buffers": "train_experts", "ExpertBuffers": "ExpertStore",
        "default_buffer_dir": "default_expert_dir", "BUFFER_FORMAT": "EXPERTS_FORMAT",
    },
    "fyi_apps.tasks.continual.policy": {"SyntheticReplayBuffer": "ReplayMemory"},
    "fyi_apps.tasks.continual.memory": {"make_buffer": "make_memory", "BUFFER_KINDS": "MEMORY_KINDS"},
    "fyi_apps.tasks.continual.protocols": {"summarise": "summarize", "GDumb": "GDumbProtocol",
                                           "Protocol": "CLProtocol"},
}

#: old module -> new module (the old one still imports, warning)
MODULES: dict[str, str] = {
    "fyi_apps.distill.idc_codec": "fyi_apps.synset.multiformation",
}

#: dataclass ("module.Class") -> {old field: new field}: keyword arguments and attributes
FIELDS: dict[str, dict[str, str]] = {
    "fyi_apps.distill.mtt.MTTOptions": {"buffers": "experts"},  # MTT/FTD's method option (--option buffers=)
    "fyi_apps.tasks.continual.config.CLConfig": {"buffers": "memories"},
}

#: function ("module.function") -> {old keyword argument: new keyword argument}
ARGUMENTS: dict[str, dict[str, str]] = {
    "fyi_apps.evaluate.evaluate_synset": {"archs": "arch"},
}

#: old file name -> new file name (a folder written before the rename keeps the old one, which is still read)
FILES: dict[str, str] = {
    "buffers.json": "experts.json",  # an expert folder's index
    "OUT/buffers/": "OUT/experts/",  # where `fyi experts` puts its folder by default
}

#: old command or flag -> new one (argparse aliases, listed in ``--help``; they do not warn, to keep errors one line)
COMMANDS: dict[str, str] = {
    "fyi buffers": "fyi experts",
    "fyi distill --buffers": "fyi distill --experts",
    "fyi cl --buffer, --buffers": "fyi cl --memory",
}


def old_file(new: str) -> str:
    """The old name of the file or folder ``new`` (:data:`FILES`)."""
    return next(old for old, name in FILES.items() if name == new)


def warn(old: str, new: str, *, stacklevel: int = 3) -> None:
    """Warn that ``old`` is deprecated in favour of ``new`` (a :class:`FyiDeprecationWarning`)."""
    warnings.warn(f"{old} is deprecated; use {new} (the old name will be removed in a future release)",
                  FyiDeprecationWarning, stacklevel=stacklevel)


def module_getattr(module: str, lookup: Callable[[str], Any], *, stacklevel: int = 3) -> Callable[[str], Any]:
    """A module ``__getattr__`` (PEP 562) that serves the old names of :data:`NAMES` ``[module]`` with a warning.

    ``lookup(new_name)`` returns the current object (``globals().__getitem__``
    for a plain module, the lazy loader for a package).  Any other unknown name
    raises ``AttributeError`` as usual::

        __getattr__ = module_getattr(__name__, globals().__getitem__)

    ``stacklevel``: 3 when this is the module's ``__getattr__``; one more for each function that calls it.
    """
    table = NAMES.get(module, {})

    def __getattr__(name: str) -> Any:
        new = table.get(name)
        if new is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        warn(f"{module}.{name}", f"{module}.{new}", stacklevel=stacklevel)
        return lookup(new)

    return __getattr__


def renamed_fields(cls: T) -> T:
    """Class decorator for a dataclass: accept the old field names of :data:`FIELDS` with a warning.

    The old name works as a keyword argument (``CLConfig(buffers=[...])``,
    also through ``dataclasses.replace``) and as an attribute (read and
    written); it is not a field, so ``dataclasses.fields``, ``asdict`` and the
    JSON files carry the new name only.
    """
    renames = FIELDS[f"{cls.__module__}.{cls.__qualname__}"]
    init = cls.__init__

    @functools.wraps(init)
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **_renamed_keywords(cls.__name__, renames, kwargs))

    cls.__init__ = __init__
    for old, new in renames.items():
        setattr(cls, old, _renamed_attribute(cls.__name__, old, new))
    return cls


F = TypeVar("F", bound=Callable[..., Any])


def renamed_arguments(fn: F) -> F:
    """Function decorator: accept the old keyword names of :data:`ARGUMENTS` with a warning."""
    renames = ARGUMENTS[f"{fn.__module__}.{fn.__qualname__}"]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **_renamed_keywords(fn.__name__, renames, kwargs))

    return wrapper  # type: ignore[return-value]


def _renamed_keywords(owner: str, renames: Mapping[str, str], kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` with the old keyword names of ``renames`` replaced by the new ones, each warning once."""
    for old, new in renames.items():
        if old in kwargs:
            if new in kwargs:
                raise TypeError(f"{owner}() got both {new}= and its old name {old}=; give {new}= only")
            warn(f"{owner}({old}=...)", f"{owner}({new}=...)", stacklevel=4)
            kwargs[new] = kwargs.pop(old)
    return kwargs


def _renamed_attribute(owner: str, old: str, new: str) -> property:
    def get(self: Any) -> Any:
        warn(f"{owner}.{old}", f"{owner}.{new}")
        return getattr(self, new)

    def set_(self: Any, value: Any) -> None:
        warn(f"{owner}.{old}", f"{owner}.{new}")
        setattr(self, new, value)

    return property(get, set_, doc=f"Deprecated: the old name of ``{new}``.")


def renamed_keys(mapping: Mapping[str, Any], owner: type) -> dict[str, Any]:
    """``mapping`` (a preset, keyword arguments, a config read from JSON) with ``owner``'s old field names renamed.

    Each old key found warns; where both names are given the new one wins.
    """
    renames: dict[str, str] = {}
    for klass in reversed(owner.__mro__):  # a subclass inherits its base's old names (FTDOptions: MTTOptions')
        renames.update(FIELDS.get(f"{klass.__module__}.{klass.__qualname__}", {}))
    out = dict(mapping)
    for old, new in renames.items():
        if old in out:
            warn(f"{owner.__name__} key {old!r}", repr(new))
            value = out.pop(old)
            out.setdefault(new, value)
    return out
