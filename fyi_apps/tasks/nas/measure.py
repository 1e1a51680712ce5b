"""What a candidate costs, measured on the meta device: does it fit, parameters, multiply-accumulates.

Nothing is allocated or trained: a model is built on ``torch.device("meta")``
(or on the CPU when it refuses the meta device) and only its shapes are used.
Each candidate is built and measured once per process and input shape
(:func:`measure`, memoised): a ranking asks for the same candidate's size in the
sampler, the free proxies and the report.
"""
from __future__ import annotations

import dataclasses
import functools

import torch

from ...errors import FyiError


@dataclasses.dataclass(frozen=True)
class Measurement:
    """One candidate at one input shape: whether it builds, its parameters and its MACs per image (millions)."""

    fits: bool
    params: int | None = None
    mmacs: float | None = None


def meta_model(name: str, channels: int, num_classes: int, image_size: int):
    """``(model, device)``: built on the meta device (nothing allocated), or on the CPU if it refuses meta."""
    from ...networks import create_model

    kw = dict(channels=channels, num_classes=num_classes, image_size=image_size, seed=0)
    try:
        with torch.device("meta"):
            return create_model(name, **kw), "meta"
    except FyiError:
        return create_model(name, **kw), "cpu"


@functools.lru_cache(maxsize=None)
def measure(name: str, *, channels: int = 3, num_classes: int = 10, image_size: int = 32) -> Measurement:
    """Build ``name`` once and measure it: fit, parameters, and MACs of one image's forward pass.

    MACs are counted by :class:`torch.utils.flop_counter.FlopCounterMode`
    (convolutions and matrix products).  A candidate that does not build at
    this size (a model error, e.g. too small an image) is ``fits=False``.
    """
    from torch.utils.flop_counter import FlopCounterMode

    try:
        net, device = meta_model(name, channels, num_classes, image_size)
    except FyiError:
        return Measurement(fits=False)
    params = int(sum(p.numel() for p in net.parameters()))
    net.eval()
    x = torch.zeros(2, channels, image_size, image_size, device=device)  # 2: BatchNorm-free shapes need no care
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(x)
    return Measurement(fits=True, params=params, mmacs=counter.get_total_flops() / 2 / 2 / 1e6)  # 2 FLOPs/MAC, 2 images


def _measured(name: str, channels: int, num_classes: int, image_size: int) -> Measurement:
    m = measure(name, channels=channels, num_classes=num_classes, image_size=image_size)
    if not m.fits:
        meta_model(name, channels, num_classes, image_size)  # raises the model's own one-line error
    return m


def candidate_fits(name: str, *, channels: int = 3, num_classes: int = 10, image_size: int = 32) -> bool:
    """Whether ``name`` builds at this input size (checked on the meta device: no memory, no training)."""
    return measure(name, channels=channels, num_classes=num_classes, image_size=image_size).fits


def candidate_mmacs(name: str, *, channels: int = 3, num_classes: int = 10, image_size: int = 32) -> float:
    """Multiply-accumulates (millions) of one image's forward pass through ``name`` (:func:`measure`)."""
    return float(_measured(name, channels, num_classes, image_size).mmacs)


def candidate_params(name: str, *, channels: int = 3, num_classes: int = 10, image_size: int = 32) -> int:
    """Number of parameters of ``name`` (:func:`measure`: built on the meta device, nothing allocated)."""
    return int(_measured(name, channels, num_classes, image_size).params)
