"""The DC reference AlexNet for small images (``alexnet``)."""
from __future__ import annotations

import torch
from torch import nn

from ..errors import FyiError
from .layers import check_sizes, first_pad
from .registry import register_model


@register_model("alexnet")
class AlexNet(nn.Module):
    """The DC reference AlexNet: five convolutions (128/192/256/192/192), three max-pools."""

    def __init__(self, channels: int, num_classes: int, image_size: int):
        super().__init__()
        channels, num_classes, image_size = check_sizes(channels, num_classes, image_size)
        pad = first_pad(image_size, 2)
        hw = image_size + 2 * pad - 4
        if hw < 1:
            raise FyiError(f"alexnet cannot run at image size {image_size}; use at least 4 px")
        layers: list[nn.Module] = []

        def pool():
            nonlocal hw
            if hw // 2 >= 1:
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                hw //= 2

        layers += [nn.Conv2d(channels, 128, kernel_size=5, stride=1, padding=pad), nn.ReLU()]
        pool()
        layers += [nn.Conv2d(128, 192, kernel_size=5, padding=2), nn.ReLU()]
        pool()
        layers += [nn.Conv2d(192, 256, kernel_size=3, padding=1), nn.ReLU()]
        layers += [nn.Conv2d(256, 192, kernel_size=3, padding=1), nn.ReLU()]
        layers += [nn.Conv2d(192, 192, kernel_size=3, padding=1), nn.ReLU()]
        pool()
        self.features = nn.Sequential(*layers)
        with torch.no_grad():
            dim = self.features(torch.zeros(1, channels, image_size, image_size)).flatten(1).shape[1]
        self.feature_dim = int(dim)
        self.classifier = nn.Linear(self.feature_dim, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))

