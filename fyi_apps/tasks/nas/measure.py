"""What a candidate costs, measured on the meta device: does it fit, parameters, multiply-accumulates.

Nothing is allocated or trained: a model is built on ``torch.device("meta")``
(or on the CPU when it refuses the meta device) and only its shapes are used.
Each measurement is made once per process and candidate (memoised): a ranking
asks for the same candidate's size in the sampler, the free proxies and the report.
"""
from __future__ import annotations

import functools

import torch

from ...errors import FyiError


@functools.lru_cache(maxsize=None)
def candidate_fits(name: str, *, channels: int = 3, num_classes: int = 10, image_size: int = 32) -> bool:
    """Whether ``name`` builds at this input size (checked on the meta device: no memory, no training)."""
    from ...networks import create_model

    kw = dict(channels=channels, num_classes=num_classes, image_size=image_size, seed=0)
    try:
        with torch.device("meta"):
            create_model(name, **kw)
    except FyiError:
        try:  # a model may refuse the meta device only: confirm on the CPU
            create_model(name, **kw)
        except FyiError:
            return False
    return True


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
def candidate_mmacs(name: str, *, channels: int = 3, num_classes: int = 10, image_size: int = 32) -> float:
    """Multiply-accumulates (millions) of one image's forward pass through ``name``.

    Counted by :class:`torch.utils.flop_counter.FlopCounterMode` (convolutions
    and matrix products) on the meta device, so nothing is allocated or run.
    """
    from torch.utils.flop_counter import FlopCounterMode

    net, device = meta_model(name, channels, num_classes, image_size)
    net.eval()
    x = torch.zeros(2, channels, image_size, image_size, device=device)  # 2: BatchNorm-free shapes need no care
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(x)
    return counter.get_total_flops() / 2 / 2 / 1e6  # 2 FLOPs per MAC, 2 images


@functools.lru_cache(maxsize=None)
def candidate_params(name: str, *, channels: int = 3, num_classes: int = 10, image_size: int = 32) -> int:
    """Number of parameters of ``name`` (built on the meta device: nothing allocated)."""
    net, _ = meta_model(name, channels, num_classes, image_size)
    return int(sum(p.numel() for p in net.parameters()))
