"""ResNet-18 for small images (``resnet18``, and ``resnet18bn`` with BatchNorm)."""
from __future__ import annotations

import torch
from torch import nn

from .layers import NORMS, canon, check_sizes, make_norm
from .registry import register_model


class _BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int, norm: str, hw_out: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = make_norm(norm, planes, hw_out) or nn.Identity()
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = make_norm(norm, planes, hw_out) or nn.Identity()
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            down = [nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride, bias=False)]
            norm_layer = make_norm(norm, planes, hw_out)
            if norm_layer is not None:
                down.append(norm_layer)
            self.shortcut = nn.Sequential(*down)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


@register_model("resnet18")
class ResNet18(nn.Module):
    """ResNet-18 for small images: 3x3 stem, no max-pool, global average pool."""

    def __init__(self, channels: int, num_classes: int, image_size: int, norm: str = "instancenorm"):
        super().__init__()
        channels, num_classes, hw = check_sizes(channels, num_classes, image_size)
        self.norm = canon("norm", norm, NORMS)
        self.conv1 = nn.Conv2d(channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = make_norm(self.norm, 64, hw) or nn.Identity()
        in_planes = 64
        stages = []
        for planes, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            blocks = []
            for s in (stride, 1):
                hw = (hw - 1) // s + 1  # 3x3 conv, padding 1
                blocks.append(_BasicBlock(in_planes, planes, s, self.norm, hw))
                in_planes = planes
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.feature_dim = 512
        self.classifier = nn.Linear(512, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return out.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))


@register_model("resnet18bn")
def _resnet18bn(channels, num_classes, image_size):
    return ResNet18(channels, num_classes, image_size, norm="batchnorm")
