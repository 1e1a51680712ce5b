"""Architecture spaces: named lists of model names, a registry, and drawing one at random.

A space is a list of strings that :func:`fyi_apps.networks.create_model`
understands.  Named spaces (``dc720``, ``nb201``, ``classic``, ``mixed``) are
:class:`Space` subclasses registered with :func:`register_space`; NAS rankings
sample candidates from them (:mod:`fyi_apps.tasks.nas.spaces`) and a
distillation can draw its networks from them (``--arch space:nb201;cells=1``,
:func:`draw_architecture`).
"""
from __future__ import annotations

import itertools
from typing import Iterable, Sequence

import torch

from ..errors import FyiError
from ..registry import Registry

DC_DEPTHS = (1, 2, 3, 4)
DC_WIDTHS = (32, 64, 128, 256)
DC_ACTS = ("sigmoid", "relu", "leakyrelu")
DC_NORMS = ("none", "batch", "layer", "instance", "group")
DC_POOLS = ("none", "max", "avg")


def dc_candidate(depth: int, width: int, act: str, norm: str, pool: str) -> str:
    """The candidate string of one ConvNet of the DC search space."""
    return f"convnet:depth={int(depth)},width={int(width)},act={act},norm={norm},pool={pool}"


def dc_space() -> list[str]:
    """The 720 ConvNets of the DC paper's architecture search space, in a fixed order."""
    return [dc_candidate(*knobs) for knobs in itertools.product(DC_DEPTHS, DC_WIDTHS, DC_ACTS, DC_NORMS, DC_POOLS)]


_CLASSIC = ["convnet", "vgg11", "resnet18", "alexnet"]
# timm models that build and train at 32 px (see the shared reference facts)
_TIMM = ["timm:resnet18", "timm:mobilenetv2_050", "timm:regnetx_002", "timm:efficientnet_b0"]


def nb201_space() -> list[str]:
    """The 15,625 NAS-Bench-201 cells as ``nb201:<cell string>`` candidates (:mod:`fyi_apps.networks.nb201`)."""
    from .nb201 import PREFIX, all_cells

    return [PREFIX + c for c in all_cells()]


class Space:
    """A named candidate space: :meth:`candidates` lists its candidate strings in a fixed order.

    Adding a space is one decorated class::

        @register_space("tiny")
        class TinySpace(Space):
            def candidates(self) -> list[str]:
                return ["convnet:depth=1,width=8", "mlp:width=16"]

    after which ``fyi nas --space tiny`` and :func:`sample_candidates` draw
    from it (the draw, the size check and the compute cap are the same for
    every space).  Calling a registered space returns its candidates, so
    ``NAMED_SPACES[name]()`` is the list.
    """

    name: str = ""

    def candidates(self) -> list[str]:
        raise NotImplementedError

    def __call__(self) -> list[str]:
        return self.candidates()


def _known_spaces() -> str:
    return f"named spaces: {', '.join(list_spaces())}"


#: space name -> the registered :class:`Space` (an instance: calling it gives the candidate list)
NAMED_SPACES: Registry[Space] = Registry("space", choices=_known_spaces)


def register_space(name: str, *, replace: bool = False):
    """Class decorator: register a :class:`Space` subclass under ``name`` (case-insensitive, ``_`` == ``-``, once)."""
    if not isinstance(name, str) or not name.strip() or ":" in name or "," in name:
        raise FyiError(f"bad space name {name!r}; use a non-empty name without ':' or ','")

    def decorator(cls: type[Space]) -> type[Space]:
        if not (isinstance(cls, type) and issubclass(cls, Space)):
            raise FyiError(f"@register_space({name!r}) decorates a subclass of Space, got {cls!r}")
        if name in NAMED_SPACES and type(NAMED_SPACES.get(name)) is cls:
            return cls  # the same class again
        space = cls()
        NAMED_SPACES.add(name.strip().lower(), space, replace=replace)
        cls.name = space.name = NAMED_SPACES.canonical(name)
        return cls

    return decorator


@register_space("dc720")
class DCSpace(Space):
    """The DC paper's 720 ConvNets (:func:`dc_space`)."""

    def candidates(self) -> list[str]:
        return dc_space()


@register_space("nb201")
class NB201Space(Space):
    """The 15,625 NAS-Bench-201 cells (:func:`nb201_space`)."""

    def candidates(self) -> list[str]:
        return nb201_space()


@register_space("classic")
class ClassicSpace(Space):
    """ConvNet, VGG-11, ResNet-18, AlexNet."""

    def candidates(self) -> list[str]:
        return list(_CLASSIC)


@register_space("mixed")
class MixedSpace(Space):
    """The classic four plus a few timm models that build and train at 32 px."""

    def candidates(self) -> list[str]:
        return list(_CLASSIC) + list(_TIMM)


def list_spaces(pattern: str | None = None) -> list[str]:
    """The named spaces, sorted; ``pattern``: only those matching a wildcard (``"dc*"``)."""
    return sorted(NAMED_SPACES.names(pattern))


def space_candidates(space: str | Sequence[str]) -> list[str]:
    """A named space (``dc720``, ``classic``, ``mixed``), a comma-separated list, or a list of names."""
    if isinstance(space, str):
        if space in NAMED_SPACES:
            return NAMED_SPACES.get(space)()
        names = split_names(space)
    else:
        names = [str(s).strip() for s in space if str(s).strip()]
    if not names:
        raise FyiError(f"empty candidate space {space!r}; use {', '.join(list_spaces())} or a comma-separated list of models")
    return unique_names(names)


def split_names(text: str) -> list[str]:
    """Split ``a,convnet:depth=2,width=64,b`` at the commas that start a new model name."""
    out: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if out and "=" in part and ":" not in part.split("=")[0]:
            out[-1] += "," + part  # a key=value option of the previous model
        else:
            out.append(part)
    return out


def unique_names(names: Iterable[str]) -> list[str]:
    seen, out = set(), []
    for n in names:
        if n not in seen:
            seen.add(n)
            out.append(n)
    return out



#: the prefix of an ``--arch`` that draws a network from a space at every use
SPACE_PREFIX = "space:"


def space_arch(text: str) -> tuple[list[str], str]:
    """``space:NAME[;opt=v...]`` or ``space:a|b|c`` -> ``(the names to draw from, options appended to each)``.

    ``space:nb201;cells=1`` draws NAS-Bench-201 cells built with one cell per
    stage; ``space:convnet|vgg11|resnet18`` draws from the listed models.
    """
    body = str(text).strip()
    if not body.lower().startswith(SPACE_PREFIX):
        raise FyiError(f"{text!r} is not a space architecture; write space:NAME or space:a|b|c")
    body = body[len(SPACE_PREFIX):]
    name, sep, opts = body.partition(";")
    variant = (";" + opts) if sep else ""
    if "|" in name:
        names = unique_names(n.strip() for n in name.split("|") if n.strip())
        if variant:
            raise FyiError(f"options after ';' apply to a named space, not to the list {name!r}; put them in each name")
    else:
        if name not in NAMED_SPACES:
            raise FyiError(f"unknown space {name!r} in {text!r}; named spaces: {', '.join(list_spaces())}, "
                           "or list models as space:a|b|c")
        names = NAMED_SPACES.get(name)()
        if variant and not all(n.lower().startswith("nb201:") for n in names):
            raise FyiError(f"options {variant!r} apply to the nb201 space only")
    if len(names) < 1:
        raise FyiError(f"space {text!r} has no model to draw")
    return names, variant


def draw_architecture(text: str, generator: torch.Generator) -> str:
    """One model name drawn uniformly from the space ``text`` (:func:`space_arch`) with ``generator``."""
    names, variant = space_arch(text)
    return names[int(torch.randint(len(names), (1,), generator=generator))] + variant
