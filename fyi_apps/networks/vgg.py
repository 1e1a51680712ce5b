"""VGG-11 for small images (``vgg11``, and ``vgg11bn`` with BatchNorm)."""
from __future__ import annotations

import torch
from torch import nn

from .layers import NORMS, canon, check_sizes, first_pad, make_norm
from .registry import register_model

_VGG11_CFG = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


@register_model("vgg11")
class VGG11(nn.Module):
    """VGG-11 for small images; max-pools that would go below 1x1 are left out."""

    def __init__(self, channels: int, num_classes: int, image_size: int, norm: str = "instancenorm"):
        super().__init__()
        channels, num_classes, image_size = check_sizes(channels, num_classes, image_size)
        self.norm = canon("norm", norm, NORMS)
        pad = first_pad(image_size, 1)
        hw = image_size + 2 * pad - 2
        layers: list[nn.Module] = []
        in_c, first = channels, True
        for item in _VGG11_CFG:
            if item == "M":
                if hw // 2 >= 1:
                    layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                    hw //= 2
                continue
            layers.append(nn.Conv2d(in_c, item, kernel_size=3, padding=pad if first else 1))
            norm_layer = make_norm(self.norm, item, hw)
            if norm_layer is not None:
                layers.append(norm_layer)
            layers.append(nn.ReLU())
            in_c, first = item, False
        self.features = nn.Sequential(*layers)
        self.feature_hw = hw
        self.feature_dim = 512 * hw * hw
        self.classifier = nn.Linear(self.feature_dim, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))


@register_model("vgg11bn")
def _vgg11bn(channels, num_classes, image_size):
    return VGG11(channels, num_classes, image_size, norm="batchnorm")
