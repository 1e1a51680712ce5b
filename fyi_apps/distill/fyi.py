"""FYI, "Flip Your Images" (ECCV 2024), as one method-agnostic piece.

Dataset distillation methods match a synthetic set ``S`` to real data.  FYI
computes the matching loss on ``A = cat([S, view(S)])`` with the labels
repeated, where ``view`` is a horizontal flip in the paper.  The gradient
flows through the view back into ``S``; only ``S`` is stored and evaluation
never adds the flipped copies.  Real images are never flipped.  The view is
applied before DSA augmentation.  For trajectory matching (MTT/FTD) the
synthetic batch is halved first so that ``A`` has the original batch size.

The paper's Table 4 ablates other views; they are available as ``vflip``,
``rot15`` (rotation by 15 degrees) and ``scale`` (zoom by 1.2).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import FyiError


def _affine(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    grid = F.affine_grid(theta.expand(x.shape[0], 2, 3).to(x.dtype), list(x.shape), align_corners=True)
    return F.grid_sample(x, grid, align_corners=True)


def _rot15(x: torch.Tensor) -> torch.Tensor:
    a = math.radians(15.0)
    theta = torch.tensor([[math.cos(a), math.sin(a), 0.0], [-math.sin(a), math.cos(a), 0.0]], device=x.device)
    return _affine(x, theta)


def _scale(x: torch.Tensor) -> torch.Tensor:
    s = 1.0 / 1.2  # sampling a smaller window = zooming in by 1.2
    theta = torch.tensor([[s, 0.0, 0.0], [0.0, s, 0.0]], device=x.device)
    return _affine(x, theta)


_TRANSFORMS = {
    "flip": lambda x: torch.flip(x, dims=[-1]),
    "vflip": lambda x: torch.flip(x, dims=[-2]),
    "rot15": _rot15,
    "scale": _scale,
}
VIEWS = tuple(_TRANSFORMS)


@dataclass(frozen=True)
class FYIView:
    """A deterministic, differentiable second view of the synthetic images."""

    name: str = "flip"

    def __post_init__(self):
        if self.name not in _TRANSFORMS:
            raise FyiError(f"unknown FYI view {self.name!r}; use one of {', '.join(VIEWS)}")

    def transform(self, images: torch.Tensor) -> torch.Tensor:
        return _TRANSFORMS[self.name](images)

    def expand(self, images: torch.Tensor, labels: torch.Tensor | None = None):
        """``A = cat([S, view(S)])`` and labels repeated (``labels`` may be None)."""
        both = torch.cat([images, self.transform(images)], dim=0)
        if labels is None:
            return both
        return both, torch.cat([labels, labels], dim=0)

    @staticmethod
    def halve(n: int) -> int:
        """Size of the synthetic batch before expansion when the cost must stay the same (MTT/FTD)."""
        return max(n // 2, 1)


def get_view(fyi: str | bool | None) -> FYIView | None:
    """``None``/``False``/"off" -> no FYI; ``True``/"on" -> the paper's horizontal flip; or a view name."""
    if fyi is None or fyi is False:
        return None
    if fyi is True:
        return FYIView("flip")
    name = str(fyi).strip().lower()
    if name in ("", "off", "none", "false", "no"):
        return None
    if name in ("on", "true", "yes", "hflip"):
        name = "flip"
    return FYIView(name)


def maybe_expand(view: FYIView | None, images: torch.Tensor, labels: torch.Tensor | None = None):
    """``view.expand`` when FYI is on, the inputs unchanged otherwise."""
    if view is None:
        return images if labels is None else (images, labels)
    return view.expand(images, labels)
