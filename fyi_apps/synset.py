"""Synthetic sets: one portable, self-describing, verified file per set.

A :class:`SyntheticSet` holds the distilled images (normalised float32, what the
networks see), their hard labels and everything needed to use them later: the
dataset, class names, mean/std, the method and FYI view, the learned learning
rate (MTT/FTD), the IDC encoding, the full config, seed, versions and time.

File layout (``save_synset``) — one safetensors file, by convention named
``*.fyi.safetensors``:

* tensors ``images`` (float32 ``[N, C, H, W]``), ``labels`` (int64 ``[N]``) and,
  only when present, ``soft_labels`` (float32 ``[N, K]``, e.g. DATM);
* safetensors ``__metadata__`` (string -> string):

  - ``format``: ``"fyi-apps.synset"``
  - ``format_version``: ``"1"``
  - ``fyi_apps``: JSON object with every other field of :class:`SyntheticSet`
    (``dataset, class_names, mean, std, method, fyi, ipc, lr, config, seed,
    encoding, extra, versions, created``) and ``format_version``;
  - ``sha256``: hex digest over the tensors (name, dtype, shape, raw bytes, in
    sorted name order) followed by the canonical JSON (sorted keys, compact) of
    the ``fyi_apps`` object.  ``load_synset`` recomputes and compares it.

``import_synset`` converts files people already have: DatasetCondensation
``res_*.pt`` (DC/DSA/DM), MTT/DATM ``images_best.pt``/``labels_best.pt``/``lr_best.pt``
and ImageFolders of PNG/JPEG images.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from . import runtime
from .errors import FyiError

FORMAT_NAME = "fyi-apps.synset"
FORMAT_VERSION = 1
META_KEY = "fyi_apps"
SUFFIX = ".fyi.safetensors"
ENCODINGS = ("plain", "multiformation")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
_EXPORT_MARKER = ".fyi-export"

# Fields of SyntheticSet that live in the JSON metadata (everything but tensors).
_META_FIELDS = (
    "dataset", "class_names", "mean", "std", "method", "fyi", "ipc", "lr",
    "config", "seed", "encoding", "extra", "versions", "created",
)


# --------------------------------------------------------------------------- #
# multi-formation (IDC)
# --------------------------------------------------------------------------- #
def _check_factor(images: Tensor, factor: int, what: str) -> int:
    if not isinstance(images, Tensor) or images.dim() != 4:
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise FyiError(f"{what} needs images of shape [N, C, H, W], got {shape}")
    try:
        f = int(factor)
    except (TypeError, ValueError):
        raise FyiError(f"multi-formation factor must be a positive integer, got {factor!r}") from None
    if f < 1 or f != factor:
        raise FyiError(f"multi-formation factor must be a positive integer, got {factor!r}")
    h, w = images.shape[-2:]
    if h % f or w % f:
        raise FyiError(
            f"multi-formation factor {f} does not divide the image size {h}x{w}; "
            f"choose a factor that divides {h} (e.g. 2)"
        )
    return f


def multiformation_decode(images: Tensor, factor: int) -> Tensor:
    """Split each stored image into ``factor x factor`` tiles and upsample each to full size.

    ``[N, C, H, W] -> [N * factor**2, C, H, W]``.  Tiles of one image stay
    together, row-major (tile ``(i, j)`` of image ``n`` is output
    ``n * factor**2 + i * factor + j``), so the matching labels are
    ``labels.repeat_interleave(factor**2)``.  Upsampling is bilinear with
    ``align_corners=False``.  Differentiable, so IDC can optimise through it.
    """
    f = _check_factor(images, factor, "multiformation_decode")
    if f == 1:
        return images
    n, c, h, w = images.shape
    th, tw = h // f, w // f
    tiles = images.reshape(n, c, f, th, f, tw).permute(0, 2, 4, 1, 3, 5).reshape(n * f * f, c, th, tw)
    return F.interpolate(tiles, size=(h, w), mode="bilinear", align_corners=False)


def multiformation_encode(images: Tensor, factor: int) -> Tensor:
    """Inverse layout of :func:`multiformation_decode`: pack ``factor**2`` images into one.

    ``[M, C, H, W] -> [M / factor**2, C, H, W]``: every group of ``factor**2``
    consecutive images is downsampled (area averaging) to ``H/factor x W/factor``
    and the tiles are placed row-major into one image.  ``M`` must be a multiple
    of ``factor**2`` (e.g. class-ordered real images, ``factor**2 * ipc`` per class).
    """
    f = _check_factor(images, factor, "multiformation_encode")
    if f == 1:
        return images
    m, c, h, w = images.shape
    if m % (f * f):
        raise FyiError(
            f"multiformation_encode packs {f * f} images into one but got {m} images; "
            f"pass a multiple of {f * f}"
        )
    th, tw = h // f, w // f
    small = F.interpolate(images, size=(th, tw), mode="area")
    n = m // (f * f)
    return small.reshape(n, f, f, c, th, tw).permute(0, 3, 1, 4, 2, 5).reshape(n, c, h, w)


# --------------------------------------------------------------------------- #
# the synthetic set
# --------------------------------------------------------------------------- #
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
    def decoded(self) -> tuple[Tensor, Tensor]:
        """Images and labels as networks should train on them.

        ``plain``: as stored.  ``multiformation`` with factor ``f``: every stored
        image becomes ``f*f`` full-size images (:func:`multiformation_decode`),
        each with the label of its source image.
        """
        kind = self.encoding.get("type", "plain")
        if kind == "plain":
            return self.images, self.labels
        if kind == "multiformation":
            f = int(self.encoding.get("factor", 2))
            return multiformation_decode(self.images, f), self.labels.repeat_interleave(f * f)
        raise FyiError(f"unknown synthetic-set encoding {kind!r}; this fyi-apps knows {', '.join(ENCODINGS)}")

    def to_pixels(self) -> Tensor:
        """Stored images denormalised to ``[0, 1]`` float (clamped)."""
        shape = (1, -1, 1, 1)
        mean = torch.tensor(self.mean, dtype=self.images.dtype, device=self.images.device).view(shape)
        std = torch.tensor(self.std, dtype=self.images.dtype, device=self.images.device).view(shape)
        return (self.images.detach() * std + mean).clamp(0.0, 1.0)

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


# --------------------------------------------------------------------------- #
# validation, hashing
# --------------------------------------------------------------------------- #
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


def _canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _content_hash(tensors: Mapping[str, Tensor], meta: Mapping[str, Any]) -> str:
    h = hashlib.sha256()
    h.update(FORMAT_NAME.encode() + b"\0")
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        head = {"name": name, "dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape)}
        h.update(_canonical_json(head).encode() + b"\0")
        h.update(t.numpy().tobytes() if t.numel() == 0 else t.numpy())
        h.update(b"\0")
    h.update(_canonical_json(meta).encode())
    return h.hexdigest()


def _validate(s: SyntheticSet, where: str) -> None:
    """Raise FyiError when the set is internally inconsistent."""
    fix = "re-create it" if where != "save" else "fix the set before saving it"
    imgs, labs = s.images, s.labels
    if not isinstance(imgs, Tensor) or imgs.dim() != 4:
        shape = list(imgs.shape) if isinstance(imgs, Tensor) else type(imgs).__name__
        raise FyiError(f"{where}: synthetic-set images must be a 4-D tensor [N, C, H, W], got {shape}; {fix}")
    if not imgs.is_floating_point():
        raise FyiError(f"{where}: synthetic-set images must be float (normalised), got {imgs.dtype}; {fix}")
    n = int(imgs.shape[0])
    if n == 0:
        raise FyiError(f"{where}: synthetic set holds no images; {fix}")
    if not isinstance(labs, Tensor) or labs.dim() != 1 or labs.is_floating_point():
        shape = list(labs.shape) if isinstance(labs, Tensor) else type(labs).__name__
        raise FyiError(f"{where}: synthetic-set labels must be a 1-D integer tensor, got {shape}; {fix}")
    if labs.shape[0] != n:
        raise FyiError(f"{where}: synthetic set has {n} images but {labs.shape[0]} labels; {fix}")
    c = int(imgs.shape[1])
    if len(s.mean) != c or len(s.std) != c:
        raise FyiError(
            f"{where}: images have {c} channel(s) but mean/std have {len(s.mean)}/{len(s.std)} values; {fix}"
        )
    if any(not (v > 0) for v in s.std):
        raise FyiError(f"{where}: std values must be positive, got {s.std}; {fix}")
    k = s.num_classes
    if k == 0:
        raise FyiError(f"{where}: synthetic set has no class names; {fix}")
    lo, hi = int(labs.min()), int(labs.max())
    if lo < 0 or hi >= k:
        raise FyiError(f"{where}: labels range over {lo}..{hi} but there are {k} classes; {fix}")
    if not bool(torch.isfinite(imgs).all()):
        raise FyiError(f"{where}: synthetic images contain NaN or inf (the distillation diverged); {fix}")
    if s.soft_labels is not None:
        sl = s.soft_labels
        if not isinstance(sl, Tensor) or sl.dim() != 2 or sl.shape[0] != n or sl.shape[1] != k:
            shape = list(sl.shape) if isinstance(sl, Tensor) else type(sl).__name__
            raise FyiError(f"{where}: soft labels must be [{n}, {k}], got {shape}; {fix}")
    if not isinstance(s.encoding, Mapping) or s.encoding.get("type", "plain") not in ENCODINGS:
        raise FyiError(f"{where}: unknown encoding {s.encoding!r}; use one of {', '.join(ENCODINGS)}")
    if s.encoding.get("type") == "multiformation":
        _check_factor(imgs[:0], s.encoding.get("factor", 2), where)


def _tensors_of(s: SyntheticSet) -> dict[str, Tensor]:
    out = {
        "images": s.images.detach().to("cpu", torch.float32).contiguous().clone(),
        "labels": s.labels.detach().to("cpu", torch.int64).contiguous().clone(),
    }
    if s.soft_labels is not None:
        out["soft_labels"] = s.soft_labels.detach().to("cpu", torch.float32).contiguous().clone()
    return out


# --------------------------------------------------------------------------- #
# save / load
# --------------------------------------------------------------------------- #
def save_synset(path: str | os.PathLike, synset: SyntheticSet) -> str:
    """Write ``synset`` to ``path`` (one safetensors file), atomically; return its sha256.

    Fills ``synset.versions`` and ``synset.created`` when they are empty (the
    object is updated so it matches the file).  The path is used as given; the
    convention is ``<name>.fyi.safetensors``.
    """
    import safetensors.torch

    _validate(synset, "save")
    if not synset.versions:
        synset.versions = runtime.package_versions()
    if not synset.created:
        synset.created = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
    meta = synset.metadata()
    tensors = _tensors_of(synset)
    digest = _content_hash(tensors, meta)
    header = {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        META_KEY: _canonical_json(meta),
        "sha256": digest,
    }
    path = Path(path)
    if path.is_dir():
        raise FyiError(f"{path} is a directory; give a file name such as {path / ('synset' + SUFFIX)}")
    with runtime.atomic_path(path, "synthetic-set file") as tmp:  # write failures: one FyiError line
        safetensors.torch.save_file(tensors, str(tmp), metadata=header)
    return digest


def _corrupt(path: Path, detail: str) -> FyiError:
    detail = " ".join(str(detail).split())[:200]
    return FyiError(
        f"{path} is not a fyi-apps synthetic set (corrupt or truncated): {detail}; re-create or re-download it"
    )


def load_synset(
    path: str | os.PathLike,
    *,
    expect_dataset: str | None = None,
    expect_channels: int | None = None,
    expect_image_size: int | None = None,
    device=None,
) -> SyntheticSet:
    """Read and verify a file written by :func:`save_synset`.

    Checks that it is a safetensors file, carries fyi-apps metadata, that the
    content hash matches, that shapes are consistent, and the ``expect_*``
    values.  Every problem is a one-line :class:`FyiError`.
    """
    path = Path(path)
    if not path.exists():
        raise FyiError(f"synthetic-set file {path} does not exist; check the path (sets are *{SUFFIX} files)")
    if path.is_dir():
        raise FyiError(
            f"{path} is a directory, not a synthetic-set file; pass the *{SUFFIX} file "
            f"(or use `fyi import` for an MTT folder or an ImageFolder)"
        )
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt", device="cpu") as fh:
            header = fh.metadata() or {}
            names = list(fh.keys())
            tensors = {k: fh.get_tensor(k) for k in names}
    except FyiError:
        raise
    except Exception as e:  # safetensors raises its own error types (and OSError, ValueError ...)
        raise _corrupt(path, f"{type(e).__name__}: {e}") from None

    if META_KEY not in header:
        raise FyiError(
            f"{path} is a safetensors file but not a fyi-apps synthetic set; "
            f"use `fyi import` for res_*.pt / images_best.pt files"
        )
    try:
        version = int(header.get("format_version", "1"))
    except ValueError:
        raise _corrupt(path, f"bad format_version {header.get('format_version')!r}") from None
    if version > FORMAT_VERSION:
        raise FyiError(
            f"{path} uses synthetic-set format {version}, newer than this fyi-apps understands "
            f"({FORMAT_VERSION}); upgrade fyi-apps"
        )
    try:
        meta = json.loads(header[META_KEY])
    except ValueError as e:
        raise _corrupt(path, f"metadata is not valid JSON ({e})") from None
    if not isinstance(meta, dict):
        raise _corrupt(path, "metadata is not a JSON object")

    stored = header.get("sha256")
    if not stored:
        raise _corrupt(path, "no sha256 content hash")
    found = _content_hash(tensors, meta)
    if found != stored:
        raise FyiError(
            f"{path} failed its sha256 content-hash check (expected {stored[:12]}..., found {found[:12]}...): "
            f"the file was modified or damaged; re-create or re-download it"
        )

    for name in ("images", "labels"):
        if name not in tensors:
            raise _corrupt(path, f"tensor {name!r} is missing")
    missing = [k for k in ("dataset", "class_names", "mean", "std", "method") if k not in meta]
    if missing:
        raise _corrupt(path, f"metadata lacks {', '.join(missing)}")
    fields = {k: meta[k] for k in _META_FIELDS if k in meta}
    try:
        synset = SyntheticSet(
            images=tensors["images"], labels=tensors["labels"], soft_labels=tensors.get("soft_labels"), **fields
        )
    except (TypeError, ValueError) as e:
        raise _corrupt(path, f"bad metadata ({e})") from None
    _validate(synset, str(path))

    if expect_dataset is not None and _norm_name(expect_dataset) != _norm_name(synset.dataset):
        raise FyiError(
            f"{path} was made from dataset {synset.dataset!r} but {expect_dataset!r} was expected; "
            f"use --dataset {synset.dataset} or a synthetic set distilled on {expect_dataset}"
        )
    if expect_channels is not None and int(expect_channels) != synset.channels:
        raise FyiError(
            f"{path} has {synset.channels}-channel images but {expect_channels} channel(s) were expected; "
            f"use a synthetic set made from a {expect_channels}-channel dataset"
        )
    if expect_image_size is not None and int(expect_image_size) != synset.image_size:
        raise FyiError(
            f"{path} has {synset.image_size} px images but {expect_image_size} px were expected; "
            f"use a synthetic set made at {expect_image_size} px"
        )
    if device is not None:
        synset = synset.to(runtime.resolve_device(device))
    return synset


def _norm_name(name: str) -> str:
    return str(name).strip().lower()


# --------------------------------------------------------------------------- #
# imports
# --------------------------------------------------------------------------- #
_FORMATS = {
    "auto": "auto",
    "synset": "synset", "fyi": "synset", "safetensors": "synset",
    "res": "res", "dc": "res", "dsa": "res", "dm": "res", "datasetcondensation": "res",
    "mtt": "mtt", "datm": "mtt", "ftd": "mtt",
    "imagefolder": "imagefolder", "folder": "imagefolder", "images": "imagefolder",
}
_MTT_FILE = re.compile(r"^(images|labels|lr)_(?P<tag>[A-Za-z0-9]+)\.pt$")


def import_synset(
    path: str | os.PathLike,
    *,
    format: str = "auto",
    dataset: str | None = None,
    info=None,
    exp: int = 0,
    method: str | None = None,
    fyi: str | None = None,
    trust: bool = False,
) -> SyntheticSet:
    """Convert a synthetic set in another project's format into a :class:`SyntheticSet`.

    Formats (``format="auto"`` detects them):

    * ``res``: DatasetCondensation (DC/DSA/DM) ``res_<METHOD>_<DATASET>_<MODEL>_<N>ipc.pt``,
      a dict whose ``data`` is a list of ``[images, labels]`` per experiment; ``exp``
      picks one.  Method and dataset come from the file name unless given.
    * ``mtt``: MTT/DATM/FTD ``images_best.pt`` + ``labels_best.pt`` (+ ``lr_best.pt``) in
      one folder; ``path`` is the folder or any of the files (``images_<it>.pt`` works
      too).  Soft labels ``[N, K]`` (DATM) give hard labels by argmax and are kept in
      ``soft_labels``.  Note: sets distilled with ``--zca`` are in ZCA space and are
      imported as they are.
    * ``imagefolder``: ``<dir>/<class name>/*.png|jpg``; pixels are normalised with the
      dataset's mean/std.  Folders must be exactly the dataset's class names (or the
      class indices ``0..K-1``).
    * ``synset``: a fyi-apps ``*.fyi.safetensors`` file (just loaded and checked).

    ``dataset`` names a fyi-apps dataset (its class names, mean, std); ``info`` may
    instead be any object with ``name, channels, image_size, class_names, mean, std,
    num_classes``.  ``.pt`` files are read with ``weights_only=True``; a file that needs
    full unpickling is refused unless ``trust=True``.
    """
    path = Path(path)
    if not path.exists():
        raise FyiError(f"{path} does not exist; check the path to the synthetic set to import")
    kind = _FORMATS.get(str(format).lower())
    if kind is None:
        raise FyiError(f"unknown import format {format!r}; use auto, res, mtt, imagefolder or synset")
    if kind == "auto":
        kind = _detect_format(path)

    if kind == "synset":
        expect = dataset if dataset is not None else getattr(info, "name", None)
        s = load_synset(path, expect_dataset=expect)
    elif kind == "res":
        s = _import_res(path, dataset=dataset, info=info, exp=exp, trust=trust)
    elif kind == "mtt":
        s = _import_mtt(path, dataset=dataset, info=info, trust=trust)
    else:
        s = _import_imagefolder(path, dataset=dataset, info=info)
    if method is not None:
        s.method = str(method)
    if fyi is not None:
        s.fyi = str(fyi)
    _validate(s, f"import of {path}")
    return s


def _detect_format(path: Path) -> str:
    if path.is_dir():
        if any((path / f"{stem}_best.pt").exists() for stem in ("images",)):
            return "mtt"
        subdirs = [d for d in path.iterdir() if d.is_dir() and not d.name.startswith(".")]
        if subdirs and any(_image_files(d) for d in subdirs):
            return "imagefolder"
        raise FyiError(
            f"cannot tell what {path} holds: no images_best.pt and no class folders of images; "
            f"pass a res_*.pt file, an MTT folder or an ImageFolder (<dir>/<class>/*.png)"
        )
    name = path.name
    if name.endswith(".safetensors"):
        return "synset"
    if _MTT_FILE.match(name):
        return "mtt"
    if name.startswith("res_") and name.endswith(".pt"):
        return "res"
    if name.endswith(".pt") or name.endswith(".pth"):
        raise FyiError(
            f"cannot tell the format of {path} from its name; pass format='res' (DatasetCondensation "
            f"res_*.pt) or format='mtt' (images_best.pt)"
        )
    raise FyiError(
        f"cannot tell the format of {path}; fyi import reads res_*.pt, images_best.pt folders, "
        f"ImageFolders and *{SUFFIX} files"
    )


def _resolve_info(dataset: str | None, info, path: Path, guessed: str | None = None):
    if info is not None:
        missing = [a for a in ("name", "channels", "image_size", "class_names", "mean", "std") if not hasattr(info, a)]
        if missing:
            raise FyiError(f"info= object lacks {', '.join(missing)}; pass a fyi_apps.data.DatasetInfo")
        return info
    name = dataset or guessed
    if not name:
        raise FyiError(f"cannot tell which dataset {path} was distilled from; pass --dataset (e.g. cifar10)")
    try:
        from .data import dataset_info
    except ImportError as e:
        raise FyiError(f"dataset information is unavailable ({e}); pass info= with class names, mean and std") from None
    try:
        return dataset_info(name)
    except FyiError as e:
        if dataset is None and guessed:
            raise FyiError(
                f"{path} looks like dataset {guessed!r} (from its name) but fyi-apps does not know it ({e}); "
                f"pass --dataset with the fyi-apps name"
            ) from None
        raise


def _torch_load(path: Path, trust: bool):
    import pickle

    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        needs_globals = "unsupported global" in str(e).lower()
        if not trust:
            if needs_globals:
                raise FyiError(
                    f"{path} holds Python objects that need full unpickling, which can run arbitrary code; "
                    f"if you trust where the file came from, pass trust=True (fyi import --trust)"
                ) from None
            tail = str(e).split("WeightsUnpickler error:", 1)[-1]
            detail = next((ln.strip() for ln in tail.splitlines() if ln.strip()), "unreadable pickle")[:160]
            raise FyiError(
                f"{path} is not a readable torch file (corrupt or truncated): {detail}; re-create or re-download it"
            ) from None
    except Exception as e:
        first = (str(e).splitlines() or [""])[0][:160]
        raise FyiError(
            f"{path} is not a readable torch file (corrupt or truncated): {type(e).__name__}: {first}; "
            f"re-create or re-download it"
        ) from None
    try:
        return torch.load(str(path), map_location="cpu", weights_only=False)
    except Exception as e:
        first = (str(e).splitlines() or [""])[0][:160]
        raise FyiError(
            f"{path} is not a readable torch file (corrupt or truncated): {type(e).__name__}: {first}; "
            f"re-create or re-download it"
        ) from None


def _as_tensor(obj, what: str, path: Path) -> Tensor:
    if isinstance(obj, Tensor):
        return obj.detach().cpu()
    try:
        return torch.as_tensor(obj).cpu()
    except Exception:
        raise FyiError(f"{path}: {what} is a {type(obj).__name__}, not a tensor; is this the right file?") from None


def _check_against_info(images: Tensor, info, path: Path) -> None:
    if images.dim() != 4:
        raise FyiError(f"{path}: images have shape {list(images.shape)}, expected [N, C, H, W]; is this the right file?")
    c, h = int(images.shape[1]), int(images.shape[2])
    if c != int(info.channels) or h != int(info.image_size):
        raise FyiError(
            f"{path}: images are {c}x{h}x{images.shape[3]} but dataset {info.name} has "
            f"{info.channels}x{info.image_size}x{info.image_size}; pass the dataset they were distilled from"
        )


def _from_info(images, labels, info, **kw) -> SyntheticSet:
    return SyntheticSet(
        images=images.float().contiguous(),
        labels=labels.long().contiguous(),
        dataset=str(info.name),
        class_names=list(info.class_names),
        mean=list(info.mean),
        std=list(info.std),
        **kw,
    )


def _import_res(path: Path, *, dataset, info, exp: int, trust: bool) -> SyntheticSet:
    if path.is_dir():
        raise FyiError(f"{path} is a folder; pass the res_*.pt file itself")
    parts = path.stem.split("_")
    guessed_method, guessed_dataset, model = None, None, None
    if len(parts) >= 4 and parts[0] == "res":
        guessed_method = parts[1].lower()
        guessed_dataset = parts[2].lower()
        model = "_".join(parts[3:-1]) or None
    obj = _torch_load(path, trust)
    if not isinstance(obj, Mapping) or "data" not in obj:
        raise FyiError(
            f"{path} is not a DatasetCondensation result file (no 'data' entry); "
            f"pass format='mtt' or 'imagefolder' if it is something else"
        )
    data = obj["data"]
    if not isinstance(data, Sequence) or len(data) == 0:
        raise FyiError(f"{path} holds no experiments under 'data'; re-create the file")
    if not 0 <= int(exp) < len(data):
        raise FyiError(f"{path} holds {len(data)} experiment(s); choose --exp between 0 and {len(data) - 1}")
    pair = data[int(exp)]
    if not isinstance(pair, Sequence) or len(pair) < 2:
        raise FyiError(f"{path}: experiment {exp} is not an [images, labels] pair; is this the right file?")
    images = _as_tensor(pair[0], "images", path)
    labels = _as_tensor(pair[1], "labels", path)
    info = _resolve_info(dataset, info, path, guessed_dataset)
    _check_against_info(images, info, path)
    if labels.dim() == 2:
        labels = labels.argmax(dim=1)
    method = guessed_method if guessed_method in ("dc", "dsa", "dm") else "imported"
    extra: dict[str, Any] = {"source": {"format": "DatasetCondensation res_*.pt", "file": path.name, "exp": int(exp)}}
    if model:
        extra["source"]["model"] = model
    if guessed_method:
        extra["source"]["method"] = parts[1]
    accs = obj.get("accs_all_exps")
    if isinstance(accs, Mapping):
        try:
            extra["source"]["accs_all_exps"] = _jsonable(accs, "accs_all_exps")
        except FyiError:
            pass
    return _from_info(images, labels, info, method=method, extra=extra)


def _import_mtt(path: Path, *, dataset, info, trust: bool) -> SyntheticSet:
    if path.is_dir():
        folder, tag = path, "best"
    else:
        m = _MTT_FILE.match(path.name)
        if not m:
            raise FyiError(f"{path} is not named images_<it>.pt / labels_<it>.pt / lr_<it>.pt; pass the MTT folder")
        folder, tag = path.parent, m.group("tag")
    img_file, lab_file, lr_file = (folder / f"{k}_{tag}.pt" for k in ("images", "labels", "lr"))
    if not img_file.exists():
        raise FyiError(f"{img_file} not found; an MTT/DATM folder must contain images_{tag}.pt")
    info = _resolve_info(dataset, info, folder)
    images = _as_tensor(_torch_load(img_file, trust), "images", img_file)
    _check_against_info(images, info, img_file)
    n, k = int(images.shape[0]), int(info.num_classes if hasattr(info, "num_classes") else len(info.class_names))
    source: dict[str, Any] = {"format": "MTT/DATM images_*.pt", "folder": folder.name, "tag": tag}
    soft = None
    if lab_file.exists():
        labels = _as_tensor(_torch_load(lab_file, trust), "labels", lab_file)
        if labels.dim() == 2:
            if labels.shape[1] != k:
                raise FyiError(f"{lab_file}: soft labels have {labels.shape[1]} classes but {info.name} has {k}")
            soft = labels.float()
            labels = labels.argmax(dim=1)
            source["soft_labels"] = True
        elif labels.dim() != 1:
            raise FyiError(f"{lab_file}: labels have shape {list(labels.shape)}, expected [N] or [N, K]")
        if labels.shape[0] != n:
            raise FyiError(f"{lab_file} has {labels.shape[0]} labels but {img_file.name} has {n} images; re-create them together")
        if labels.is_floating_point():
            labels = labels.round()
    else:
        if n % k:
            raise FyiError(
                f"{lab_file.name} not found next to {img_file.name} and {n} images do not split evenly "
                f"over {k} classes; add the labels file"
            )
        labels = torch.arange(k).repeat_interleave(n // k)
        source["labels"] = "inferred class-ordered (no labels file)"
    lr = None
    if lr_file.exists():
        lr_obj = _torch_load(lr_file, trust)
        try:
            lr = float(_as_tensor(lr_obj, "lr", lr_file).reshape(-1)[0])
        except (IndexError, ValueError):
            raise FyiError(f"{lr_file} does not hold a scalar learning rate; remove it or re-create it") from None
    return _from_info(images, labels, info, method="mtt", lr=lr, soft_labels=soft, extra={"source": source})


def _image_files(folder: Path) -> list[Path]:
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")]
    return sorted(files, key=_natural_key)


def _natural_key(p: Path):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)]


def _folder_name(class_name: str) -> str:
    """A file-system-safe folder name for a class."""
    name = re.sub(r'[\\/:*?"<>|\x00-\x1f]', "_", str(class_name)).strip()
    return name if name not in ("", ".", "..") else f"_{name}_"


def _import_imagefolder(path: Path, *, dataset, info) -> SyntheticSet:
    import numpy as np
    from PIL import Image

    if not path.is_dir():
        raise FyiError(f"{path} is not a folder; an ImageFolder is <dir>/<class name>/*.png")
    info = _resolve_info(dataset, info, path)
    class_names = [str(c) for c in info.class_names]
    folders = sorted(d.name for d in path.iterdir() if d.is_dir() and not d.name.startswith("."))
    by_name = {_folder_name(c): i for i, c in enumerate(class_names)}
    by_name.update({c: i for i, c in enumerate(class_names)})
    if folders and all(f.isdigit() for f in folders) and not set(folders) & set(by_name):
        by_name = {str(i): i for i in range(len(class_names))}
    unknown = [f for f in folders if f not in by_name]
    found = {by_name[f] for f in folders if f in by_name}
    missing = [class_names[i] for i in range(len(class_names)) if i not in found]
    if unknown or missing:
        bits = []
        if unknown:
            bits.append(f"folders {', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''} are not classes of {info.name}")
        if missing:
            bits.append(f"classes {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''} have no folder")
        raise FyiError(
            f"{path}: class folders do not match dataset {info.name}: {'; '.join(bits)}; "
            f"name the folders after the dataset's classes or pass the right --dataset"
        )
    c, size = int(info.channels), int(info.image_size)
    mode = "L" if c == 1 else "RGB"
    arrays, labels = [], []
    for f in folders:
        for file in _image_files(path / f):
            try:
                with Image.open(file) as im:
                    arr = np.asarray(im.convert(mode), dtype=np.uint8)
            except Exception as e:
                raise FyiError(f"{file} is not a readable image ({type(e).__name__}: {e}); remove or replace it") from None
            if arr.shape[0] != size or arr.shape[1] != size:
                raise FyiError(
                    f"{file} is {arr.shape[1]}x{arr.shape[0]} px but {info.name} images are {size}x{size}; "
                    f"resize the images first"
                )
            arrays.append(arr.reshape(size, size, c))
            labels.append(by_name[f])
    if not arrays:
        raise FyiError(f"{path} contains no images (.png/.jpg) in its class folders")
    pixels = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float().div(255.0)
    mean = torch.tensor([float(v) for v in info.mean]).view(1, -1, 1, 1)
    std = torch.tensor([float(v) for v in info.std]).view(1, -1, 1, 1)
    images = (pixels - mean) / std
    order = torch.argsort(torch.tensor(labels), stable=True)
    return _from_info(
        images[order], torch.tensor(labels)[order], info, method="imported",
        extra={"source": {"format": "imagefolder", "folder": path.name}},
    )


# --------------------------------------------------------------------------- #
# exports
# --------------------------------------------------------------------------- #
def export_grid(synset: SyntheticSet, png_path: str | os.PathLike, *, max_per_class: int = 10) -> Path:
    """A PNG with one row per class (up to ``max_per_class`` stored images each)."""
    from .plots import image_grid

    view = f"+FYI({synset.fyi})" if synset.fyi else ""
    title = f"{synset.method.upper()}{view} on {synset.dataset}, {synset.ipc} img/cls"
    return image_grid(
        synset.to_pixels().cpu(), synset.labels.cpu(), synset.class_names, png_path,
        max_per_class=max_per_class, title=title,
    )


def export_imagefolder(synset: SyntheticSet, out_dir: str | os.PathLike, *, decode: bool = False) -> Path:
    """Write ``out_dir/<class name>/<idx>.png`` (denormalised uint8), atomically.

    Every class gets a folder (possibly empty); ``idx`` counts within the class,
    zero-padded.  ``decode=True`` writes the training images of :meth:`decoded`
    (IDC tiles upsampled) instead of the stored ones.  The folder is built in a
    temporary directory and renamed into place; an existing ``out_dir`` is only
    replaced if it is empty or an earlier export.
    """
    import numpy as np
    from PIL import Image

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise FyiError(f"{out} exists and is a file; choose a folder name for the export")
    if out.is_dir() and any(out.iterdir()) and not (out / _EXPORT_MARKER).exists():
        raise FyiError(f"{out} exists and is not an earlier fyi export; choose a new or empty folder")
    if decode:
        imgs, labels = synset.decoded()
        view = dataclasses.replace(synset, images=imgs, labels=labels, soft_labels=None, encoding={"type": "plain"})
        pixels = view.to_pixels()
    else:
        pixels, labels = synset.to_pixels(), synset.labels
    pixels = (pixels.cpu() * 255.0).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    labels = labels.cpu().tolist()
    width = max(3, len(str(max(1, len(labels)))))

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    except OSError as e:
        raise runtime.write_failure(out, e, "export folder") from None
    old = None
    try:
        names = [_folder_name(c) for c in synset.class_names]
        if len(set(names)) != len(names):
            names = [f"{i:03d}_{n}" for i, n in enumerate(names)]
        for n in names:
            (tmp / n).mkdir()
        counts = [0] * len(names)
        for arr, lab in zip(pixels, labels):
            img = Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else np.ascontiguousarray(arr), "L" if arr.shape[-1] == 1 else "RGB")
            img.save(tmp / names[lab] / f"{counts[lab]:0{width}d}.png", format="PNG")
            counts[lab] += 1
        (tmp / _EXPORT_MARKER).write_text(f"{synset!r}\n")
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
            old.rmdir()
            os.replace(out, old)
        os.replace(tmp, out)
    except BaseException as e:
        if old is not None and old.exists() and not out.exists():
            os.replace(old, out)
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError):  # a full disk, a read-only folder ...: one line, nothing left behind
            raise runtime.write_failure(out, e, "export folder") from None
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return out


__all__ = [
    "SyntheticSet", "save_synset", "load_synset", "import_synset", "export_grid", "export_imagefolder",
    "multiformation_decode", "multiformation_encode", "SUFFIX", "FORMAT_VERSION",
]
