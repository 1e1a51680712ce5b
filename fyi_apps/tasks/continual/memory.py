"""Replay memories: what a memory kind is, how ``--memory`` specs name one, and :func:`make_memory`.

A *memory kind* is a :class:`MemorySource` subclass registered with
:func:`~.registry.register_memory`: it says where the memory images of newly
seen classes come from.  :func:`make_memory` parses a spec and wraps the
source in the Avalanche storage policy
(:class:`~.policy.ReplayMemory`).  Specs:

* ``random``, ``herding``: real images (:mod:`.sources`);
* ``dm``, ``dm+fyi``, ``dsa``, ``dsa+fyi``, ``dc``, ``dc+fyi`` (``+fyi:vflip`` etc. for
  other views): online distillation of each experience's new classes
  (:mod:`.online`);
* ``file:PATH`` or a path to a synthetic-set file, and ``LABEL:PATH``
  (e.g. ``dm:sets/dm_ipc10.safetensors``): images from a set distilled
  offline; ``LABEL`` names the memory in tables.  A set distilled per class
  (DM: each class's images depend only on that class's data) gives every
  class its memory, so a whole-dataset set serves every class order.

Adding a memory kind::

    @register_memory("noise")
    class NoiseMemory(MemorySource):
        needs_data = False

        @classmethod
        def from_spec(cls, spec, opts):
            return cls()

        def select(self, classes, per_class, x, y, *, agent_state=None, experience=None):
            ...  # per_class normalised images of each class, labelled with the class ids
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ...deprecated import module_getattr

if TYPE_CHECKING:
    from .policy import ReplayMemory
from ...errors import FyiError
from .registry import MEMORIES, register_memory  # noqa: F401  (register_memory is re-exported)

#: memory kinds understood by :func:`make_memory` (besides ``file:PATH`` and ``LABEL:PATH``)
MEMORY_KINDS = ("random", "herding", "dm", "dm+fyi", "dsa", "dsa+fyi", "dc", "dc+fyi")
#: file endings taken as synthetic-set files in ``LABEL:PATH``
SYNSET_SUFFIXES = (".safetensors", ".pt", ".pth")


@dataclass(frozen=True)
class MemorySpec:
    """A parsed ``--memory`` item: ``label`` names it in results, ``kind`` is the registered memory kind."""

    text: str
    label: str
    kind: str
    variant: str | None = None  # "fyi" / "fyi:vflip" for online distillation
    path: str | None = None  # synthetic-set file

    @property
    def is_file(self) -> bool:
        return self.path is not None


def _looks_like_file(text: str) -> bool:
    return text.lower().endswith(SYNSET_SUFFIXES) or Path(text).is_file()


def parse_memory_spec(text: str) -> MemorySpec:
    """``dm+fyi`` / ``file:PATH`` / ``dm:PATH.safetensors`` / ``PATH`` -> :class:`MemorySpec` (no file is read)."""
    text = str(text).strip()
    low = text.lower()
    if low.startswith("file:"):
        return MemorySpec(text, text, "file", path=text[5:])
    head, sep, rest = text.partition(":")
    if sep and head and _looks_like_file(rest):
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9+._-]*", head):
            raise FyiError(f"memory label {head!r} in {text!r} must be letters, digits and + . _ -; e.g. dm:PATH")
        return MemorySpec(text, head, "file", path=rest)
    if _looks_like_file(text):
        return MemorySpec(text, text, "file", path=text)
    base, _, variant = low.partition("+")
    return MemorySpec(text, text, base, variant or None)


def memory_label(text: str) -> str:
    """The name a memory spec has in tables and JSON (``dm`` for ``dm:PATH``)."""
    return parse_memory_spec(text).label


@dataclass
class MemoryOptions:
    """Everything a memory kind may use to build itself (the keyword arguments of :func:`make_memory`)."""

    ipc: int
    info: object = None
    seed: int = 0
    device: object = "auto"
    model: torch.nn.Module | None = None
    iterations: int | dict | None = None
    lr_img: float | None = None
    batch_real: int | dict | None = None
    distill_options: dict | None = None
    herding_epochs: int = 1
    arch: str = "convnet"
    bf16: bool = False
    progress: bool = False
    cache_dir: str | Path | None = None


class MemorySource:
    """Where the memory images of newly seen classes come from.

    ``select(classes, per_class, x, y, agent_state=, experience=)`` returns
    ``(images, labels)``: exactly ``per_class`` normalised float images for each
    class of ``classes``, labelled with the original class ids.  ``x``/``y`` are
    the experience's training images and labels (only classes of this
    experience).  ``needs_data = False`` sources get ``x = None``.
    ``from_spec(spec, opts)`` builds the source from a parsed ``--memory`` item;
    ``takes_variant = True`` kinds also get ``kind+variant`` specs (``dm+fyi``).
    """

    name: str = "source"  # set by @register_memory
    kind: str = "source"
    needs_data: bool = True
    takes_variant: bool = False  # whether ``kind+variant`` specs (dm+fyi) are meaningful

    @classmethod
    def from_spec(cls, spec: MemorySpec, opts: MemoryOptions) -> "MemorySource":
        raise NotImplementedError

    def select(self, classes, per_class, x, y, *, agent_state=None, experience=None):
        raise NotImplementedError

    def describe(self) -> dict:
        return {"kind": self.kind}


def unknown_memory(text: str) -> FyiError:
    """The error for a ``--memory`` item that names no memory kind (the closest kinds first)."""
    import difflib

    close = difflib.get_close_matches(str(text).strip().lower(), [*MEMORY_KINDS, *MEMORIES.names()], n=3)
    hint = f" (did you mean {', '.join(dict.fromkeys(close))}?)" if close else ""
    return FyiError(f"unknown memory kind {text!r}{hint}; use one of {', '.join(MEMORY_KINDS)}, file:PATH or "
                    "LABEL:PATH for a synthetic-set file (e.g. dm:sets/dm_ipc10.safetensors)")


def make_memory(kind: str, *, ipc: int, num_classes: int | None = None, max_size: int | None = None,
                **options) -> "ReplayMemory":
    """A replay memory of the given kind: an Avalanche storage policy for ``ReplayPlugin`` and friends.

    Args:
        kind: a memory spec (the module docstring): ``"random"``, ``"herding"``, ``"dm"``, ``"dm+fyi"``,
            ``"dsa"``... (online distillation per experience), or ``"file:PATH"`` / ``"LABEL:PATH"`` (a set
            distilled offline; its IPC and image size are checked here, before any training).
        ipc: images kept per class seen.
        num_classes: classes of the whole stream (with ``ipc``, the default ``max_size``).
        max_size: the memory's size (default ``ipc * num_classes``).
        **options: :class:`MemoryOptions` fields: ``info`` (the dataset's :class:`~fyi_apps.data.DatasetInfo`,
            needed by online distillation and used to check files), ``seed``, ``device``, ``model`` (the learner,
            used by herding; without it herding trains its own feature network for ``herding_epochs``),
            ``iterations`` / ``batch_real`` (int or per-method dict, ``{"dm": 500, "dsa": 50}``), ``lr_img``,
            ``distill_options``, ``arch``, ``bf16``, ``progress``, ``cache_dir`` (distilled images are kept
            there and reused by identical distillations).

    Returns:
        A :class:`~fyi_apps.tasks.continual.ReplayMemory` (an Avalanche ``ExemplarsBuffer``).

    Example:
        >>> from avalanche.training.plugins import ReplayPlugin
        >>> memory = fyi.make_memory("dm+fyi", ipc=10, num_classes=10, info=ds.info)
        >>> plugin = ReplayPlugin(mem_size=memory.max_size, storage_policy=memory)
    """
    from ... import validate as V
    from .policy import ReplayMemory

    ipc = V.ipc(ipc, "ipc")
    if num_classes is not None:
        num_classes = V.integer(num_classes, "num_classes", min=1)
    if max_size is not None:
        max_size = V.integer(max_size, "max_size", min=1)
    V.text(kind, "kind")
    if max_size is None:
        if num_classes is None:
            raise FyiError("make_memory needs max_size or num_classes")
        max_size = int(ipc) * int(num_classes)
    unknown = set(options) - set(MemoryOptions.__dataclass_fields__)
    if unknown:
        raise FyiError(f"make_memory got unknown options {sorted(unknown)}; "
                       f"use {', '.join(sorted(MemoryOptions.__dataclass_fields__))}")
    for name, rule in (("seed", 0), ("herding_epochs", 0)):  # the counts among the options
        if name in options:
            V.integer(options[name], name, min=rule)
    spec = parse_memory_spec(kind)
    if spec.kind not in MEMORIES:
        raise unknown_memory(spec.text)
    cls = MEMORIES.get(spec.kind)
    if spec.variant and not cls.takes_variant:
        raise unknown_memory(spec.text)
    source = cls.from_spec(spec, MemoryOptions(ipc=int(ipc), **options))
    source.label = spec.label
    return ReplayMemory(max_size, ipc, source)


__getattr__ = module_getattr(__name__, globals().__getitem__)  # the old names warn (fyi_apps.deprecated)
