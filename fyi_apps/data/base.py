"""The dataset types every family returns: :class:`DatasetInfo`, :class:`Split`,
:class:`Dataset`, and the :class:`LoadRequest` a family's loader is given.

Images are held as uint8 ``[N, C, H, W]`` plus int64 labels and normalised on
demand (:meth:`Dataset.normalize`).  Constants shared by several families (the
digit class names, ImageNet's mean/std) live here too.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from .. import validate
from ..errors import FyiError

DIGIT_CLASSES = tuple(str(i) for i in range(10))

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize_uint8(x: torch.Tensor, mean, std) -> torch.Tensor:
    """uint8 images ``[..., C, H, W]`` -> float32 ``(x / 255 - mean) / std`` (``mean``/``std``: per channel)."""
    m = torch.as_tensor(mean, dtype=torch.float32, device=x.device).view(-1, 1, 1)
    s = torch.as_tensor(std, dtype=torch.float32, device=x.device).view(-1, 1, 1)
    return (x.to(torch.float32, copy=True).div_(255.0) - m) / s


@dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a dataset (no pixels)."""

    name: str
    channels: int
    image_size: int  # square: H == W
    class_names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


@dataclass(repr=False)
class Split:
    """One split in memory: uint8 images ``[N, C, H, W]`` and int64 labels ``[N]``."""

    images: torch.Tensor
    labels: torch.Tensor
    num_classes: int
    class_indices: list[torch.Tensor] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        images, labels = self.images, self.labels
        if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.dim() != 4:
            got = f"{getattr(images, 'dtype', type(images).__name__)} {tuple(getattr(images, 'shape', ()))}"
            raise FyiError(f"split images must be a uint8 tensor [N, C, H, W], got {got}; "
                           "convert them in the dataset loader")
        labels = torch.as_tensor(labels).to(torch.int64).reshape(-1)
        if labels.numel() != images.shape[0]:
            raise FyiError(f"split has {images.shape[0]} images but {labels.numel()} labels; "
                           "the dataset loader must give one label per image")
        self.num_classes = int(self.num_classes)
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= self.num_classes):
            raise FyiError(f"split labels must lie in 0..{self.num_classes - 1}, found "
                           f"{int(labels.min())}..{int(labels.max())}; fix the dataset loader")
        self.images = images.contiguous()
        self.labels = labels.contiguous()
        counts = torch.bincount(self.labels, minlength=self.num_classes)
        order = torch.argsort(self.labels, stable=True)
        self.class_indices = [chunk.clone() for chunk in torch.split(order, counts.tolist())]

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __repr__(self) -> str:
        return f"Split({len(self)} images {list(self.images.shape[1:])} uint8, {self.num_classes} classes)"

    def class_counts(self) -> list[int]:
        return [int(ix.numel()) for ix in self.class_indices]

    def sample_indices(self, c: int, n: int, generator: torch.Generator,
                       class_name: str | None = None) -> torch.Tensor:
        """``n`` distinct random indices (int64, CPU) of images of class ``c``."""
        c, n = int(c), int(n)
        label = f"class {c}" + (f" ({class_name})" if class_name else "")
        if not 0 <= c < self.num_classes:
            raise FyiError(f"{label} does not exist: classes are 0..{self.num_classes - 1}")
        pool = self.class_indices[c]
        if n < 0:
            raise FyiError(f"cannot draw n={n} images of {label}; n must be >= 0")
        if n > pool.numel():
            raise FyiError(f"{label} has only {pool.numel()} images, cannot draw n={n} distinct ones; "
                           f"ask for at most {pool.numel()} images per class")
        dev = generator.device if generator is not None else torch.device("cpu")
        perm = torch.randperm(pool.numel(), generator=generator, device=dev)[:n].cpu()
        return pool[perm]


@dataclass(repr=False)
class Dataset:
    """A dataset in memory plus how to normalise it."""

    info: DatasetInfo
    train: Split
    test: Split
    source: str  # human-readable origin

    def __repr__(self) -> str:
        i = self.info
        return (f"Dataset({i.name!r}: train {len(self.train)}, test {len(self.test)} images, {i.channels}x{i.image_size}"
                f"x{i.image_size}, {i.num_classes} classes)")

    def as_torch_dataset(self, split: str = "train", transform=None) -> torch.utils.data.Dataset:
        """A ``torch.utils.data.Dataset`` of ``(image, label)``: images normalised float ``[C, H, W]``.

        Args:
            split: ``"train"`` or ``"test"``.
            transform: optional callable applied to each normalised image tensor (e.g. a torchvision v2 transform).

        Returns:
            A map-style dataset for a ``DataLoader`` (or Avalanche's ``as_classification_dataset``).

        Example:
            >>> loader = torch.utils.data.DataLoader(ds.as_torch_dataset("train"), batch_size=256, shuffle=True)
        """
        if split not in ("train", "test"):
            raise FyiError(f"split must be 'train' or 'test', got {split!r}")
        part = self.train if split == "train" else self.test
        return TensorImages(part.images, part.labels, lambda x: normalize_uint8(x, self.info.mean, self.info.std),
                            transform)

    def _stats(self, device, dtype=torch.float32):
        mean = torch.tensor(self.info.mean, dtype=dtype, device=device).view(-1, 1, 1)
        std = torch.tensor(self.info.std, dtype=dtype, device=device).view(-1, 1, 1)
        return mean, std

    def normalize(self, images_uint8: torch.Tensor, device=None) -> torch.Tensor:
        """uint8 ``[..., C, H, W]`` -> float32 ``(x/255 - mean)/std`` on ``device``."""
        if images_uint8.dtype != torch.uint8:
            raise TypeError(f"normalize() expects uint8 images, got {images_uint8.dtype}")
        device = images_uint8.device if device is None else torch.device(device)
        return normalize_uint8(images_uint8.to(device), self.info.mean, self.info.std)

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised float images -> float images in [0, 1] (clamped)."""
        mean, std = self._stats(x.device, x.dtype if x.is_floating_point() else torch.float32)
        return (x * std + mean).clamp(0.0, 1.0)

    def real_images(self, c: int, n: int, generator: torch.Generator, device=None) -> torch.Tensor:
        """``n`` random training images of class ``c``, normalised, on ``device``."""
        names = self.info.class_names
        idx = self.train.sample_indices(c, n, generator,
                                        class_name=names[c] if 0 <= int(c) < len(names) else None)
        return self.normalize(self.train.images[idx], device)

    def reduced(self, per_class: int, seed: int = 0) -> "Dataset":
        """The same dataset with ``per_class`` training images of each class (a seeded random subset, kept
        in dataset order; the test split is unchanged).  A class with fewer images is refused."""
        from ..runtime import derive_seed, make_generator

        per_class = validate.integer(per_class, "train_per_class", min=1)
        counts = self.train.class_counts()
        if per_class > min(counts):
            c = counts.index(min(counts))
            raise FyiError(f"train_per_class {per_class} is larger than class {c} ({self.info.class_names[c]}) of "
                           f"{self.info.name}, which has {min(counts)} training images; use {min(counts)} or less")
        g = make_generator(derive_seed(seed, "train-subset", per_class))
        idx = torch.cat([self.train.sample_indices(c, per_class, g) for c in range(self.train.num_classes)])
        idx = idx.sort().values
        train = Split(self.train.images[idx], self.train.labels[idx], self.train.num_classes)
        return Dataset(self.info, train, self.test, f"{self.source} ({per_class} training images per class, "
                                                    f"subset seed {seed})")

    def check_ipc(self, ipc: int) -> None:
        """Refuse an ``ipc`` (images per class) this dataset cannot give: it must be
        at least 1 (:func:`fyi_apps.validate.ipc`) and no larger than the smallest
        class of the training split."""
        counts = self.train.class_counts()
        validate.ipc(ipc, parsed=True)
        smallest = min(counts)
        if ipc > smallest:
            c = counts.index(smallest)
            raise FyiError(
                f"--ipc {ipc} is larger than class {c} ({self.info.class_names[c]}) of {self.info.name}, "
                f"which has {smallest} training images; use --ipc {smallest} or less"
            )


def flip_extend(split: Split) -> Split:
    """Every image plus its horizontal mirror (paper Sec. 4.3.4): N -> 2N, labels repeated."""
    images = torch.cat([split.images, split.images.flip(-1)])
    return Split(images, split.labels.repeat(2), split.num_classes)


class TensorImages(torch.utils.data.Dataset):
    """Images and labels held as tensors, served as ``(prepare(image), label)`` (then ``transform``, if given)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, prepare=None, transform=None):
        self.images, self.labels = images, labels.long()
        self.prepare, self.transform = prepare, transform
        self.targets = self.labels.tolist()  # the attribute torchvision datasets and Avalanche look for

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, i: int):
        x = self.images[i]
        if self.prepare is not None:
            x = self.prepare(x)
        if self.transform is not None:
            x = self.transform(x)
        return x, int(self.labels[i])


@dataclass(frozen=True)
class LoadRequest:
    """What a dataset loader is given.

    ``roots`` are the folders to look in, in order. ``origin`` says where they
    came from: ``"argument"`` (``root=`` / ``--data-root``), ``"FYI_DATA"`` or
    ``"default"``. ``image_size`` is ``None`` for the dataset's own size.
    """

    name: str
    roots: tuple[Path, ...]
    origin: str
    image_size: int | None = None
    cache: bool = True
    option: str | None = None  # the part after ':' in e.g. "imagefolder:/path"

    @property
    def user_pointed(self) -> bool:
        """The user named these folders (so a folder may itself hold the files)."""
        return self.origin in ("argument", "FYI_DATA")
