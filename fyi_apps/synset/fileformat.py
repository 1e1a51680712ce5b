"""The synthetic-set file: one safetensors file per set, written atomically,
hashed and verified on reading (:func:`save_synset`, :func:`load_synset`).

Tensors ``images``, ``labels`` (and ``soft_labels`` when present); safetensors
metadata ``format``, ``format_version``, ``fyi_apps`` (the JSON of every other
field) and ``sha256`` over the tensors and that JSON.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .. import runtime
from ..errors import DamagedFile, FyiError
from .codec import check_encoding
from .core import _META_FIELDS, FORMAT_NAME, FORMAT_VERSION, META_KEY, SUFFIX, SyntheticSet


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
    check_encoding(imgs[:0], s.encoding, where)



def _tensors_of(s: SyntheticSet) -> dict[str, Tensor]:
    out = {
        "images": s.images.detach().to("cpu", torch.float32).contiguous().clone(),
        "labels": s.labels.detach().to("cpu", torch.int64).contiguous().clone(),
    }
    if s.soft_labels is not None:
        out["soft_labels"] = s.soft_labels.detach().to("cpu", torch.float32).contiguous().clone()
    return out


def save_synset(path: str | os.PathLike, synset: SyntheticSet) -> str:
    """Write ``synset`` to ``path`` (one safetensors file), atomically; return its content hash.

    Fills ``synset.versions`` and ``synset.created`` when they are empty (the
    object is updated so it matches the file).  The path is used as given; the
    convention is ``<name>.fyi.safetensors``.

    Args:
        path: the file to write (its folder is created).
        synset: the set.

    Returns:
        The sha256 content hash stored in the file (checked again by :func:`load_synset`).

    Example:
        >>> fyi.save_synset("subset.safetensors", fyi.random_subset(ds, 10))
    """
    import safetensors.torch

    from ..validate import path_value

    if isinstance(path, SyntheticSet):
        raise FyiError("save_synset takes (path, synset): the two arguments are swapped")
    if not isinstance(synset, SyntheticSet):
        raise FyiError(f"synset must be a SyntheticSet (from fyi.distill, fyi.random_subset ...), got "
                       f"{type(synset).__name__}")
    path = path_value(path, "path")
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


def _corrupt(path: Path, detail: str) -> DamagedFile:
    detail = " ".join(str(detail).split())[:200]
    return DamagedFile(
        f"{path} is not a fyi-apps synthetic set (corrupt or truncated): {detail}; re-create or re-download it",
        f"corrupt or truncated: {detail}")


def load_synset(
    path: str | os.PathLike,
    *,
    expect_dataset: str | None = None,
    expect_channels: int | None = None,
    expect_image_size: int | None = None,
    device=None,
) -> SyntheticSet:
    """Read and verify a synthetic-set file written by :func:`save_synset` (or ``fyi distill``).

    Checks that it is a safetensors file, carries fyi-apps metadata, that the
    content hash matches, that shapes are consistent, and the ``expect_*``
    values.  Every problem is a one-line :class:`FyiError`.

    Args:
        path: the ``.safetensors`` file.
        expect_dataset: refuse a set distilled from another dataset.
        expect_channels: refuse a set with another number of channels.
        expect_image_size: refuse a set with another image size.
        device: where to put the tensors (default: the CPU).

    Returns:
        The :class:`~fyi_apps.synset.SyntheticSet`: images (normalised like the dataset), labels,
        class names, method, FYI view, IPC, learned lr, the full config, seed, versions and content hash.

    Example:
        >>> s = fyi.load_synset("dm_fyi.safetensors", expect_dataset="cifar10")
        >>> s.images.shape, s.method, s.fyi
    """
    from ..validate import path_value

    path = path_value(path, "path")
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
        raise DamagedFile(
            f"{path} failed its sha256 content-hash check (expected {stored[:12]}..., found {found[:12]}...): "
            f"the file was modified or damaged; re-create or re-download it",
            "its content hash does not match (changed or corrupted on disk)")

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
