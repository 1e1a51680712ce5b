"""Any timm model as ``timm:<name>``: built without pretrained weights, fitted to small images.

:class:`TimmNet` gives a timm model the fyi-apps interface (``embed`` = the
pre-logits features, ``classifier`` = timm's head); fixed-input-size models
(ViTs, Swin ...) get ``img_size`` and smaller patches/windows for small images.
"""
from __future__ import annotations

import contextlib

import difflib
import re
from typing import Any

import torch
from torch import nn

from ..errors import FyiError
from .registry import dry_embed, register_prefix


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

    def fyi_describe(self) -> dict[str, Any]:
        """What :func:`~fyi_apps.networks.describe_model` adds for a timm model."""
        return {"timm_name": self.timm_name}


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


class _Offline(Exception):
    """A download was attempted."""


@contextlib.contextmanager
def _no_downloads(active: bool):
    """While building a pretrained model: the Hugging Face hub offline and any URL download refused."""
    if not active:
        yield
        return
    import os

    import torch.hub

    old_env = os.environ.get("HF_HUB_OFFLINE")
    old_dl = torch.hub.download_url_to_file

    def refuse(url, *args, **kwargs):
        raise _Offline(f"it would download {url}")

    os.environ["HF_HUB_OFFLINE"] = "1"
    torch.hub.download_url_to_file = refuse
    try:
        import huggingface_hub.constants as hf_constants
    except ImportError:
        hf_constants = None
    old_const = getattr(hf_constants, "HF_HUB_OFFLINE", None)
    if hf_constants is not None:
        hf_constants.HF_HUB_OFFLINE = True  # read at import: the environment variable alone comes too late
    try:
        yield
    except Exception as e:  # noqa: BLE001 - hub errors of several kinds all mean "not on disk"
        if isinstance(e, (_Offline, FyiError)) or type(e).__module__.startswith(("huggingface_hub", "requests",
                                                                                 "urllib")):
            raise _Offline(str(e).splitlines()[0][:120] if str(e) else type(e).__name__) from None
        raise
    finally:
        torch.hub.download_url_to_file = old_dl
        if hf_constants is not None:
            hf_constants.HF_HUB_OFFLINE = old_const
        if old_env is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = old_env


def _create_timm(name: str, channels: int, num_classes: int, image_size: int, **kwargs: Any) -> TimmNet:
    import timm
    from timm.models import is_model, split_model_name_tag

    pretrained = bool(kwargs.pop("pretrained", False))
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
            with _no_downloads(pretrained):
                model = timm.create_model(
                    name, pretrained=pretrained, num_classes=num_classes, in_chans=channels, **auto, **kwargs
                )
            break
        except _Offline as e:
            raise FyiError(f"the pretrained weights of timm model {name!r} are not on disk ({e}) and fyi-apps never "
                           "downloads; put them in the Hugging Face cache, or pass "
                           "pretrained_cfg_overlay={'file': PATH} with a local weights file") from None
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
        feats = dry_embed(net, channels, image_size)
    except (RuntimeError, ValueError, AssertionError, IndexError) as e:
        raise FyiError(f"{size_msg}: {e}; pick another model or image size") from e
    if feats.dim() != 2:
        raise FyiError(f"timm model {name!r} gives {feats.dim()}-D pre-logits features; fyi-apps needs [N, D]")
    net.feature_dim = int(feats.shape[1])
    net.timm_kwargs = dict(auto, **kwargs)
    return net




@register_prefix("timm")
def _build_timm(name: str, channels: int, num_classes: int, image_size: int, **kwargs: Any) -> tuple[TimmNet, str]:
    """The ``timm:<name>`` hook of :func:`~fyi_apps.networks.create_model`."""
    timm_name = name.strip()[5:].strip()
    if not timm_name:
        raise FyiError("empty timm model name; write timm:<name>, e.g. timm:resnet18")
    return _create_timm(timm_name, channels, num_classes, image_size, **kwargs), f"timm:{timm_name}"
