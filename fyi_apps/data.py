"""The one place for datasets: finding the files, decoding them once, caching them.

Every dataset is held in memory as uint8 images ``[N, C, H, W]`` plus int64
labels (:class:`Split`) and normalised on demand with the dataset's mean/std
(:meth:`Dataset.normalize`), which is what the networks see.

Where the files are looked for (first match wins):

* ``root=`` (Python) / ``--data-root DIR`` (CLI), if given: only there;
* else every folder in ``$FYI_DATA`` (``os.pathsep``-separated), if set;
* else ``./data``, ``../shared/data`` (relative to the working directory) and
  ``~/.cache/fyi-apps/data``.

Some datasets also look in a system folder (Fashion-MNIST:
``/usr/share/datasets/fashion-mnist``, where Debian's ``dataset-fashion-mnist``
package puts it) unless ``root=`` is given.

Decoded splits are cached under ``runtime.cache_dir()/datasets/`` keyed by a
hash of the source files, the dataset name, the image size and
:data:`FORMAT_VERSION`, so each dataset is decoded once.

Your own dataset: ``register_dataset("mine", loader)`` where ``loader`` takes a
:class:`LoadRequest` and returns a :class:`Dataset`.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import os
import shutil
import tarfile
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable, Sequence

import torch

from . import runtime
from .errors import FyiError

log = logging.getLogger(__name__)

#: Bump when the decoded content of any dataset changes; old caches are then ignored.
FORMAT_VERSION = 1

#: Where to look when neither ``root=`` nor ``$FYI_DATA`` is given (relative to the cwd).
DEFAULT_SEARCH_DIRS = ("./data", "../shared/data", "~/.cache/fyi-apps/data")

_HOW_TO_POINT = (
    "put the files there, or point at their folder with --data-root DIR (CLI), "
    "root=DIR (Python) or the FYI_DATA environment variable"
)


# --------------------------------------------------------------------------- #
# Data classes
# --------------------------------------------------------------------------- #
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


@dataclass
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


@dataclass
class Dataset:
    """A dataset in memory plus how to normalise it."""

    info: DatasetInfo
    train: Split
    test: Split
    source: str  # human-readable origin

    def _stats(self, device, dtype=torch.float32):
        mean = torch.tensor(self.info.mean, dtype=dtype, device=device).view(-1, 1, 1)
        std = torch.tensor(self.info.std, dtype=dtype, device=device).view(-1, 1, 1)
        return mean, std

    def normalize(self, images_uint8: torch.Tensor, device=None) -> torch.Tensor:
        """uint8 ``[..., C, H, W]`` -> float32 ``(x/255 - mean)/std`` on ``device``."""
        if images_uint8.dtype != torch.uint8:
            raise TypeError(f"normalize() expects uint8 images, got {images_uint8.dtype}")
        device = images_uint8.device if device is None else torch.device(device)
        x = images_uint8.to(device).to(torch.float32).div_(255.0)
        mean, std = self._stats(device)
        return x.sub_(mean).div_(std)

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


def flip_extend(split: Split) -> Split:
    """Every image plus its horizontal mirror (paper Sec. 4.3.4): N -> 2N, labels repeated."""
    images = torch.cat([split.images, split.images.flip(-1)])
    return Split(images, split.labels.repeat(2), split.num_classes)


# --------------------------------------------------------------------------- #
# Registry
# --------------------------------------------------------------------------- #
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


Loader = Callable[[LoadRequest], Dataset]


@dataclass(frozen=True)
class _Entry:
    name: str
    loader: Loader
    info: DatasetInfo | Callable[[LoadRequest], DatasetInfo] | None
    system_dirs: tuple[Path, ...]


_REGISTRY: dict[str, _Entry] = {}
_ALIASES: dict[str, str] = {}
_NO_OPTION: set[str] = set()  # built-ins whose name takes no ":..." suffix (all but imagefolder)


def _key(name: str) -> str:
    return str(name).strip().lower().replace("_", "-")


def register_dataset(name: str, loader: Loader | None = None, *,
                     info: DatasetInfo | Callable[[LoadRequest], DatasetInfo] | None = None,
                     aliases: Iterable[str] = (), system_dirs: Iterable[str | Path] = (),
                     replace_existing: bool = False):
    """Add a dataset; usable as ``register_dataset("x", fn)`` or ``@register_dataset("x")``.

    ``loader(request: LoadRequest) -> Dataset``. ``info`` is a static
    :class:`DatasetInfo` (or a function of the request) so that
    :func:`dataset_info` need not load the data; without it, ``dataset_info``
    loads the dataset. ``system_dirs`` are searched after the usual folders
    unless ``root=`` is given.
    """
    key = _key(name)

    def add(fn: Loader) -> Loader:
        if not callable(fn):
            raise FyiError(f"dataset loader for {name!r} must be callable")
        if not replace_existing and (key in _REGISTRY or key in _ALIASES):
            raise FyiError(f"dataset {name!r} is already registered; pick another name "
                           "or pass replace_existing=True")
        _REGISTRY[key] = _Entry(key, fn, info, tuple(Path(p) for p in system_dirs))
        for a in aliases:
            _ALIASES[_key(a)] = key
        return fn

    if loader is None:
        return add
    return add(loader)


def list_datasets() -> list[str]:
    """Registered dataset names (aliases not included)."""
    return list(_REGISTRY)


def _resolve_name(name: str) -> tuple[_Entry, str | None]:
    if not isinstance(name, str) or not name.strip():
        raise FyiError(f"dataset name must be a non-empty string, got {name!r}")
    text = name.strip()
    option = None
    head, sep, tail = text.partition(":")
    # "imagefolder:/path" (keep Windows drive letters out of it: require a known head)
    if sep and (_key(head) in _REGISTRY or _key(head) in _ALIASES):
        text, option = head, tail
    key = _key(text)
    key = _ALIASES.get(key, key)
    entry = _REGISTRY.get(key)
    if entry is None:
        raise FyiError(f"unknown dataset {name!r}; known datasets: {', '.join(list_datasets())}")
    return entry, option


def _abspath(p: str | Path) -> Path:
    return Path(os.path.normpath(os.path.abspath(os.path.expanduser(str(p)))))


def _request(entry: _Entry, root, option: str | None, image_size: int | None,
             cache: bool) -> LoadRequest:
    if image_size is not None:
        try:
            ok = not isinstance(image_size, bool) and int(image_size) == image_size and int(image_size) >= 1
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise FyiError(f"image_size must be a positive integer, got {image_size!r}")
        image_size = int(image_size)
    if option is not None and entry.name in _NO_OPTION:
        raise FyiError(f"dataset {entry.name} takes no ':...' suffix; point at its files with "
                       "--data-root DIR / root=DIR or FYI_DATA")
    if root is not None:
        r = Path(root).expanduser()
        if not r.exists():
            raise FyiError(f"data root {r} does not exist; pass an existing folder with "
                           "--data-root DIR / root=DIR or set FYI_DATA")
        return LoadRequest(entry.name, (_abspath(r),), "argument", image_size, cache, option)
    env = os.environ.get("FYI_DATA")
    if env:
        roots = tuple(_abspath(p) for p in env.split(os.pathsep) if p.strip())
        origin = "FYI_DATA"
    else:
        roots = tuple(_abspath(p) for p in DEFAULT_SEARCH_DIRS)
        origin = "default"
    roots = roots + tuple(p for p in entry.system_dirs if p not in roots)
    return LoadRequest(entry.name, roots, origin, image_size, cache, option)


def dataset_info(name: str, root=None) -> DatasetInfo:
    """The dataset's :class:`DatasetInfo`; static where possible, else read from the files."""
    entry, option = _resolve_name(name)
    if isinstance(entry.info, DatasetInfo):
        return entry.info
    req = _request(entry, root, option, None, True)
    if callable(entry.info):
        return entry.info(req)
    return entry.loader(req).info


def load_dataset(name: str, root: str | Path | None = None, *, extend_flip: bool = False,
                 image_size: int | None = None, cache: bool = True) -> Dataset:
    """Load a dataset by name (see :func:`list_datasets`).

    ``root``: a folder holding the files (else ``$FYI_DATA``, else the default
    folders). ``extend_flip``: add the horizontal mirror of every training
    image (:func:`flip_extend`). ``image_size``: resize (datasets of fixed
    size) or decode at that size (folders of images). ``cache``: read/write
    the decoded cache.
    """
    entry, option = _resolve_name(name)
    req = _request(entry, root, option, image_size, cache)
    ds = entry.loader(req)
    if not isinstance(ds, Dataset):
        raise FyiError(f"the loader of dataset {entry.name!r} returned {type(ds).__name__}, "
                       "not a Dataset; fix the loader")
    if image_size is not None and ds.info.image_size != image_size:
        ds = _resized(ds, image_size)
    if extend_flip:
        ds = Dataset(ds.info, flip_extend(ds.train), ds.test,
                     ds.source + "; training images extended with their horizontal flips")
    return ds


# --------------------------------------------------------------------------- #
# Helpers: finding files, errors, caching, resizing
# --------------------------------------------------------------------------- #
def _missing(req: LoadRequest, what: str, looked_for: str, where: Sequence[Path] | None = None) -> FyiError:
    dirs = ", ".join(str(p) for p in (where if where is not None else req.roots))
    return FyiError(f"{what} not found: looked for {looked_for} in {dirs}; {_HOW_TO_POINT}")


def _stat_fingerprint(paths: Iterable[Path], base: Path | None = None) -> str:
    """Hash over (relative path, size, mtime) of files: cheap change detection for folders."""
    h = hashlib.sha256()
    for p in sorted(Path(x) for x in paths):
        st = p.stat()
        rel = str(p.relative_to(base)) if base is not None else p.name
        h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _cache_path(name: str, key: str) -> Path:
    return runtime.cache_dir() / "datasets" / f"{name}-{key[:24]}.pt"


def _cached(req: LoadRequest, fingerprint: str, source: str,
            decode: Callable[[], tuple[DatasetInfo, Split, Split]]) -> Dataset:
    """Return the cached decoded splits for this source, or decode and cache them."""
    key = hashlib.sha256(json.dumps(
        [FORMAT_VERSION, req.name, req.image_size, fingerprint]).encode()
    ).hexdigest()
    path = _cache_path(req.name, key)
    if req.cache and path.exists():
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
            if blob.get("format") != FORMAT_VERSION or blob.get("key") != key:
                raise ValueError("stale cache entry")
            info = DatasetInfo(**{k: (tuple(v) if isinstance(v, list) else v)
                                  for k, v in blob["info"].items()})
            train = Split(blob["train_images"], blob["train_labels"], info.num_classes)
            test = Split(blob["test_images"], blob["test_labels"], info.num_classes)
            return Dataset(info, train, test, source)
        except Exception as exc:  # unreadable cache: decode again and overwrite it
            log.warning("ignoring unreadable dataset cache %s (%s)", path, exc)
    log.info("decoding %s (once; cached afterwards)", source)
    info, train, test = decode()
    if req.image_size is not None and info.image_size != req.image_size:
        info, train, test = _resize_all(info, train, test, req.image_size)
    if req.cache:
        runtime.save_torch(path, {
            "format": FORMAT_VERSION, "key": key, "info": asdict(info), "source": source,
            "train_images": train.images, "train_labels": train.labels,
            "test_images": test.images, "test_labels": test.labels,
        })
    return Dataset(info, train, test, source)


def _resize_uint8(images: torch.Tensor, size: int, chunk: int = 2048) -> torch.Tensor:
    """Resize (shorter side) + center-crop uint8 ``[N, C, H, W]`` to ``size`` x ``size``."""
    import torch.nn.functional as F

    n, c, h, w = images.shape
    if (h, w) == (size, size):
        return images
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    out = torch.empty((n, c, size, size), dtype=torch.uint8)
    top, left = int(round((nh - size) / 2.0)), int(round((nw - size) / 2.0))
    for i in range(0, n, chunk):
        x = images[i:i + chunk].to(torch.float32)
        x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)
        x = x[:, :, top:top + size, left:left + size]
        out[i:i + chunk] = x.round_().clamp_(0, 255).to(torch.uint8)
    return out


def _resize_all(info: DatasetInfo, train: Split, test: Split, size: int):
    train = Split(_resize_uint8(train.images, size), train.labels, train.num_classes)
    test = Split(_resize_uint8(test.images, size), test.labels, test.num_classes)
    return replace(info, image_size=size), train, test


def _resized(ds: Dataset, size: int) -> Dataset:
    info, train, test = _resize_all(ds.info, ds.train, ds.test, size)
    return Dataset(info, train, test, f"{ds.source}; resized to {size}x{size}")


def _channel_stats(images: torch.Tensor, chunk: int = 4096) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean/std of uint8 images scaled to [0, 1] (population std)."""
    c = images.shape[1]
    s = torch.zeros(c, dtype=torch.float64)
    s2 = torch.zeros(c, dtype=torch.float64)
    for i in range(0, images.shape[0], chunk):
        x = images[i:i + chunk].to(torch.float64).div_(255.0).transpose(0, 1).reshape(c, -1)
        s += x.sum(1)
        s2 += (x * x).sum(1)
    count = images.shape[0] * images.shape[2] * images.shape[3]
    if count == 0:
        raise FyiError("cannot compute mean/std of an empty training split; add training images")
    mean = s / count
    std = (s2 / count - mean * mean).clamp_min(1e-12).sqrt()
    return tuple(round(float(v), 4) for v in mean), tuple(round(float(v), 4) for v in std)


# --------------------------------------------------------------------------- #
# Decoding images
# --------------------------------------------------------------------------- #
_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F", "P;L"}


def _pil_to_uint8(im, size: int | None):
    """PIL image -> (uint8 tensor [3, S, S], was_grayscale). Resize shorter side + center crop."""
    import numpy as np

    gray = im.mode in _GRAY_MODES
    if size is not None and im.format == "JPEG":
        im.draft("RGB", (size, size))  # DCT-domain downscale, never below `size`
    im = im.convert("RGB")
    w, h = im.size
    s = size if size is not None else min(w, h)
    if (w, h) != (s, s):
        from PIL import Image

        # torchvision's Resize(s) + CenterCrop(s): shorter side -> s, then the middle square
        nw, nh = (s, int(h * s / w)) if w <= h else (int(w * s / h), s)
        if (nw, nh) != (w, h):
            im = im.resize((nw, nh), Image.BILINEAR)
        left, top = int(round((nw - s) / 2.0)), int(round((nh - s) / 2.0))
        im = im.crop((left, top, left + s, top + s))
    arr = np.asarray(im, dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1), gray


def _workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def _decode_files(paths: Sequence[str | Path], size: int | None) -> tuple[torch.Tensor, bool]:
    """Decode image files to uint8 ``[N, 3, S, S]`` (S = ``size`` or the first image's
    shorter side) and tell whether every image was grayscale."""
    from PIL import Image

    n = len(paths)
    if n == 0:
        return torch.empty((0, 3, size or 1, size or 1), dtype=torch.uint8), False
    if size is None:
        with Image.open(paths[0]) as im:
            size = min(im.size)
    out = torch.empty((n, 3, size, size), dtype=torch.uint8)
    gray = [False] * n

    def one(i: int):
        try:
            with Image.open(paths[i]) as im:
                out[i], gray[i] = _pil_to_uint8(im, size)
        except Exception as exc:
            raise FyiError(f"cannot decode image {paths[i]}: {exc}; remove or replace the file") from exc

    with ThreadPoolExecutor(_workers()) as pool:
        for _ in pool.map(one, range(n), chunksize=256):
            pass
    return out, all(gray)


def _decode_blobs(blobs: Sequence[bytes], size: int | None, names: Sequence[str] = ()) -> tuple[torch.Tensor, bool]:
    """Decode encoded images held in memory (JPEG fast path via torchvision.io)."""
    import warnings

    from PIL import Image

    n = len(blobs)
    jpeg = [i for i, b in enumerate(blobs) if b[:3] == b"\xff\xd8\xff"]
    decoded: list[torch.Tensor | None] = [None] * n
    gray = [False] * n
    if jpeg:
        try:  # torchvision's batched JPEG decoder is ~3x faster than PIL; PIL is the fallback
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # torchvision 0.29 deprecates torchvision.io
                from torchvision.io import ImageReadMode, decode_jpeg

                tensors = [torch.frombuffer(bytearray(blobs[i]), dtype=torch.uint8) for i in jpeg]
                for i, t in zip(jpeg, decode_jpeg(tensors, mode=ImageReadMode.RGB)):
                    decoded[i] = t
        except (ImportError, RuntimeError):
            decoded = [None] * n  # unavailable, or a bad file: PIL one by one (names the bad file)
    for i in range(n):
        if decoded[i] is None:
            try:
                with Image.open(io.BytesIO(blobs[i])) as im:
                    decoded[i], gray[i] = _pil_to_uint8(im, None)
            except Exception as exc:
                what = names[i] if i < len(names) else f"image #{i}"
                raise FyiError(f"cannot decode {what}: {exc}; the archive may be corrupt") from exc
    if n == 0:
        return torch.empty((0, 3, size or 1, size or 1), dtype=torch.uint8), False
    shapes = {tuple(t.shape) for t in decoded}
    if len(shapes) == 1:
        out = torch.stack(decoded)
        h, w = out.shape[-2:]
        if size is not None or h != w:
            out = _resize_uint8(out, size if size is not None else min(h, w))
        return out, all(gray)
    s = size if size is not None else min(decoded[0].shape[1:])
    out = torch.empty((n, 3, s, s), dtype=torch.uint8)
    for i, t in enumerate(decoded):
        out[i] = _resize_uint8(t.unsqueeze(0), s)[0]
    return out, all(gray)


# --------------------------------------------------------------------------- #
# Class lists and statistics
# --------------------------------------------------------------------------- #
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")

CIFAR100_CLASSES = tuple("""
apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus
butterfly camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch
crab crocodile cup dinosaur dolphin elephant flatfish forest fox girl hamster house kangaroo
keyboard lamp lawn_mower leopard lion lizard lobster man maple_tree motorcycle mountain mouse
mushroom oak_tree orange orchid otter palm_tree pear pickup_truck pine_tree plain plate poppy
porcupine possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk skyscraper
snail snake spider squirrel streetcar sunflower sweet_pepper table tank telephone television
tiger tractor train trout tulip turtle wardrobe whale willow_tree wolf woman worm
""".split())

DIGIT_CLASSES = tuple(str(i) for i in range(10))

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# The ImageNet subsets of the MTT paper (Cazenavette et al., CVPR 2022). The MTT
# reference code (GeorgeCazenavette/mtt-distillation, utils.py, class Config)
# lists them as ImageNet-1k class indices; label c of a subset is the c-th entry
# of that list. Indices were turned into WordNet ids with the standard sorted
# ImageNet-1k synset order (index i = i-th wnid in sorted order), names are the
# first WordNet lemma. Label order below = MTT's order.
IMAGENET_SUBSETS: dict[str, tuple[tuple[str, str], ...]] = {
    "imagenette": (  # MTT indices 0 217 482 491 497 566 569 571 574 701
        ("n01440764", "tench"), ("n02102040", "English springer"),
        ("n02979186", "cassette player"), ("n03000684", "chain saw"),
        ("n03028079", "church"), ("n03394916", "French horn"),
        ("n03417042", "garbage truck"), ("n03425413", "gas pump"),
        ("n03445777", "golf ball"), ("n03888257", "parachute"),
    ),
    "imagewoof": (  # 193 182 258 162 155 167 159 273 207 229
        ("n02096294", "Australian terrier"), ("n02093754", "Border terrier"),
        ("n02111889", "Samoyed"), ("n02088364", "beagle"),
        ("n02086240", "Shih-Tzu"), ("n02089973", "English foxhound"),
        ("n02087394", "Rhodesian ridgeback"), ("n02115641", "dingo"),
        ("n02099601", "golden retriever"), ("n02105641", "Old English sheepdog"),
    ),
    "imagefruit": (  # 953 954 949 950 951 957 952 945 943 948
        ("n07753275", "pineapple"), ("n07753592", "banana"),
        ("n07745940", "strawberry"), ("n07747607", "orange"),
        ("n07749582", "lemon"), ("n07768694", "pomegranate"),
        ("n07753113", "fig"), ("n07720875", "bell pepper"),
        ("n07718472", "cucumber"), ("n07742313", "Granny Smith"),
    ),
    "imageyellow": (  # 309 986 954 951 987 779 599 291 72 11
        ("n02206856", "bee"), ("n12057211", "yellow lady's slipper"),
        ("n07753592", "banana"), ("n07749582", "lemon"),
        ("n12144580", "corn"), ("n04146614", "school bus"),
        ("n03530642", "honeycomb"), ("n02129165", "lion"),
        ("n01773157", "black and gold garden spider"), ("n01531178", "goldfinch"),
    ),
    "imagemeow": (  # 281 282 283 284 285 291 292 290 289 287
        ("n02123045", "tabby"), ("n02123159", "tiger cat"),
        ("n02123394", "Persian cat"), ("n02123597", "Siamese cat"),
        ("n02124075", "Egyptian cat"), ("n02129165", "lion"),
        ("n02129604", "tiger"), ("n02128925", "jaguar"),
        ("n02128757", "snow leopard"), ("n02127052", "lynx"),
    ),
    "imagesquawk": (  # 84 130 88 144 145 22 96 9 100 89
        ("n01806143", "peacock"), ("n02007558", "flamingo"),
        ("n01818515", "macaw"), ("n02051845", "pelican"),
        ("n02056570", "king penguin"), ("n01614925", "bald eagle"),
        ("n01843383", "toucan"), ("n01518878", "ostrich"),
        ("n01860187", "black swan"), ("n01819313", "sulphur-crested cockatoo"),
    ),
}
# fast.ai's Imagenette folders name the parachute class n03888605; accept it as a stand-in.
_WNID_ALTERNATIVES = {"n03888257": ("n03888605",)}

_STATIC_INFO = {
    "cifar10": DatasetInfo("cifar10", 3, 32, CIFAR10_CLASSES,
                           (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
    "cifar100": DatasetInfo("cifar100", 3, 32, CIFAR100_CLASSES,
                            (0.5071, 0.4866, 0.4409), (0.2673, 0.2564, 0.2762)),
    "mnist": DatasetInfo("mnist", 1, 28, DIGIT_CLASSES, (0.1307,), (0.3081,)),
    "fashion-mnist": DatasetInfo("fashion-mnist", 1, 28, FASHION_CLASSES, (0.2861,), (0.3530,)),
    "svhn": DatasetInfo("svhn", 3, 32, DIGIT_CLASSES,
                        (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)),
}
_STATIC_INFO["cifar10-jpeg"] = replace(_STATIC_INFO["cifar10"], name="cifar10-jpeg")
for _name, _classes in IMAGENET_SUBSETS.items():
    _STATIC_INFO[_name] = DatasetInfo(_name, 3, 128, tuple(n for _, n in _classes),
                                      IMAGENET_MEAN, IMAGENET_STD)


# --------------------------------------------------------------------------- #
# CIFAR-10 / CIFAR-100 (torchvision pickles) and the CIFAR-10 JPEG archive
# --------------------------------------------------------------------------- #
def _torchvision_cifar(kind: str):
    """torchvision's CIFAR readers without the md5 check of the original release
    (our cache is keyed by the files themselves; stand-ins must load too)."""
    from torchvision.datasets import CIFAR10, CIFAR100

    base = CIFAR10 if kind == "cifar10" else CIFAR100

    class _NoMd5(base):
        train_list = [[f, None] for f, _ in base.train_list]
        test_list = [[f, None] for f, _ in base.test_list]
        meta = {**base.meta, "md5": None}

    return _NoMd5


def _find_cifar_pickles(req: LoadRequest, folder: str) -> Path | None:
    """The directory that contains ``folder`` (what torchvision calls root)."""
    for r in req.roots:
        if r.name == folder and r.is_dir():
            return r.parent
        for cand in (r, r / req.name, r / req.name.replace("cifar", "cifar-")):
            if (cand / folder).is_dir():
                return cand
    return None


def _load_cifar_pickles(req: LoadRequest, kind: str, tv_root: Path) -> Dataset:
    cls = _torchvision_cifar(kind)
    folder = tv_root / cls.base_folder
    files = [folder / f for f, _ in cls.train_list + cls.test_list] + [folder / cls.meta["filename"]]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise FyiError(f"{folder} is incomplete: missing {', '.join(missing)}; "
                       "unpack the complete archive there")
    info0 = _STATIC_INFO[kind]
    title = "CIFAR-10" if kind == "cifar10" else "CIFAR-100"

    def decode():
        splits = []
        for train in (True, False):
            tv = cls(str(tv_root), train=train, download=False)
            images = torch.from_numpy(tv.data).permute(0, 3, 1, 2).contiguous()
            splits.append(Split(images, torch.as_tensor(tv.targets), info0.num_classes))
        names = tuple(str(c) for c in tv.classes)
        if len(names) != info0.num_classes:
            raise FyiError(f"{folder}/{cls.meta['filename']} lists {len(names)} classes, "
                           f"expected {info0.num_classes}; is this really {title}?")
        return replace(info0, name=req.name, class_names=names), splits[0], splits[1]

    return _cached(req, _stat_fingerprint(files, tv_root), f"{title} from {folder}", decode)


def _find_archive(req: LoadRequest, filename: str) -> Path | None:
    for r in req.roots:
        if r.is_file() and r.name.endswith((".tar.gz", ".tgz", ".tar")):
            return r
        for cand in (r / filename, r / "cifar10" / filename):
            if cand.is_file():
                return cand
    return None


_ARCHIVE_EXT = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def _read_split_archive(path: Path) -> dict[str, dict[str, list[tuple[str, bytes]]]]:
    """Read ``[<top>/]{train,test}/<class>/<file>`` members of a tar(.gz) into memory."""
    found: dict[str, dict[str, list[tuple[str, bytes]]]] = {"train": {}, "test": {}}
    prefixes = set()
    try:
        with tarfile.open(path, "r:*") as tf:
            for m in tf:
                if not m.isfile() or not m.name.lower().endswith(_ARCHIVE_EXT):
                    continue
                parts = [p for p in m.name.split("/") if p not in ("", ".")]
                if len(parts) < 3 or parts[-3] not in ("train", "test", "val"):
                    continue
                split = "test" if parts[-3] == "val" else parts[-3]
                prefixes.add("/".join(parts[:-3]))
                f = tf.extractfile(m)
                found[split].setdefault(parts[-2], []).append((parts[-1], f.read()))
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise FyiError(f"cannot read archive {path}: {exc}; re-copy the file") from exc
    if len(prefixes) > 1:
        raise FyiError(f"archive {path} holds several train/test trees ({', '.join(sorted(prefixes))}); "
                       "keep one")
    if not found["train"] or not found["test"]:
        raise FyiError(f"archive {path} has no train/<class>/ and test/<class>/ images; "
                       "expected the ImageFolder layout train/<class>/NNNN.jpg, test/<class>/NNNN.jpg")
    return found


def _load_cifar10_archive(req: LoadRequest, path: Path, note: str = "") -> Dataset:
    info0 = _STATIC_INFO["cifar10"]
    source = f"CIFAR-10 (JPEG copy{note}) from {path}"
    shown_name = req.name
    req = replace(req, name="cifar10-jpeg")  # cifar10's fallback shares cifar10-jpeg's cache

    def decode():
        found = _read_split_archive(path)
        classes = sorted(found["train"])
        if tuple(classes) != tuple(sorted(CIFAR10_CLASSES)) or not set(found["test"]) <= set(classes):
            raise FyiError(f"archive {path} has classes {', '.join(classes)}, not CIFAR-10's; "
                           "use the cifar10-jpeg.tar.gz archive of CIFAR-10")
        class_to_idx = {c: CIFAR10_CLASSES.index(c) for c in classes}
        splits = []
        for split in ("train", "test"):
            names, blobs, labels = [], [], []
            for c in sorted(found[split], key=class_to_idx.get):
                for fname, blob in sorted(found[split][c]):
                    names.append(f"{split}/{c}/{fname}")
                    blobs.append(blob)
                    labels.append(class_to_idx[c])
            images, _ = _decode_blobs(blobs, None, names)
            splits.append(Split(images, torch.tensor(labels), 10))
        return replace(info0, name=req.name, image_size=int(splits[0].images.shape[-1])), splits[0], splits[1]

    ds = _cached(req, "sha256:" + _sha256_file(path), source, decode)
    return Dataset(replace(ds.info, name=shown_name), ds.train, ds.test, ds.source)


@register_dataset("cifar10", aliases=("cifar-10",), info=_STATIC_INFO["cifar10"])
def _cifar10(req: LoadRequest) -> Dataset:
    tv_root = _find_cifar_pickles(req, "cifar-10-batches-py")
    if tv_root is not None:
        return _load_cifar_pickles(req, "cifar10", tv_root)
    archive = _find_archive(req, "cifar10-jpeg.tar.gz")
    if archive is None:
        raise _missing(req, "CIFAR-10", "cifar-10-batches-py/ (torchvision's CIFAR-10 pickles) "
                       "or cifar10-jpeg.tar.gz (the JPEG copy)")
    return _load_cifar10_archive(req, archive, "; CIFAR-10's pickles cifar-10-batches-py/ were not found")


@register_dataset("cifar10-jpeg", aliases=("cifar10jpeg",), info=_STATIC_INFO["cifar10-jpeg"])
def _cifar10_jpeg(req: LoadRequest) -> Dataset:
    archive = _find_archive(req, "cifar10-jpeg.tar.gz")
    if archive is None:
        raise _missing(req, "CIFAR-10 (JPEG copy)", "cifar10-jpeg.tar.gz")
    return _load_cifar10_archive(req, archive)


@register_dataset("cifar100", aliases=("cifar-100",), info=_STATIC_INFO["cifar100"])
def _cifar100(req: LoadRequest) -> Dataset:
    tv_root = _find_cifar_pickles(req, "cifar-100-python")
    if tv_root is None:
        raise _missing(req, "CIFAR-100", "cifar-100-python/ (torchvision's CIFAR-100 pickles)")
    return _load_cifar_pickles(req, "cifar100", tv_root)


# --------------------------------------------------------------------------- #
# MNIST / Fashion-MNIST (IDX files)
# --------------------------------------------------------------------------- #
_IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
              "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _idx_files_in(folder: Path) -> dict[str, Path] | None:
    """The four IDX files in ``folder`` (plain or .gz), or None."""
    out = {}
    for name in _IDX_FILES:
        for cand in (folder / name, folder / f"{name}.gz"):
            if cand.is_file():
                out[name] = cand
                break
        else:
            return None
    return out


def _load_idx(req: LoadRequest, tv_class: str, title: str, subdirs: Sequence[str]) -> Dataset:
    """Read with torchvision's reader, which wants the four uncompressed files in
    ``<root>/<ClassName>/raw/``; .gz-only or flat folders are arranged so in a temp dir."""
    files = None
    for r in req.roots:
        cands = [r / tv_class / "raw"] + [r / s for s in subdirs]
        if req.user_pointed or r in _REGISTRY[req.name].system_dirs:
            cands.append(r)  # a folder the user named may hold the four files itself
        for cand in cands:
            files = _idx_files_in(cand)
            if files:
                break
        if files:
            break
    if not files:
        raise _missing(req, title, f"{tv_class}/raw/ or a folder with the four IDX files "
                       f"({', '.join(_IDX_FILES)}, optionally .gz)")
    folder = next(iter(files.values())).parent
    info0 = replace(_STATIC_INFO[req.name], name=req.name)

    def decode():
        import torchvision.datasets as tvd

        cls = getattr(tvd, tv_class)
        with tempfile.TemporaryDirectory(prefix="fyi-idx-") as tmp:
            raw = Path(tmp) / tv_class / "raw"
            raw.mkdir(parents=True)
            for name, src in files.items():
                if src.suffix == ".gz":
                    try:
                        with gzip.open(src, "rb") as fin, open(raw / name, "wb") as fout:
                            shutil.copyfileobj(fin, fout, 1 << 20)
                    except (OSError, EOFError) as exc:
                        raise FyiError(f"cannot decompress {src}: {exc}; re-copy the file") from exc
                else:
                    os.symlink(src.absolute(), raw / name)
            splits = []
            for train in (True, False):
                try:
                    tv = cls(tmp, train=train, download=False)
                except (RuntimeError, ValueError, TypeError) as exc:
                    raise FyiError(f"cannot read the {title} IDX files in {folder}: {exc}; "
                                   "re-copy them") from exc
                splits.append(Split(tv.data.unsqueeze(1).contiguous(), tv.targets, 10))
        return info0, splits[0], splits[1]

    return _cached(req, _stat_fingerprint(files.values(), folder), f"{title} from {folder}", decode)


@register_dataset("mnist", info=_STATIC_INFO["mnist"])
def _mnist(req: LoadRequest) -> Dataset:
    return _load_idx(req, "MNIST", "MNIST", ("mnist",))


@register_dataset("fashion-mnist", aliases=("fashionmnist", "fmnist"),
                           info=_STATIC_INFO["fashion-mnist"],
                           system_dirs=("/usr/share/datasets/fashion-mnist",))
def _fashion_mnist(req: LoadRequest) -> Dataset:
    return _load_idx(req, "FashionMNIST", "Fashion-MNIST", ("fashion-mnist", "fashionmnist"))


# --------------------------------------------------------------------------- #
# SVHN (.mat)
# --------------------------------------------------------------------------- #
def _torchvision_svhn():
    from torchvision.datasets import SVHN

    class _NoMd5(SVHN):
        split_list = {k: [url, f, None] for k, (url, f, _) in SVHN.split_list.items()}

    return _NoMd5


@register_dataset("svhn", info=_STATIC_INFO["svhn"])
def _svhn(req: LoadRequest) -> Dataset:
    names = ("train_32x32.mat", "test_32x32.mat")
    folder = None
    for r in req.roots:
        for cand in (r / "svhn", r / "SVHN", r):
            if all((cand / n).is_file() for n in names):
                folder = cand
                break
        if folder:
            break
    if folder is None:
        raise _missing(req, "SVHN", "train_32x32.mat and test_32x32.mat (in svhn/ or the folder itself)")
    info0 = replace(_STATIC_INFO["svhn"], name=req.name)

    def decode():
        cls = _torchvision_svhn()
        splits = []
        for split in ("train", "test"):
            try:
                tv = cls(str(folder), split=split, download=False)
            except (RuntimeError, ValueError, KeyError, OSError) as exc:
                raise FyiError(f"cannot read {folder / f'{split}_32x32.mat'}: {exc}; re-copy it") from exc
            images = torch.from_numpy(tv.data).contiguous()
            splits.append(Split(images, torch.from_numpy(tv.labels), 10))
        return info0, splits[0], splits[1]

    return _cached(req, _stat_fingerprint([folder / n for n in names], folder), f"SVHN from {folder}", decode)


# --------------------------------------------------------------------------- #
# Folders of image files (torchvision ImageFolder for the listing)
# --------------------------------------------------------------------------- #
def _folder_class(classes: Sequence[str]):
    """An ImageFolder whose classes are exactly ``classes`` (in this order)."""
    from torchvision.datasets import ImageFolder

    fixed = list(classes)

    class _Fixed(ImageFolder):
        def find_classes(self, directory):
            return list(fixed), {c: i for i, c in enumerate(fixed)}

    return _Fixed


def _list_folder(directory: Path, classes: Sequence[str]) -> list[tuple[str, int]]:
    """(path, label) of every image under ``directory/<class>/``, ordered by label then path."""
    samples = _folder_class(classes)(str(directory), allow_empty=True).samples
    return sorted(samples, key=lambda s: (s[1], s[0]))


def _split_from_samples(samples: Sequence[tuple[str, int]], size: int | None, num_classes: int):
    images, gray = _decode_files([p for p, _ in samples], size)
    labels = torch.tensor([c for _, c in samples], dtype=torch.int64)
    return Split(images, labels, num_classes), gray


# ---- Tiny-ImageNet --------------------------------------------------------- #
def _find_tiny(req: LoadRequest) -> Path | None:
    for r in req.roots:
        for cand in (r / "tiny-imagenet-200", r / "tiny-imagenet", r):
            if (cand / "wnids.txt").is_file() and (cand / "train").is_dir():
                return cand
    return None


def _tiny_classes(folder: Path) -> tuple[list[str], tuple[str, ...]]:
    """Sorted wnids (= ImageFolder order, as MTT uses) and readable names from words.txt."""
    wnids = sorted({w.strip() for w in (folder / "wnids.txt").read_text().split() if w.strip()})
    words = {}
    if (folder / "words.txt").is_file():
        for line in (folder / "words.txt").read_text(errors="replace").splitlines():
            wnid, _, text = line.partition("\t")
            words[wnid.strip()] = text.split(",")[0].strip()
    return wnids, tuple(words.get(w) or w for w in wnids)


def _tiny_info(req: LoadRequest) -> DatasetInfo:
    folder = _find_tiny(req)
    if folder is None:
        raise _missing(req, "Tiny-ImageNet", "tiny-imagenet-200/ (with wnids.txt, train/, val/)")
    _, names = _tiny_classes(folder)
    return DatasetInfo(req.name, 3, req.image_size or 64, names, IMAGENET_MEAN, IMAGENET_STD)


@register_dataset("tiny-imagenet", aliases=("tinyimagenet", "tiny"), info=_tiny_info)
def _tiny_imagenet(req: LoadRequest) -> Dataset:
    folder = _find_tiny(req)
    if folder is None:
        raise _missing(req, "Tiny-ImageNet", "tiny-imagenet-200/ (with wnids.txt, train/, val/)")
    wnids, names = _tiny_classes(folder)
    missing = [w for w in wnids if not (folder / "train" / w).is_dir()]
    if missing:
        raise FyiError(f"{folder / 'train'} lacks the class folders {', '.join(missing[:5])}"
                       f"{' ...' if len(missing) > 5 else ''} listed in wnids.txt; re-extract Tiny-ImageNet")
    train_samples = _list_folder(folder / "train", wnids)
    ann = folder / "val" / "val_annotations.txt"
    if not ann.is_file():
        raise FyiError(f"{ann} not found; Tiny-ImageNet's test split is read from val/images/ "
                       "through val/val_annotations.txt: re-extract the dataset")
    idx = {w: i for i, w in enumerate(wnids)}
    test_samples = []
    for line in ann.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) < 2 or not parts[0].strip():
            continue
        fname, wnid = parts[0].strip(), parts[1].strip()
        if wnid not in idx:
            raise FyiError(f"{ann} names class {wnid} that is not in wnids.txt; re-extract the dataset")
        test_samples.append((str(folder / "val" / "images" / fname), idx[wnid]))
    lost = [p for p, _ in test_samples if not os.path.isfile(p)]
    if lost:
        raise FyiError(f"{len(lost)} images listed in {ann} are missing (e.g. {lost[0]}); re-extract the dataset")
    size = req.image_size or 64
    files = [Path(p) for p, _ in train_samples + test_samples] + [folder / "wnids.txt", ann]

    def decode():
        train, _ = _split_from_samples(train_samples, size, len(wnids))
        test, _ = _split_from_samples(test_samples, size, len(wnids))
        return DatasetInfo(req.name, 3, size, names, IMAGENET_MEAN, IMAGENET_STD), train, test

    return _cached(req, _stat_fingerprint(files, folder), f"Tiny-ImageNet from {folder}", decode)


# ---- ImageNet subsets (MTT) ------------------------------------------------ #
def _subset_dirs(split_dir: Path, wnids: Sequence[str]) -> list[str] | None:
    """Folder name used for each wnid in ``split_dir`` (alternatives allowed), or None."""
    out = []
    for w in wnids:
        for cand in (w, *_WNID_ALTERNATIVES.get(w, ())):
            if (split_dir / cand).is_dir():
                out.append(cand)
                break
        else:
            return None
    return out


def _imagenet_subset_loader(subset: str) -> Loader:
    wnids = [w for w, _ in IMAGENET_SUBSETS[subset]]

    def load(req: LoadRequest) -> Dataset:
        folder = None
        for r in req.roots:
            for cand in (r / subset, r / f"{subset}2", r / "imagenet", r):
                if (cand / "train").is_dir() and _subset_dirs(cand / "train", wnids) is not None:
                    folder = cand
                    break
            if folder:
                break
        if folder is None:
            raise _missing(req, f"{subset} (ImageNet subset)",
                           f"an ImageNet folder imagenet/train/<wnid>/ with the wnids {' '.join(wnids)}")
        train_dirs = _subset_dirs(folder / "train", wnids)
        test_root = next((folder / s for s in ("val", "test") if (folder / s).is_dir()), None)
        test_dirs = _subset_dirs(test_root, wnids) if test_root is not None else None
        if test_dirs is None:
            raise FyiError(f"{folder} has no val/<wnid>/ folders for all of {' '.join(wnids)}; "
                           "sort the ImageNet validation images into one folder per wnid")
        size = req.image_size or 128
        train_samples = _list_folder(folder / "train", train_dirs)
        test_samples = _list_folder(test_root, test_dirs)
        for label, samples, where in (("training", train_samples, folder / "train"),
                                      ("validation", test_samples, test_root)):
            have = set(c for _, c in samples)
            empty = [wnids[i] for i in range(len(wnids)) if i not in have]
            if empty:
                raise FyiError(f"no {label} images for {', '.join(empty)} in {where}; "
                               "copy the complete ImageNet class folders")
        files = [Path(p) for p, _ in train_samples + test_samples]
        info = _STATIC_INFO[subset]

        def decode():
            train, _ = _split_from_samples(train_samples, size, 10)
            test, _ = _split_from_samples(test_samples, size, 10)
            return replace(info, image_size=size), train, test

        return _cached(req, _stat_fingerprint(files, folder),
                       f"{subset} (ImageNet subset of MTT) from {folder}", decode)

    return load


for _subset in IMAGENET_SUBSETS:
    register_dataset(_subset, _imagenet_subset_loader(_subset), info=_STATIC_INFO[_subset])


# ---- scikit-learn digits ----------------------------------------------------- #
@lru_cache(maxsize=1)
def _digits_splits() -> tuple[DatasetInfo, Split, Split]:
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = np.rint(d.data * (255.0 / 16.0)).clip(0, 255).astype(np.uint8).reshape(-1, 1, 8, 8)
    y = d.target.astype(np.int64)
    idx_train, idx_test = train_test_split(np.arange(len(y)), test_size=0.2, stratify=y, random_state=0)
    train = Split(torch.from_numpy(x[idx_train]), torch.from_numpy(y[idx_train]), 10)
    test = Split(torch.from_numpy(x[idx_test]), torch.from_numpy(y[idx_test]), 10)
    mean, std = _channel_stats(train.images)
    return DatasetInfo("digits", 1, 8, DIGIT_CLASSES, mean, std), train, test


def _digits_info(req: LoadRequest) -> DatasetInfo:
    return _digits_splits()[0]


@register_dataset("digits", aliases=("sklearn-digits",), info=_digits_info)
def _digits(req: LoadRequest) -> Dataset:
    info, train, test = _digits_splits()
    # Splits are shared by every call: hand out copies so nobody mutates the cache.
    return Dataset(info, Split(train.images.clone(), train.labels.clone(), 10),
                   Split(test.images.clone(), test.labels.clone(), 10),
                   "scikit-learn digits (sklearn.datasets.load_digits), stratified 80/20 split, random_state=0")


_NO_OPTION.update(_REGISTRY)

# ---- any ImageFolder ------------------------------------------------------- #
@register_dataset("imagefolder")
def _imagefolder(req: LoadRequest) -> Dataset:
    """``train/<class>/*`` and ``test/<class>/*`` (or ``val/``); classes = train's folder
    names (sorted); RGB unless every training and test image is grayscale, then 1
    channel; size = ``image_size`` or the first training image's shorter side
    (shorter side resized, then center-cropped); mean/std from the training split."""
    if req.option:
        folder = _abspath(req.option)
        if not folder.is_dir():
            raise FyiError(f"imagefolder: {folder} is not a folder; use imagefolder:/path/to/folder")
    elif req.origin == "argument":
        folder = req.roots[0]
    else:
        raise FyiError("imagefolder needs a folder: use the name imagefolder:/path/to/folder "
                       "or pass --data-root DIR (CLI) / root=DIR (Python)")
    train_dir = folder / "train"
    test_dir = next((folder / s for s in ("test", "val") if (folder / s).is_dir()), None)
    if not train_dir.is_dir() or test_dir is None:
        raise FyiError(f"{folder} must contain train/<class>/ and test/<class>/ (or val/<class>/) "
                       "image folders; arrange the images so")
    from torchvision.datasets.folder import find_classes

    try:
        classes, _ = find_classes(str(train_dir))
    except FileNotFoundError as exc:
        raise FyiError(f"{train_dir} has no class folders; put the images in train/<class>/") from exc
    extra = sorted({e.name for e in os.scandir(test_dir) if e.is_dir()} - set(classes))
    if extra:
        raise FyiError(f"{test_dir} has classes {', '.join(extra)} that {train_dir} lacks; "
                       "every test class needs training images")
    train_samples = _list_folder(train_dir, classes)
    test_samples = _list_folder(test_dir, classes)
    if not train_samples or not test_samples:
        raise FyiError(f"no images found in {train_dir if not train_samples else test_dir}; "
                       "supported files: .jpg .jpeg .png .ppm .bmp .pgm .tif .tiff .webp")
    name = req.name if req.option is None else f"imagefolder:{folder}"
    files = [Path(p) for p, _ in train_samples + test_samples]

    def decode():
        size = req.image_size
        train, gray_train = _split_from_samples(train_samples, size, len(classes))
        size = int(train.images.shape[-1])
        test, gray_test = _split_from_samples(test_samples, size, len(classes))
        if gray_train and gray_test:
            train = Split(train.images[:, :1].contiguous(), train.labels, len(classes))
            test = Split(test.images[:, :1].contiguous(), test.labels, len(classes))
        mean, std = _channel_stats(train.images)
        return DatasetInfo(name, int(train.images.shape[1]), size, tuple(classes), mean, std), train, test

    return _cached(req, str(folder) + ":" + _stat_fingerprint(files, folder), f"image folder {folder}", decode)


__all__ = [
    "DatasetInfo", "Split", "Dataset", "LoadRequest", "FORMAT_VERSION",
    "list_datasets", "dataset_info", "load_dataset", "flip_extend", "register_dataset",
    "CIFAR10_CLASSES", "CIFAR100_CLASSES", "IMAGENET_SUBSETS",
]
