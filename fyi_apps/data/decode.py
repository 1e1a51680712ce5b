"""Shared decoders: image files and in-memory blobs to uint8 tensors, resizing,
per-channel statistics, and listing ``<dir>/<class>/*`` folders of images.

Every family that reads encoded images (JPEG/PNG archives, ImageNet-style
folders) goes through these, so all of them resize (shorter side, then center
crop) and decode the same way.
"""
from __future__ import annotations

import io
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import torch

from ..errors import FyiError
from .base import Dataset, DatasetInfo, Split


# --------------------------------------------------------------------------- #
# Resizing and statistics of uint8 tensors
# --------------------------------------------------------------------------- #
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


def channel_stats(images: torch.Tensor, chunk: int = 4096) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean/std of uint8 images ``[N, C, H, W]`` scaled to [0, 1] (population std, 4 decimals).

    What a family's :class:`DatasetInfo` needs when the data has no published mean/std.
    """
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


def decode_files(paths: Sequence[str | Path], size: int | None) -> tuple[torch.Tensor, bool]:
    """Decode image files to uint8 ``[N, 3, S, S]`` (S = ``size`` or the first image's
    shorter side; shorter side resized, then center-cropped) and tell whether every image was grayscale."""
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


def decode_images(blobs: Sequence[bytes], size: int | None, names: Sequence[str] = ()) -> tuple[torch.Tensor, bool]:
    """Decode encoded images held in memory (e.g. read from an archive) to uint8 ``[N, 3, S, S]``.

    ``size``: the side S (None: the images' own, if square); ``names`` name a file that fails to decode.
    Returns the images and whether every one was grayscale.  JPEGs go through torchvision's batched
    decoder when it is available, anything else through PIL.
    """
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


def list_image_folder(directory: Path, classes: Sequence[str]) -> list[tuple[str, int]]:
    """(path, label) of every image under ``directory/<class>/``, ordered by label then path."""
    samples = _folder_class(classes)(str(directory), allow_empty=True).samples
    return sorted(samples, key=lambda s: (s[1], s[0]))


def split_from_samples(samples: Sequence[tuple[str, int]], size: int | None, num_classes: int) -> tuple[Split, bool]:
    """``(path, label)`` samples (:func:`list_image_folder`) decoded into a :class:`Split`, and whether all were gray."""
    images, gray = decode_files([p for p, _ in samples], size)
    labels = torch.tensor([c for _, c in samples], dtype=torch.int64)
    return Split(images, labels, num_classes), gray

