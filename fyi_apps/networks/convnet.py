"""The ConvNet of the DC/DSA/DM papers and its reference aliases (``ConvNetD3``, ``ConvNetBN``, ...).

Its knobs are the reference architecture search space: ``depth`` (default by
image size, :func:`default_depth`), ``width`` 128, ``act`` relu, ``norm``
instancenorm, ``pool`` avgpool.  Each alias fixes one knob.
"""
from __future__ import annotations

import inspect
import math
from typing import Any

import torch
from torch import nn

from ..errors import FyiError
from .layers import ACTS, AvgPool2x2, NORMS, POOLS, canon, check_sizes, first_pad, make_act, make_norm, positive_int
from .registry import register_model


def default_depth(image_size: int) -> int:
    """ConvNet depth by image size: 3 up to 32 px, then one more per doubling."""
    if image_size <= 32:
        return 3
    return 3 + int(math.floor(math.log2(image_size / 32) + 1e-9))


@register_model("convnet")
class ConvNet(nn.Module):
    """The DC/DSA/DM ConvNet: ``depth`` x [conv3x3 -> norm -> act -> pool] -> linear.

    Layer order and parameter order follow the reference implementation
    (``features.*`` then ``classifier.*``), so flat parameter vectors line up
    with reference expert trajectories.  Like the reference, a 28 px input is
    padded by 3 in the first convolution so the map is 32 px from then on.
    """

    def __init__(
        self,
        channels: int,
        num_classes: int,
        image_size: int,
        width: int = 128,
        depth: int | None = None,
        act: str = "relu",
        norm: str = "instancenorm",
        pool: str = "avgpool",
    ):
        super().__init__()
        channels, num_classes, image_size = check_sizes(channels, num_classes, image_size)
        width = positive_int("ConvNet width", width)
        depth = default_depth(image_size) if depth is None else positive_int("ConvNet depth", depth)
        self.width, self.depth = width, depth
        self.act = canon("activation", act, ACTS)
        self.norm = canon("norm", norm, NORMS)
        self.pool = canon("pooling", pool, POOLS)

        pad = first_pad(image_size, 1)
        hw = image_size + 2 * pad - 2  # after the first conv
        if self.pool != "none" and hw >> depth < 1:
            max_depth = max(int(math.floor(math.log2(hw))), 0) if hw >= 1 else 0
            raise FyiError(
                f"ConvNet depth {depth} with {self.pool} cannot run at image size {image_size}: "
                f"the feature map would shrink below 1x1; use depth <= {max_depth} or pool=none"
            )
        layers: list[nn.Module] = []
        in_c = channels
        for d in range(depth):
            layers.append(nn.Conv2d(in_c, width, kernel_size=3, padding=pad if d == 0 else 1))
            norm_layer = make_norm(self.norm, width, hw)
            if norm_layer is not None:
                layers.append(norm_layer)
            layers.append(make_act(self.act))
            if self.pool == "maxpool":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                hw //= 2
            elif self.pool == "avgpool":
                layers.append(AvgPool2x2())
                hw //= 2
            in_c = width
        self.features = nn.Sequential(*layers)
        self.feature_hw = hw
        self.feature_dim = width * hw * hw
        self.classifier = nn.Linear(self.feature_dim, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))


_CANON_BY_KNOB = {
    "act": lambda v: canon("activation", v, ACTS),
    "norm": lambda v: canon("norm", v, NORMS),
    "pool": lambda v: canon("pooling", v, POOLS),
    "depth": lambda v: v,
    "width": lambda v: v,
}


def _convnet_alias(display: str, knob: str, value: Any) -> None:
    """Register ``display``: the ConvNet with ``knob`` fixed to ``value`` (giving another value is refused)."""

    def factory(channels, num_classes, image_size, **kw):
        if knob in kw and kw[knob] is not None and _CANON_BY_KNOB[knob](kw[knob]) != value:
            raise FyiError(f"{display} fixes {knob}={value}; use convnet with {knob}={kw[knob]!r} instead")
        kw[knob] = value
        return ConvNet(channels, num_classes, image_size, **kw)

    factory.__signature__ = inspect.signature(ConvNet)
    factory.__name__ = f"_{display.lower()}"
    register_model(display)(factory)


for _d in (1, 2, 3, 4, 5):
    _convnet_alias(f"ConvNetD{_d}", "depth", _d)
for _w in (32, 64, 128, 256):
    _convnet_alias(f"ConvNetW{_w}", "width", _w)
for _suffix, _act in (("AS", "sigmoid"), ("AR", "relu"), ("AL", "leakyrelu")):
    _convnet_alias(f"ConvNet{_suffix}", "act", _act)
for _suffix, _norm in (("NN", "none"), ("BN", "batchnorm"), ("LN", "layernorm"), ("IN", "instancenorm"), ("GN", "groupnorm")):
    _convnet_alias(f"ConvNet{_suffix}", "norm", _norm)
for _suffix, _pool in (("NP", "none"), ("MP", "maxpool"), ("AP", "avgpool")):
    _convnet_alias(f"ConvNet{_suffix}", "pool", _pool)
