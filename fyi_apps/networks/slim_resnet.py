"""Avalanche's SlimResNet18 (``slimresnet18``): the ResNet-18 of width 20 of GEM and Avalanche's CL baselines.

The network is Avalanche's own (:func:`avalanche.models.SlimResNet18`), so that
the continual-learning baselines reproduce with the very model they were
published with; this wrapper only adds the registry's ``embed`` /
``classifier`` interface.  ``incremental=True`` replaces the linear classifier
by Avalanche's ``IncrementalClassifier``, which starts with one output and
grows as classes arrive (as ``experiments/split_cifar10/er_ace.py`` of
continual-learning-baselines does).  Avalanche's network reads 3 x 32 x 32
images only.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import FyiError
from .layers import check_sizes, positive_int
from .registry import register_model


@register_model("slimresnet18")
class SlimResNet18(nn.Module):
    """Avalanche's SlimResNet18 (width ``nf``), optionally with an incremental classifier."""

    def __init__(self, channels: int, num_classes: int, image_size: int, nf: int = 20, incremental: bool = False):
        super().__init__()
        from avalanche.models import SlimResNet18 as AvalancheSlim
        from avalanche.models.dynamic_modules import IncrementalClassifier

        channels, num_classes, image_size = check_sizes(channels, num_classes, image_size)
        if channels != 3 or image_size != 32:
            raise FyiError(f"slimresnet18 (Avalanche's) reads 3 x 32 x 32 images, got {channels} x {image_size} px; "
                           "use it on CIFAR-sized data or pick another --arch")
        nf = positive_int("slimresnet18 nf", nf)
        self.net = AvalancheSlim(1 if incremental else num_classes, nf=nf)
        if incremental:
            self.net.linear = IncrementalClassifier(self.net.linear.in_features, 1)
        self.feature_dim = self.net.linear.in_features if not incremental else self.net.linear.classifier.in_features

    @property
    def classifier(self) -> nn.Module:
        return self.net.linear

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        n = self.net
        out = torch.relu(n.bn1(n.conv1(x)))
        out = n.layer4(n.layer3(n.layer2(n.layer1(out))))
        return torch.nn.functional.avg_pool2d(out, 4).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
