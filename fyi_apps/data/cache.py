"""The decoded-dataset cache: each dataset is decoded once and kept under
``runtime.cache_dir()/datasets/``, keyed by a hash of the source files, the
dataset name, the image size and :data:`FORMAT_VERSION`.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Iterable

import torch

from .. import runtime
from .base import Dataset, DatasetInfo, LoadRequest, Split
from .decode import _resize_all

log = logging.getLogger("fyi_apps.data")

#: Bump when the decoded content of any dataset changes; old caches are then ignored.
#: 2: every cache entry carries a content hash of its tensors, checked on read.
FORMAT_VERSION = 2


def content_digest(*tensors: torch.Tensor) -> str:
    """sha256 over the tensors' bytes (the decoded images and labels), in order."""
    h = hashlib.sha256()
    for t in tensors:
        h.update(str((t.dtype, tuple(t.shape))).encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def stat_fingerprint(paths: Iterable[Path], base: Path | None = None) -> str:
    """Hash over (path relative to ``base``, size, mtime) of files: cheap change detection for a family's files.

    For a single archive, ``"sha256:" + runtime.file_sha256(path)`` is the exact alternative.
    """
    h = hashlib.sha256()
    for p in sorted(Path(x) for x in paths):
        st = p.stat()
        rel = str(p.relative_to(base)) if base is not None else p.name
        h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _cache_path(name: str, key: str) -> Path:
    return runtime.cache_dir() / "datasets" / f"{name}-{key[:24]}.pt"


def cached_dataset(req: LoadRequest, fingerprint: str, source: str,
                   decode: Callable[[], tuple[DatasetInfo, Split, Split]]) -> Dataset:
    """The dataset decoded once: read from the cache, or ``decode()``-d, resized to ``req.image_size`` and cached.

    Args:
        req: the family's load request (its name and image size key the cache entry; ``req.cache`` False skips it).
        fingerprint: what identifies the source files (:func:`stat_fingerprint`, a file hash); other files, other
            entry.
        source: a line saying where the data came from (``Dataset.source``).
        decode: ``() -> (DatasetInfo, train Split, test Split)``, run only on a cache miss.

    Returns:
        The :class:`Dataset`.  A damaged cache entry (content hash) is reported and decoded again.
    """
    key = runtime.cache_key([FORMAT_VERSION, req.name, req.image_size, fingerprint], sort_keys=False,
                            separators=(", ", ": "))  # the serialisation of the keys already on disk
    path = _cache_path(req.name, key)
    if req.cache and path.exists():
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
            if blob.get("format") != FORMAT_VERSION or blob.get("key") != key:
                raise ValueError("stale cache entry")
            tensors = (blob["train_images"], blob["train_labels"], blob["test_images"], blob["test_labels"])
            if blob.get("content_sha256") != content_digest(*tensors):
                raise ValueError("its content hash does not match: the file was changed or corrupted on disk")
            info = DatasetInfo(**{k: (tuple(v) if isinstance(v, list) else v)
                                  for k, v in blob["info"].items()})
            train = Split(blob["train_images"], blob["train_labels"], info.num_classes)
            test = Split(blob["test_images"], blob["test_labels"], info.num_classes)
            return Dataset(info, train, test, source)
        except Exception as exc:  # unreadable or altered cache: decode again and overwrite it
            import sys

            print(f"fyi: warning: dataset cache {path} is not usable ({exc}); it is a cache, so the dataset is "
                  "decoded again and the file replaced", file=sys.stderr)
    log.info("decoding %s (once; cached afterwards)", source)
    info, train, test = decode()
    if req.image_size is not None and info.image_size != req.image_size:
        info, train, test = _resize_all(info, train, test, req.image_size)
    if req.cache:
        runtime.save_torch(path, {
            "format": FORMAT_VERSION, "key": key, "info": asdict(info), "source": source,
            "train_images": train.images, "train_labels": train.labels,
            "test_images": test.images, "test_labels": test.labels,
            "content_sha256": content_digest(train.images, train.labels, test.images, test.labels),
        })
    return Dataset(info, train, test, source)

