"""Every network fyi-apps trains, behind one timm-like registry.

``create_model(name, channels=, num_classes=, image_size=, seed=)`` builds a
model by name.  Names are looked up case-insensitively:

* ``convnet`` - the ConvNet of the DC/DSA/DM papers, with the knobs of their
  architecture search space (``depth``, ``width``, ``act``, ``norm``,
  ``pool``).  Knobs can be given as keyword arguments or inside the name:
  ``convnet:depth=2,width=64,act=sigmoid,norm=batch,pool=max``.  The
  reference aliases ``ConvNetD1``..``ConvNetD5``, ``ConvNetW32``..``W256``,
  ``ConvNetAS/AR/AL``, ``ConvNetNN/BN/LN/IN/GN`` and ``ConvNetNP/MP/AP`` fix
  one knob each.
* ``vgg11`` / ``vgg11bn``, ``resnet18`` / ``resnet18bn``, ``alexnet``, ``mlp``
  - the small-image variants used for cross-architecture evaluation.
* ``timm:<name>`` - any timm model, built without pretrained weights and
  adapted to small images where the model needs a fixed input size.

Every model has ``embed(x) -> [N, D]`` (the features the final linear
classifier sees), ``classifier`` (that linear layer) with
``forward(x) == classifier(embed(x))``, and ``feature_dim == D``.

``seed=<int>`` builds the weights from a private copy of the CPU random stream,
so equal seeds give equal weights and torch's global RNG is left as it was.

Layout (one family per file, like timm): :mod:`.registry` (names, specs,
``create_model``), :mod:`.layers` (shared blocks), :mod:`.convnet`,
:mod:`.vgg`, :mod:`.resnet`, :mod:`.alexnet`, :mod:`.mlp`, :mod:`.timm_models`.
Adding a network is one decorated class (its keyword arguments are its
options, their defaults its default configuration)::

    from fyi_apps.networks import register_model

    @register_model("mynet")
    class MyNet(nn.Module):
        def __init__(self, channels, num_classes, image_size, width=64): ...
        def embed(self, x): ...  # [N, D] features; forward(x) == self.classifier(self.embed(x))
"""
from __future__ import annotations

from .registry import (MODEL_PREFIXES, MODELS, check_model_names, create_model, describe_model, dry_embed, list_models,
                       register_model, register_prefix)
from .layers import AvgPool2x2, InstanceNorm, batch_slice, has_batchnorm, instance_norm_reduction
# importing the family modules registers their models
from .convnet import ConvNet, default_depth
from .vgg import VGG11
from .resnet import ResNet18
from .alexnet import AlexNet
from .mlp import MLP
from .timm_models import TimmNet
from .slim_resnet import SlimResNet18

__all__ = [
    "MODELS",
    "MODEL_PREFIXES",
    "AlexNet",
    "AvgPool2x2",
    "ConvNet",
    "InstanceNorm",
    "MLP",
    "ResNet18",
    "SlimResNet18",
    "TimmNet",
    "VGG11",
    "batch_slice",
    "check_model_names",
    "create_model",
    "default_depth",
    "describe_model",
    "dry_embed",
    "has_batchnorm",
    "instance_norm_reduction",
    "list_models",
    "register_model",
    "register_prefix",
]
