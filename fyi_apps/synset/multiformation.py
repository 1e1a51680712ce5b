"""IDC's multi-formation encoding: ``factor x factor`` low-resolution images tiled
into one stored image (:func:`multiformation_encode`) and decoded back to
full-size training images (:func:`multiformation_decode`).

A stored-image format, so it lives with the synthetic-set files: a set saved by
IDC decodes wherever :mod:`fyi_apps.synset` is imported (the package imports
this module, which registers the ``multiformation`` codec).  IDC
(:mod:`fyi_apps.distill.idc`) encodes and decodes through it.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch.nn.functional as F
from torch import Tensor

from ..errors import FyiError
from .codec import register_codec


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


def _check_set(images: Tensor, encoding: Mapping[str, Any], where: str) -> None:
    _check_factor(images, encoding.get("factor", 2), where)


@register_codec("multiformation", check=_check_set)
def _decode_set(images: Tensor, labels: Tensor, encoding: Mapping[str, Any]) -> tuple[Tensor, Tensor]:
    """A stored set's training images and labels: each label repeated for the tiles of its image."""
    f = int(encoding.get("factor", 2))
    return multiformation_decode(images, f), labels.repeat_interleave(f * f)


__all__ = ["multiformation_decode", "multiformation_encode"]
