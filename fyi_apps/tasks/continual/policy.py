"""The Avalanche storage policy: :class:`ReplayMemory`, a replay memory of ``ipc`` images per seen class.

A subclass of ``avalanche.training.storage_policy.ExemplarsBuffer`` that
overrides ``post_adapt`` and ``resize``; use it in any strategy through
``ReplayPlugin(mem_size=memory.max_size, storage_policy=memory)`` (or as
ER-ACE's ``storage_policy``).  Where the images come from is its ``source``
(a memory kind, :mod:`.memory`): distilled or real images alike.
"""
from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import torch

from avalanche.benchmarks.utils.utils import concat_datasets
from avalanche.training.storage_policy import ExemplarsBuffer

from ... import validate
from ...deprecated import module_getattr
from ...errors import FyiError
from .benchmarks import experience_tensors, tensor_dataset

if TYPE_CHECKING:  # memory.make_memory builds this class: import the type only
    from .memory import MemorySource


class ReplayMemory(ExemplarsBuffer):
    """An Avalanche storage policy holding ``ipc`` images per seen class, filled class by class.

    ``post_adapt(agent_state, exp)`` (called by ``ReplayPlugin`` after each
    training experience) asks ``source`` for the images of every class of
    ``exp`` not seen before; classes already in memory keep their images.
    Per-class quota: ``min(ipc, max_size // number of seen classes)``, so the
    memory never exceeds ``max_size``; with ``max_size >= ipc * classes`` every
    seen class holds exactly ``ipc`` images.  ``resize`` (Avalanche API) drops
    the last images of each class when the quota shrinks.  Items are ``(x, y, t)``;
    ``t`` is the task label of the class's experience.
    """

    def __init__(self, max_size: int, ipc: int, source: MemorySource):
        ipc, max_size = validate.ipc(int(ipc), parsed=True), int(max_size)
        if max_size < ipc:
            raise FyiError(f"a memory of {max_size} images cannot hold {ipc} images of even one class; "
                           f"use mem_size >= ipc x number of classes")
        super().__init__(max_size)
        self.ipc, self.source = ipc, source
        self._images: dict[int, torch.Tensor] = {}  # class -> images, in order of arrival
        self._tasks: dict[int, int] = {}
        self.history: list[dict] = []

    # ------------------------------------------------------------------ views
    @property
    def seen_classes(self) -> list[int]:
        return list(self._images)

    def class_counts(self) -> dict[int, int]:
        return {c: int(v.shape[0]) for c, v in self._images.items()}

    def _cat(self):
        if not self._images:
            return None
        imgs = torch.cat(list(self._images.values()))
        labels = torch.cat([torch.full((v.shape[0],), c, dtype=torch.long) for c, v in self._images.items()])
        tasks = torch.cat([torch.full((v.shape[0],), self._tasks[c], dtype=torch.long) for c, v in self._images.items()])
        return imgs, labels, tasks

    @property
    def images(self) -> torch.Tensor:
        out = self._cat()
        return out[0] if out else torch.zeros(0)

    @property
    def labels(self) -> torch.Tensor:
        out = self._cat()
        return out[1] if out else torch.zeros(0, dtype=torch.long)

    def __len__(self) -> int:
        return sum(v.shape[0] for v in self._images.values())

    def quota(self, n_classes: int | None = None) -> int:
        n = len(self._images) if n_classes is None else int(n_classes)
        return self.ipc if n == 0 else min(self.ipc, self.max_size // n)

    # ------------------------------------------------------------------ Avalanche API
    def update(self, strategy, **kwargs):
        """What ``ReplayPlugin`` calls after each training experience (Avalanche 0.6): ``post_adapt``.

        Overridden only to skip the base class's deprecation warning; the work is in :meth:`post_adapt`.
        """
        self.post_adapt(strategy, strategy.experience)

    def post_adapt(self, agent_state, exp):
        data = exp.dataset
        targets = torch.as_tensor(list(data.targets), dtype=torch.long)
        new = [c for c in sorted(set(targets.tolist())) if c not in self._images]
        if not new:
            return
        per_class = self.quota(len(self._images) + len(new))
        if per_class < self.ipc:
            warnings.warn(f"replay memory of {self.max_size} images holds only {per_class} per class for "
                          f"{len(self._images) + len(new)} classes (ipc {self.ipc})", stacklevel=2)
        tasks = torch.as_tensor(list(data.targets_task_labels), dtype=torch.long) \
            if hasattr(data, "targets_task_labels") else torch.zeros_like(targets)
        if per_class > 0:
            if self.source.needs_data:
                x, y, _ = experience_tensors(data)
            else:
                x, y = None, targets
            images, labels = self.source.select(new, per_class, x, y, agent_state=agent_state, experience=exp)
            shape = tuple(x.shape[1:]) if x is not None else tuple(torch.as_tensor(data[0][0]).shape)
            self._check(images, labels, new, per_class, shape)
        else:  # the memory is too small for even one image per class: the class is seen, holds nothing
            shape = tuple(torch.as_tensor(data[0][0]).shape)
            images, labels = torch.zeros((0,) + shape), torch.zeros(0, dtype=torch.long)
        for c in new:
            self._tasks[c] = int(tasks[targets == c][0])
            self._images[c] = images[labels == c].detach().cpu().float().contiguous()
        self._shrink()
        self._rebuild()
        self.history.append({"experience": getattr(exp, "current_experience", None), "new_classes": new,
                             "per_class": per_class, "size": len(self)})

    def resize(self, strategy, new_size: int):
        new_size = int(new_size)
        if new_size < 0:
            raise FyiError(f"memory size must be >= 0, got {new_size}")
        self.max_size = new_size
        self._shrink()
        self._rebuild()

    # ------------------------------------------------------------------ internals
    def _check(self, images, labels, classes, per_class, shape):
        if images.dim() != 4 or images.shape[0] != labels.shape[0]:
            raise FyiError(f"{self.source.kind} returned {tuple(images.shape)} images for {labels.shape[0]} labels")
        if tuple(images.shape[1:]) != tuple(shape):
            raise FyiError(f"{self.source.kind} images are {tuple(images.shape[1:])} but the experience's are "
                           f"{tuple(shape)}; use a synthetic set of the benchmark's dataset")
        for c in classes:
            got = int((labels == c).sum())
            if got != per_class:
                raise RuntimeError(f"{self.source.kind} gave {got} images of class {c}, expected {per_class}")
        if not set(labels.tolist()) <= set(classes):
            raise RuntimeError(f"{self.source.kind} returned labels outside {classes}")

    def _shrink(self):
        q = self.quota()
        for c in list(self._images):
            if self._images[c].shape[0] > q:
                self._images[c] = self._images[c][:q].clone()

    def _rebuild(self):
        out = self._cat()
        if out is None or out[0].shape[0] == 0:
            self.buffer = concat_datasets([])
            return
        self.buffer = tensor_dataset(*out)

    def describe(self) -> dict:
        return {"max_size": self.max_size, "ipc": self.ipc, "label": getattr(self.source, "label", None),
                "source": self.source.describe(),
                "class_counts": {str(c): n for c, n in self.class_counts().items()}}


__getattr__ = module_getattr(__name__, globals().__getitem__)  # the old name warns (fyi_apps.deprecated)
