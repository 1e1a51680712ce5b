"""A two-hidden-layer perceptron (``mlp``)."""
from __future__ import annotations

import torch
from torch import nn

from .layers import check_sizes, positive_int
from .registry import register_model


@register_model("mlp")
class MLP(nn.Module):
    """flatten -> width -> ReLU -> width -> ReLU -> classes."""

    def __init__(self, channels: int, num_classes: int, image_size: int, width: int = 128):
        super().__init__()
        channels, num_classes, image_size = check_sizes(channels, num_classes, image_size)
        width = positive_int("MLP width", width)
        self.fc_1 = nn.Linear(channels * image_size * image_size, width)
        self.fc_2 = nn.Linear(width, width)
        self.feature_dim = width
        self.classifier = nn.Linear(width, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.fc_2(torch.relu(self.fc_1(x.flatten(1)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))

