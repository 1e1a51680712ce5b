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
"""
from __future__ import annotations

import difflib
import inspect
import math
import re
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from .errors import FyiError
from .runtime import cache_slice

__all__ = [
    "AlexNet",
    "AvgPool2x2",
    "ConvNet",
    "InstanceNorm",
    "MLP",
    "ResNet18",
    "TimmNet",
    "VGG11",
    "create_model",
    "default_depth",
    "describe_model",
    "instance_norm_reduction",
    "list_models",
    "register_model",
]

# --------------------------------------------------------------------------
# knob vocabularies
# --------------------------------------------------------------------------

_ACTS = {
    "sigmoid": "sigmoid",
    "relu": "relu",
    "leakyrelu": "leakyrelu",
    "leaky_relu": "leakyrelu",
    "leaky": "leakyrelu",
}
_NORMS = {
    "none": "none", "nn": "none", "no": "none",
    "batchnorm": "batchnorm", "batch": "batchnorm", "bn": "batchnorm",
    "layernorm": "layernorm", "layer": "layernorm", "ln": "layernorm",
    "instancenorm": "instancenorm", "instance": "instancenorm", "in": "instancenorm",
    "groupnorm": "groupnorm", "group": "groupnorm", "gn": "groupnorm",
}
_POOLS = {
    "none": "none", "np": "none", "no": "none",
    "maxpool": "maxpool", "max": "maxpool", "mp": "maxpool", "maxpooling": "maxpool",
    "avgpool": "avgpool", "avg": "avgpool", "ap": "avgpool", "avgpooling": "avgpool",
}


def _canon(kind: str, value: Any, table: dict[str, str]) -> str:
    key = "none" if value is None else str(value).strip().lower()
    if key not in table:
        choices = ", ".join(sorted(set(table.values())))
        raise FyiError(f"unknown {kind} {value!r}; use one of {choices} (short forms: {', '.join(sorted(table))})")
    return table[key]


def _positive_int(what: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise FyiError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


def _make_act(act: str) -> nn.Module:
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


def _make_norm(norm: str, c: int, hw: int) -> nn.Module | None:
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
    raise FyiError(f"unknown norm {norm!r}")  # pragma: no cover - guarded by _canon


def _first_pad(image_size: int, pad: int, target: int = 32) -> int:
    """The reference pads 28 px inputs (MNIST-like) up to 32 px in the first layer."""
    return pad + (target - image_size) // 2 if image_size == 28 else pad


def default_depth(image_size: int) -> int:
    """ConvNet depth by image size: 3 up to 32 px, then one more per doubling."""
    if image_size <= 32:
        return 3
    return 3 + int(math.floor(math.log2(image_size / 32) + 1e-9))


# --------------------------------------------------------------------------
# ConvNet
# --------------------------------------------------------------------------


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
        channels = _positive_int("channels", channels)
        num_classes = _positive_int("num_classes", num_classes)
        image_size = _positive_int("image_size", image_size)
        width = _positive_int("ConvNet width", width)
        depth = default_depth(image_size) if depth is None else _positive_int("ConvNet depth", depth)
        self.width, self.depth = width, depth
        self.act = _canon("activation", act, _ACTS)
        self.norm = _canon("norm", norm, _NORMS)
        self.pool = _canon("pooling", pool, _POOLS)

        pad = _first_pad(image_size, 1)
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
            norm_layer = _make_norm(self.norm, width, hw)
            if norm_layer is not None:
                layers.append(norm_layer)
            layers.append(_make_act(self.act))
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


# --------------------------------------------------------------------------
# VGG-11, ResNet-18, AlexNet, MLP (small-image variants)
# --------------------------------------------------------------------------

_VGG11_CFG = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


class VGG11(nn.Module):
    """VGG-11 for small images; max-pools that would go below 1x1 are left out."""

    def __init__(self, channels: int, num_classes: int, image_size: int, norm: str = "instancenorm"):
        super().__init__()
        channels = _positive_int("channels", channels)
        num_classes = _positive_int("num_classes", num_classes)
        image_size = _positive_int("image_size", image_size)
        self.norm = _canon("norm", norm, _NORMS)
        pad = _first_pad(image_size, 1)
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
            norm_layer = _make_norm(self.norm, item, hw)
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


class _BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int, norm: str, hw_out: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = _make_norm(norm, planes, hw_out) or nn.Identity()
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = _make_norm(norm, planes, hw_out) or nn.Identity()
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            down = [nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride, bias=False)]
            norm_layer = _make_norm(norm, planes, hw_out)
            if norm_layer is not None:
                down.append(norm_layer)
            self.shortcut = nn.Sequential(*down)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18 for small images: 3x3 stem, no max-pool, global average pool."""

    def __init__(self, channels: int, num_classes: int, image_size: int, norm: str = "instancenorm"):
        super().__init__()
        channels = _positive_int("channels", channels)
        num_classes = _positive_int("num_classes", num_classes)
        hw = _positive_int("image_size", image_size)
        self.norm = _canon("norm", norm, _NORMS)
        self.conv1 = nn.Conv2d(channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = _make_norm(self.norm, 64, hw) or nn.Identity()
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


class AlexNet(nn.Module):
    """The DC reference AlexNet: five convolutions (128/192/256/192/192), three max-pools."""

    def __init__(self, channels: int, num_classes: int, image_size: int):
        super().__init__()
        channels = _positive_int("channels", channels)
        num_classes = _positive_int("num_classes", num_classes)
        image_size = _positive_int("image_size", image_size)
        pad = _first_pad(image_size, 2)
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


class MLP(nn.Module):
    """flatten -> width -> ReLU -> width -> ReLU -> classes."""

    def __init__(self, channels: int, num_classes: int, image_size: int, width: int = 128):
        super().__init__()
        channels = _positive_int("channels", channels)
        num_classes = _positive_int("num_classes", num_classes)
        image_size = _positive_int("image_size", image_size)
        width = _positive_int("MLP width", width)
        self.fc_1 = nn.Linear(channels * image_size * image_size, width)
        self.fc_2 = nn.Linear(width, width)
        self.feature_dim = width
        self.classifier = nn.Linear(width, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.fc_2(torch.relu(self.fc_1(x.flatten(1)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))


# --------------------------------------------------------------------------
# timm
# --------------------------------------------------------------------------


class TimmNet(nn.Module):
    """A timm model with the fyi-apps interface (``embed`` = pre-logits features)."""

    def __init__(self, model: nn.Module, timm_name: str):
        super().__init__()
        self.model = model
        self.timm_name = timm_name
        self.feature_dim = 0  # set by the builder after a dry forward

    @property
    def classifier(self) -> nn.Module:
        return self.model.get_classifier()

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_head(self.model.forward_features(x), pre_logits=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))


def _timm_size_kwargs(arch: str, image_size: int) -> dict[str, Any]:
    """Extra arguments that fit a fixed-input-size timm model to ``image_size``."""
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(arch)
    if cfg is None or not getattr(cfg, "fixed_input_size", False):
        return {}
    out: dict[str, Any] = {"img_size": image_size}
    small = 4 if image_size <= 32 else 8 if image_size <= 64 else None
    if small is not None:
        m = re.search(r"patch(\d+)", arch)
        if m and int(m.group(1)) > small:
            out["patch_size"] = small
        m = re.search(r"window(\d+)", arch)
        if m and int(m.group(1)) != small:
            out["window_size"] = small
    return out


def _create_timm(name: str, channels: int, num_classes: int, image_size: int, **kwargs: Any) -> TimmNet:
    import timm
    from timm.models import is_model, split_model_name_tag

    if kwargs.pop("pretrained", False):
        raise FyiError("pretrained timm weights are not supported (fyi-apps never downloads); drop pretrained=True")
    arch = split_model_name_tag(name)[0]
    if not arch or not is_model(arch):
        close = difflib.get_close_matches(arch, timm.list_models(), n=5, cutoff=0.6)
        hint = f" (close: {', '.join(close)})" if close else ""
        pattern = re.split(r"[_.]", arch)[0] or arch
        raise FyiError(
            f"unknown timm model {name!r}{hint}; list the available ones with timm.list_models('*{pattern}*')"
        )
    auto = {k: v for k, v in _timm_size_kwargs(arch, image_size).items() if k not in kwargs}
    size_msg = f"timm model {name!r} cannot run at image size {image_size} with {channels} channel(s)"
    while True:
        try:
            model = timm.create_model(
                name, pretrained=False, num_classes=num_classes, in_chans=channels, **auto, **kwargs
            )
            break
        except TypeError as e:
            dropped = [k for k in auto if k in str(e)]
            if dropped:  # the model does not take one of our size adaptations: build without it
                for k in dropped:
                    auto.pop(k)
                continue
            raise FyiError(f"timm model {name!r} rejected the options {sorted(kwargs)}: {e}") from e
        except (RuntimeError, ValueError, AssertionError) as e:
            raise FyiError(f"{size_msg}: {e}; pick another model or image size") from e
    if not isinstance(model.get_classifier(), nn.Module) or isinstance(model.get_classifier(), nn.Identity):
        raise FyiError(
            f"timm model {name!r} has no single linear classifier head (e.g. a distilled model); "
            "use a non-distilled variant"
        )
    net = TimmNet(model, name)
    try:
        feats = _dry_embed(net, channels, image_size)
    except (RuntimeError, ValueError, AssertionError, IndexError) as e:
        raise FyiError(f"{size_msg}: {e}; pick another model or image size") from e
    if feats.dim() != 2:
        raise FyiError(f"timm model {name!r} gives {feats.dim()}-D pre-logits features; fyi-apps needs [N, D]")
    net.feature_dim = int(feats.shape[1])
    net.timm_kwargs = dict(auto, **kwargs)
    return net


# --------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------

_REGISTRY: dict[str, tuple[str, Callable[..., nn.Module]]] = {}


def register_model(name: str):
    """Decorator: register ``factory(channels, num_classes, image_size, **kw) -> nn.Module``.

    The model it returns must have ``embed(x) -> [N, D]``; names are
    case-insensitive, may not contain ``:`` and may not be re-used.
    """
    if not isinstance(name, str) or not name.strip() or ":" in name or "," in name:
        raise FyiError(f"bad model name {name!r}; use a non-empty name without ':' or ','")
    key = name.strip().lower()
    if key == "timm":
        raise FyiError("'timm' is reserved for timm:<name>; pick another model name")

    def decorator(factory: Callable[..., nn.Module]):
        if key in _REGISTRY and _REGISTRY[key][1] is not factory:
            raise FyiError(f"model name {name!r} is already registered; pick another name")
        _REGISTRY[key] = (name.strip(), factory)
        return factory

    return decorator


def list_models() -> list[str]:
    """Registered names (case-insensitive); any timm model is also available as ``timm:<name>``."""
    return sorted(display for display, _ in _REGISTRY.values())


def _parse_value(text: str) -> Any:
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text.strip()


def _parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``'convnet:depth=2,act=sigmoid'`` -> ``('convnet', {'depth': 2, 'act': 'sigmoid'})``."""
    base, _, rest = spec.partition(":")
    opts: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = part.partition("=")
        if not eq or not key.strip() or not value.strip():
            raise FyiError(f"bad model option {part!r} in {spec!r}; write name:key=value,key=value")
        opts[key.strip().lower()] = _parse_value(value)
    return base.strip(), opts


def _unknown_model(name: str) -> FyiError:
    close = difflib.get_close_matches(name.lower(), list(_REGISTRY), n=3)
    hint = f" (did you mean {', '.join(_REGISTRY[c][0] for c in close)}?)" if close else ""
    return FyiError(
        f"unknown model {name!r}{hint}; known: {', '.join(list_models())}, "
        "timm:<name> for any timm model, or nb201:<cell string> for a NAS-Bench-201 network"
    )


def _check_options(display: str, factory: Callable[..., nn.Module], options: dict[str, Any]) -> None:
    params = inspect.signature(factory).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    allowed = [n for n in params if n not in ("channels", "num_classes", "image_size")]
    bad = sorted(set(options) - set(allowed))
    if bad:
        have = ", ".join(allowed) if allowed else "none"
        raise FyiError(f"model {display!r} has no option(s) {', '.join(bad)}; its options: {have}")


@torch.no_grad()
def _dry_embed(model: nn.Module, channels: int, image_size: int) -> torch.Tensor:
    """``embed`` of a zero batch of 2 in eval mode (no RNG draws, BatchNorm-safe)."""
    was_training = model.training
    model.eval()
    try:
        p = next(model.parameters(), None)
        kw = {"device": p.device, "dtype": p.dtype} if p is not None and p.is_floating_point() else {}
        return model.embed(torch.zeros(2, channels, image_size, image_size, **kw))
    finally:
        model.train(was_training)


def _build(name: str, channels: int, num_classes: int, image_size: int, kwargs: dict[str, Any]) -> tuple[nn.Module, str, dict]:
    if name.strip().lower().startswith("timm:"):
        timm_name = name.strip()[5:].strip()
        if not timm_name:
            raise FyiError("empty timm model name; write timm:<name>, e.g. timm:resnet18")
        return _create_timm(timm_name, channels, num_classes, image_size, **kwargs), f"timm:{timm_name}", kwargs
    if name.strip().lower().startswith("nb201:"):  # NAS-Bench-201 cells: fyi_apps/nb201.py
        from . import nb201

        return nb201.create(name, channels, num_classes, image_size, **kwargs), name.strip(), kwargs
    base, spec_opts = _parse_spec(name)
    entry = _REGISTRY.get(base.lower())
    if entry is None:
        raise _unknown_model(base or name)
    display, factory = entry
    clash = sorted(k for k in spec_opts if k in kwargs and kwargs[k] != spec_opts[k])
    if clash:
        raise FyiError(f"option(s) {', '.join(clash)} given both in {name!r} and as arguments; give each once")
    options = {**spec_opts, **kwargs}
    _check_options(display, factory, options)
    model = factory(channels, num_classes, image_size, **options)
    if not isinstance(model, nn.Module) or not callable(getattr(model, "embed", None)):
        raise FyiError(f"model factory {display!r} must return an nn.Module with an embed(x) method")
    if not isinstance(getattr(model, "feature_dim", None), int):
        model.feature_dim = int(_dry_embed(model, channels, image_size).shape[1])
    return model, display, options


def create_model(
    name: str,
    *,
    channels: int,
    num_classes: int,
    image_size: int,
    seed: int | None = 0,
    **kwargs: Any,
) -> nn.Module:
    """Build a registered network, a ``name:key=value,...`` spec, or ``timm:<name>``.

    ``seed=int`` draws the initial weights from a private copy of the CPU RNG
    seeded with ``seed`` (the global RNG is untouched); ``seed=None`` draws from
    the global RNG.  The model is returned on CPU in training mode.
    """
    if not isinstance(name, str) or not name.strip():
        raise FyiError(f"model name must be a non-empty string, got {name!r}")
    channels = _positive_int("channels", channels)
    num_classes = _positive_int("num_classes", num_classes)
    image_size = _positive_int("image_size", image_size)
    if seed is None:
        model, display, options = _build(name, channels, num_classes, image_size, kwargs)
    else:
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64:
            raise FyiError(f"seed must be an integer in [0, 2**64) or None, got {seed!r}")
        with torch.random.fork_rng(devices=[]):
            torch.random.default_generator.manual_seed(int(seed))
            model, display, options = _build(name, channels, num_classes, image_size, kwargs)
    model.fyi_config = {
        "name": display,
        "options": dict(options),
        "channels": channels,
        "num_classes": num_classes,
        "image_size": image_size,
        "seed": seed,
    }
    return model


def describe_model(model: nn.Module) -> dict[str, Any]:
    """Parameter counts, feature size and build settings, for reports."""
    params = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    out: dict[str, Any] = {
        "class": type(model).__name__,
        "params": int(params),
        "trainable_params": int(trainable),
        "feature_dim": getattr(model, "feature_dim", None),
    }
    config = getattr(model, "fyi_config", None)
    if isinstance(config, dict):
        out.update({k: v for k, v in config.items() if k not in out})
    if isinstance(model, TimmNet):
        out["timm_name"] = model.timm_name
    return out


# --------------------------------------------------------------------------
# built-in registrations
# --------------------------------------------------------------------------


@register_model("convnet")
def _convnet(channels, num_classes, image_size, width=128, depth=None, act="relu", norm="instancenorm", pool="avgpool"):
    return ConvNet(channels, num_classes, image_size, width=width, depth=depth, act=act, norm=norm, pool=pool)


_CANON_BY_KNOB = {
    "act": lambda v: _canon("activation", v, _ACTS),
    "norm": lambda v: _canon("norm", v, _NORMS),
    "pool": lambda v: _canon("pooling", v, _POOLS),
    "depth": lambda v: v,
    "width": lambda v: v,
}


def _convnet_alias(display: str, knob: str, value: Any) -> None:
    def factory(channels, num_classes, image_size, **kw):
        if knob in kw and kw[knob] is not None and _CANON_BY_KNOB[knob](kw[knob]) != value:
            raise FyiError(f"{display} fixes {knob}={value}; use convnet with {knob}={kw[knob]!r} instead")
        kw[knob] = value
        return _convnet(channels, num_classes, image_size, **kw)

    factory.__signature__ = inspect.signature(_convnet)
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


@register_model("vgg11")
def _vgg11(channels, num_classes, image_size, norm="instancenorm"):
    return VGG11(channels, num_classes, image_size, norm=norm)


@register_model("vgg11bn")
def _vgg11bn(channels, num_classes, image_size):
    return VGG11(channels, num_classes, image_size, norm="batchnorm")


@register_model("resnet18")
def _resnet18(channels, num_classes, image_size, norm="instancenorm"):
    return ResNet18(channels, num_classes, image_size, norm=norm)


@register_model("resnet18bn")
def _resnet18bn(channels, num_classes, image_size):
    return ResNet18(channels, num_classes, image_size, norm="batchnorm")


@register_model("alexnet")
def _alexnet(channels, num_classes, image_size):
    return AlexNet(channels, num_classes, image_size)


@register_model("mlp")
def _mlp(channels, num_classes, image_size, width=128):
    return MLP(channels, num_classes, image_size, width=width)
