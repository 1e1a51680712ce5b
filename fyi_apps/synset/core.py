"""The synthetic set itself: :class:`SyntheticSet` (images, labels and everything
needed to use them later) and the names of the file format's fields.

``images`` are normalised float32 ``[N, C, H, W]`` (what the networks see);
``encoding`` says how they become training images (:mod:`.codec`).
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..errors import FyiError
from .codec import decode_images

FORMAT_NAME = "fyi-apps.synset"
FORMAT_VERSION = 1
META_KEY = "fyi_apps"
SUFFIX = ".fyi.safetensors"

# Fields of SyntheticSet that live in the JSON metadata (everything but tensors).
_META_FIELDS = (
    "dataset", "class_names", "mean", "std", "method", "fyi", "ipc", "lr",
    "config", "seed", "encoding", "extra", "versions", "created",
)


@dataclass(eq=False, repr=False)
class SyntheticSet:
    """A distilled (or selected, or imported) set of training images.

    ``images`` are normalised with ``mean``/``std``; ``labels`` are hard labels.
    ``soft_labels`` (optional ``[N, num_classes]`` float) is kept for sets that
    come with them (DATM).  ``encoding`` says how to turn the stored images into
    training images (see :meth:`decoded`).
    """

    images: Tensor
    labels: Tensor
    dataset: str
    class_names: list
    mean: list
    std: list
    method: str
    fyi: str | None = None
    ipc: int = 0
    lr: float | None = None
    config: dict = field(default_factory=dict)
    seed: int | None = None
    encoding: dict = field(default_factory=lambda: {"type": "plain"})
    extra: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)
    created: str = ""
    soft_labels: Tensor | None = None

    def __post_init__(self):
        self.class_names = [str(c) for c in self.class_names]
        self.mean = [float(v) for v in self.mean]
        self.std = [float(v) for v in self.std]
        self.dataset = str(self.dataset)
        self.method = str(self.method)
        if self.lr is not None:
            self.lr = float(self.lr)
        if isinstance(self.labels, Tensor) and self.labels.dtype != torch.int64 and not self.labels.is_floating_point():
            self.labels = self.labels.long()
        if not self.ipc and isinstance(self.labels, Tensor) and self.labels.numel() and self.labels.dim() == 1:
            try:
                self.ipc = max(self.images_per_class) if self.class_names else 0
            except RuntimeError:  # negative labels: reported by validate()
                self.ipc = 0
        self.ipc = int(self.ipc)

    # -- shape helpers -------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def image_size(self) -> int:
        """Height of the stored images (fyi-apps datasets are square)."""
        return int(self.images.shape[-2])

    @property
    def images_per_class(self) -> list[int]:
        """Number of stored images of each class, indexed by class."""
        counts = torch.bincount(self.labels.detach().cpu().long(), minlength=self.num_classes)
        return [int(v) for v in counts.tolist()]

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __repr__(self) -> str:
        fyi = f", fyi={self.fyi!r}" if self.fyi else ""
        enc = "" if self.encoding.get("type", "plain") == "plain" else f", encoding={self.encoding}"
        return (
            f"SyntheticSet(method={self.method!r}{fyi}, dataset={self.dataset!r}, ipc={self.ipc}, "
            f"images={list(self.images.shape)}, lr={self.lr}{enc})"
        )

    # -- views ---------------------------------------------------------------
    def as_torch_dataset(self, transform=None):
        """A ``torch.utils.data.Dataset`` of ``(image, label)`` of the decoded set (normalised like its dataset).

        Args:
            transform: optional callable applied to each image tensor (e.g. a torchvision v2 transform).

        Example:
            >>> loader = torch.utils.data.DataLoader(s.as_torch_dataset(), batch_size=256, shuffle=True)
        """
        from ..data.base import TensorImages

        images, labels = self.decoded()
        return TensorImages(images.detach().float().cpu(), labels.cpu(), None, transform)

    def show(self, max_per_class: int | None = None, *, figure: bool = False, padding: int = 2):
        """A grid of the stored images, one row per class, in ``[0, 1]`` (torchvision's ``make_grid``).

        The same grid ``fyi show`` and ``fyi distill --grid`` write as PNG.

        Args:
            max_per_class: images per row (default: all of them).
            figure: return a matplotlib ``Figure`` with the class names as row labels instead of the tensor.
            padding: pixels between images.

        Returns:
            A ``[3, H, W]`` float tensor, or a ``matplotlib.figure.Figure`` when ``figure=True``.

        Example:
            >>> grid = s.show()                # torch.Tensor [3, H, W]
            >>> s.show(figure=True).savefig("set.png")
        """
        from ..plots import class_grid, grid_figure

        grid = class_grid(self.to_pixels().cpu(), self.labels.cpu(), self.num_classes,
                          max_per_class=max_per_class, padding=padding)
        if not figure:
            return grid
        return grid_figure(grid, self.class_names, tile=self.image_size, padding=padding, title=self.title())

    def title(self) -> str:
        """A one-line description for plots: method, FYI view, dataset and images per class."""
        view = f"+FYI({self.fyi})" if self.fyi else ""
        return f"{self.method.upper()}{view} on {self.dataset}, {self.ipc} img/cls"

    def decoded(self) -> tuple[Tensor, Tensor]:
        """Images and labels as networks should train on them.

        ``plain``: as stored.  Other encodings are decoded by their codec
        (:mod:`.codec`); ``multiformation`` (IDC) with factor ``f``: every stored
        image becomes ``f*f`` full-size images, each with the label of its
        source image.
        """
        return decode_images(self.images, self.labels, self.encoding)

    def to_pixels(self) -> Tensor:
        """Stored images denormalised to ``[0, 1]`` float (clamped)."""
        shape = (1, -1, 1, 1)
        mean = torch.tensor(self.mean, dtype=self.images.dtype, device=self.images.device).view(shape)
        std = torch.tensor(self.std, dtype=self.images.dtype, device=self.images.device).view(shape)
        return (self.images.detach() * std + mean).clamp(0.0, 1.0)

    def to_uint8(self) -> Tensor:
        """Stored images as 8-bit pixels ``[N, C, H, W]`` (what an image export stores: :meth:`to_pixels` x 255, rounded)."""
        return (self.to_pixels() * 255.0).round().clamp(0, 255).to(torch.uint8)

    def quantized(self) -> "SyntheticSet":
        """A copy whose images went through 8-bit pixels (:meth:`to_uint8`) and back to normalised floats.

        A distilled set is stored as float32, four bytes a value; exported as
        images it costs one.  Train on this copy to see whether accuracy
        survives that export.  ``extra["quantized"]`` records it.  Only plain
        (not encoded) sets.
        """
        if self.encoding.get("type", "plain") != "plain":
            raise FyiError(f"quantized() needs plain stored images; this set is {self.encoding.get('type')}-encoded")
        from ..data.base import normalize_uint8  # the one uint8 -> normalised float rule

        images = normalize_uint8(self.to_uint8(), self.mean, self.std)
        return dataclasses.replace(self, images=images.to(self.images.dtype), extra={**self.extra, "quantized": "uint8"},
                                   versions={}, created="")

    def to(self, device) -> "SyntheticSet":
        """A shallow copy with the tensors on ``device``."""
        dev = torch.device(device)
        soft = None if self.soft_labels is None else self.soft_labels.to(dev)
        return dataclasses.replace(self, images=self.images.to(dev), labels=self.labels.to(dev), soft_labels=soft)

    def metadata(self) -> dict:
        """The JSON-able fields (everything except tensors), as stored in the file."""
        out = {name: _jsonable(getattr(self, name), name) for name in _META_FIELDS}
        out["format_version"] = FORMAT_VERSION
        return out


def _jsonable(obj: Any, where: str) -> Any:
    """Plain JSON types (dict with str keys, list, str, int, float, bool, None)."""
    if obj is None or isinstance(obj, (str, bool, int, float)):
        return obj
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v, where) for k, v in obj.items()}
    if isinstance(obj, Tensor):
        return obj.detach().cpu().tolist()
    if isinstance(obj, (Path, torch.device, torch.dtype)):
        return str(obj)
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = sorted(obj, key=repr) if isinstance(obj, (set, frozenset)) else obj
        return [_jsonable(v, where) for v in items]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _jsonable(dataclasses.asdict(obj), where)
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return obj.item()
    if hasattr(obj, "tolist") and callable(obj.tolist):  # numpy arrays
        return obj.tolist()
    raise FyiError(
        f"synthetic-set field {where!r} contains a {type(obj).__name__}, which cannot be stored; "
        f"convert it to numbers, strings, lists or dicts"
    )


def _folder_name(class_name: str) -> str:
    """A file-system-safe folder name for a class."""
    name = re.sub(r'[\\/:*?"<>|\x00-\x1f]', "_", str(class_name)).strip()
    return name if name not in ("", ".", "..") else f"_{name}_"
