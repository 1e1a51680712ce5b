"""Building blocks shared by the network families: knob vocabularies, norm/act factories, fast CPU layers.

* the reference's knob vocabularies (``act``, ``norm``, ``pool``) and their
  canonical names (:func:`canon`), with :func:`make_act` / :func:`make_norm`;
* :class:`InstanceNorm` and :class:`AvgPool2x2`, the same numbers as torch's
  layers with faster CPU paths (:func:`instance_norm_reduction`);
* :func:`has_batchnorm` and :func:`batch_slice`: whether (and by how much) a
  batch may be cut into slices for one network.
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import FyiError
from ..runtime import cache_slice

# --------------------------------------------------------------------------
# knob vocabularies
# --------------------------------------------------------------------------

ACTS = {
    "sigmoid": "sigmoid",
    "relu": "relu",
    "leakyrelu": "leakyrelu",
    "leaky_relu": "leakyrelu",
    "leaky": "leakyrelu",
}
NORMS = {
    "none": "none", "nn": "none", "no": "none",
    "batchnorm": "batchnorm", "batch": "batchnorm", "bn": "batchnorm",
    "layernorm": "layernorm", "layer": "layernorm", "ln": "layernorm",
    "instancenorm": "instancenorm", "instance": "instancenorm", "in": "instancenorm",
    "groupnorm": "groupnorm", "group": "groupnorm", "gn": "groupnorm",
}
POOLS = {
    "none": "none", "np": "none", "no": "none",
    "maxpool": "maxpool", "max": "maxpool", "mp": "maxpool", "maxpooling": "maxpool",
    "avgpool": "avgpool", "avg": "avgpool", "ap": "avgpool", "avgpooling": "avgpool",
}


def canon(kind: str, value: Any, table: dict[str, str]) -> str:
    key = "none" if value is None else str(value).strip().lower()
    if key not in table:
        choices = ", ".join(sorted(set(table.values())))
        raise FyiError(f"unknown {kind} {value!r}; use one of {choices} (short forms: {', '.join(sorted(table))})")
    return table[key]


def positive_int(what: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise FyiError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


def check_sizes(channels: Any, num_classes: Any, image_size: Any) -> tuple[int, int, int]:
    """``(channels, num_classes, image_size)`` checked as positive integers (every model's first step)."""
    return (positive_int("channels", channels), positive_int("num_classes", num_classes),
            positive_int("image_size", image_size))


def make_act(act: str) -> nn.Module:
    if act == "sigmoid":
        return nn.Sigmoid()
    if act == "leakyrelu":
        return nn.LeakyReLU(negative_slope=0.01)
    return nn.ReLU()


def has_batchnorm(net: nn.Module) -> bool:
    """True when a layer mixes samples of a batch (BatchNorm): then a batch cannot be split into chunks."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())


def batch_slice(net: nn.Module, device, size: int | None = None) -> int | None:
    """Images per forward/backward slice of a batch through ``net`` (None: the whole batch).

    ``size`` defaults to :func:`fyi_apps.runtime.cache_slice` (16 on a CPU, whole
    batches elsewhere); 0 turns slicing off.  A BatchNorm layer in training mode
    needs the whole batch for its statistics, so it always gets it; frozen
    (eval-mode) BatchNorm does not mix samples and can be sliced.
    """
    size = cache_slice(device) if size is None else size
    if not size or any(m.training for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)):
        return None
    return int(size)


# torch's CPU GroupNorm kernel for channels-last input switches algorithm at
# H*W = 1024: below it, with one channel per group (instance norm), it walks each
# channel as a strided column, 10-20x slower than NCHW (measured: 4.2 vs 0.2 ms
# for [16, 128, 16, 16]).  Below that size InstanceNorm uses plain reductions,
# which are vectorised across the channels of the channels-last layout.
_GN_CHANNELS_LAST_FAST_HW = 1024


def _slow_channels_last(x: torch.Tensor) -> bool:
    """True for a CPU channels-last map on which torch's GroupNorm takes its slow per-channel path."""
    return (
        x.device.type == "cpu" and x.dim() == 4 and x.shape[2] * x.shape[3] < _GN_CHANNELS_LAST_FAST_HW
        and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    )


def instance_norm_reduction(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float) -> torch.Tensor:
    """Instance norm of ``[N, C, H, W]`` with reductions over H, W (two-pass variance, any layout, differentiable).

    The same numbers as ``F.group_norm(x, C, weight, bias, eps)`` up to float
    rounding; the output keeps ``x``'s memory format.
    """
    mean = x.mean((2, 3), keepdim=True)
    centred = x - mean
    var = centred.square().mean((2, 3), keepdim=True)
    scale = weight.view(1, -1, 1, 1) * torch.rsqrt(var + eps)
    return torch.addcmul(bias.view(1, -1, 1, 1), centred, scale)


class InstanceNorm(nn.GroupNorm):
    """The reference's instance norm: ``GroupNorm(c, c)`` (one group per channel, affine).

    Same parameters, state dict and numbers as ``nn.GroupNorm(c, c)`` and
    ``nn.InstanceNorm2d(c, affine=True)``; GroupNorm's kernel is as fast or
    faster on a CPU and much faster under double backward (gradient matching).
    On channels-last CPU maps smaller than 32x32, where that kernel is slow,
    :func:`instance_norm_reduction` computes it instead.
    """

    def __init__(self, c: int):
        super().__init__(c, c, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _slow_channels_last(x):
            return instance_norm_reduction(x, self.weight, self.bias, self.eps)
        return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)


class AvgPool2x2(nn.AvgPool2d):
    """``AvgPool2d(2, 2)``; on NCHW CPU maps it runs as a depthwise 2x2 convolution with weights 1/4.

    torch's NCHW ``avg_pool2d`` CPU kernel is slow (measured 3.8 ms forward,
    12 ms forward + backward for ``[16, 128, 32, 32]``); the depthwise
    convolution gives the same averages (up to float rounding) in 1.0 / 3.2 ms.
    Channels-last maps (fast ``avg_pool2d`` kernel) and other devices use ``avg_pool2d``.
    """

    def __init__(self):
        super().__init__(kernel_size=2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type == "cpu" and x.dim() == 4 and x.is_contiguous() and x.is_floating_point():
            c = x.shape[1]
            weight = torch.full((c, 1, 2, 2), 0.25, dtype=x.dtype, device=x.device)
            return F.conv2d(x, weight, stride=2, groups=c)
        return F.avg_pool2d(x, 2, 2)


def make_norm(norm: str, c: int, hw: int) -> nn.Module | None:
    """The reference normalisations for a ``[N, c, hw, hw]`` map.

    ``instancenorm`` is a per-channel affine normalisation over H, W
    (:class:`InstanceNorm`, a ``GroupNorm(c, c)``).
    """
    if norm == "none":
        return None
    if norm == "batchnorm":
        return nn.BatchNorm2d(c)
    if norm == "instancenorm":
        return InstanceNorm(c)
    if norm == "groupnorm":
        if c % 4:
            raise FyiError(f"groupnorm uses 4 groups, so the width must be a multiple of 4 (got {c})")
        return nn.GroupNorm(4, c, affine=True)
    if norm == "layernorm":
        return nn.LayerNorm([c, hw, hw], elementwise_affine=True)
    raise FyiError(f"unknown norm {norm!r}")  # pragma: no cover - guarded by canon


def first_pad(image_size: int, pad: int, target: int = 32) -> int:
    """The reference pads 28 px inputs (MNIST-like) up to 32 px in the first layer."""
    return pad + (target - image_size) // 2 if image_size == 28 else pad
