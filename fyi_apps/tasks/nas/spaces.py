"""Candidate spaces: named lists of architecture strings, a registry, and the sampler.

Candidates are plain strings that :func:`fyi_apps.networks.create_model`
understands (JSON keys, cache keys and CLI values alike).  A named space is a
:class:`Space` subclass registered with :func:`register_space`;
:func:`sample_candidates` draws from a named space or an explicit list.
"""
from __future__ import annotations

import itertools
from typing import Iterable, Sequence

import torch

from ...errors import FyiError
from .measure import candidate_fits, candidate_mmacs

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
    from ...networks.nb201 import PREFIX, all_cells

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


#: name (lower case) -> the registered :class:`Space` (calling it gives the candidate list)
NAMED_SPACES: dict[str, Space] = {}


def register_space(name: str):
    """Class decorator: register a :class:`Space` subclass under ``name`` (case-insensitive, not re-usable)."""
    if not isinstance(name, str) or not name.strip() or ":" in name or "," in name:
        raise FyiError(f"bad space name {name!r}; use a non-empty name without ':' or ','")
    key = name.strip().lower()

    def decorator(cls: type[Space]) -> type[Space]:
        if not (isinstance(cls, type) and issubclass(cls, Space)):
            raise FyiError(f"@register_space({name!r}) decorates a subclass of Space, got {cls!r}")
        if key in NAMED_SPACES and type(NAMED_SPACES[key]) is not cls:
            raise FyiError(f"space name {name!r} is already registered; pick another name")
        cls.name = key
        NAMED_SPACES[key] = cls()
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


def list_spaces() -> list[str]:
    return sorted(NAMED_SPACES)


def space_candidates(space: str | Sequence[str]) -> list[str]:
    """A named space (``dc720``, ``classic``, ``mixed``), a comma-separated list, or a list of names."""
    if isinstance(space, str):
        key = space.strip().lower()
        if key in NAMED_SPACES:
            return NAMED_SPACES[key]()
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


def sample_candidates(
    space: str | Sequence[str] = "dc720",
    n: int | None = None,
    *,
    seed: int = 0,
    include: Sequence[str] = (),
    channels: int = 3,
    num_classes: int = 10,
    image_size: int | None = 32,
    max_mmacs: float | None = None,
    connected_only: bool = False,
    stratify: dict[str, float] | None = None,
    variant: str = "",
) -> list[str]:
    """``n`` candidates drawn without replacement from ``space`` (all of them when ``n`` is None or 0).

    Candidates that cannot run at ``image_size`` (e.g. depth 4 with pooling on
    8 px digits) are left out before drawing (``image_size=None``: no check),
    and so are those above ``max_mmacs`` million multiply-accumulates per image
    (a compute-constrained space, e.g. to leave out the DC space's
    unpooled width-256 ConvNets, ~36x a ConvNet-3's cost at 32 px).
    The draw depends only on ``seed``, the space and the cap; the result keeps
    the space's order, followed by ``include`` (e.g. ``vgg11``, ``resnet18``),
    which the cap does not apply to.

    NAS-Bench-201 spaces (every candidate ``nb201:<cell>``): ``connected_only``
    leaves out the cells whose output is disconnected from the input (they
    score 10 %); ``stratify`` (a ground-truth accuracy per cell) draws one cell
    from each of ``n`` equal-size bins of the accuracy-sorted pool instead of
    uniformly; ``variant`` (e.g. ``";cells=1"``) is appended to every drawn
    cell (the network's options).  NB201 networks run at any size from 4 px, so
    the per-candidate size check is skipped for them.
    """
    from ...networks import check_model_names
    from ...runtime import derive_seed, make_generator

    pool = space_candidates(space)
    if not (isinstance(space, str) and space.strip().lower() in NAMED_SPACES):  # a typo must not be dropped silently
        check_model_names(pool, "--space", channels=channels, num_classes=num_classes,
                          image_size=image_size or 32, must_fit=False,
                          hint=f"named spaces: {', '.join(list_spaces())}")
    nb201_only = all(c.lower().startswith("nb201:") for c in pool)
    if connected_only or stratify is not None or variant:
        if not nb201_only:
            raise FyiError("--connected-only, --stratified and --nb201-cells/--nb201-width apply to the nb201 space "
                           "only; use --space nb201")
    if connected_only:
        from ...networks.nb201 import is_connected, split_name

        pool = [c for c in pool if is_connected(split_name(c)[0])]
    if nb201_only and image_size is not None:
        if image_size < 4:
            raise FyiError(f"NAS-Bench-201 networks need images of at least 4 px, the dataset has {image_size}")
        image_size = None  # every cell runs at this size
    if image_size is not None:
        pool = [c for c in pool if candidate_fits(c, channels=channels, num_classes=num_classes, image_size=image_size)]
        if not pool:
            raise FyiError(f"no candidate of {space!r} runs at {image_size} px; pick another space or dataset")
    if max_mmacs is not None:
        if not max_mmacs > 0:
            raise FyiError(f"--max-mmacs must be a positive number of million MACs per image, got {max_mmacs!r}")
        size = image_size or 32
        pool = [c for c in pool
                if candidate_mmacs(c, channels=channels, num_classes=num_classes, image_size=size) <= max_mmacs]
        if not pool:
            raise FyiError(f"no candidate of {space!r} costs at most {max_mmacs:g} M MACs per image; raise --max-mmacs")
    if n:
        if n < 0 or n > len(pool):
            raise FyiError(f"--sample {n} but the space has {len(pool)} candidates that run at this image size; "
                           f"use 1..{len(pool)} (or 0 for all)")
        g = make_generator(derive_seed(seed, "nas-sample", space if isinstance(space, str) else ",".join(space)))
        if stratify is not None:
            missing = [c for c in pool if c not in stratify]
            if missing:
                raise FyiError(f"no ground truth for {missing[0]!r} to stratify by; use --truth nb201")
            order = sorted(range(len(pool)), key=lambda i: (stratify[pool[i]], i))
            bins = [order[len(order) * b // n: len(order) * (b + 1) // n] for b in range(n)]
            picked = sorted(b[int(torch.randint(len(b), (1,), generator=g))] for b in bins)
        else:
            picked = sorted(torch.randperm(len(pool), generator=g)[:n].tolist())
        pool = [pool[i] for i in picked]
    if variant:
        pool = [c + variant for c in pool]
    extra = [c for c in (split_names(include) if isinstance(include, str) else include) if c not in pool]
    check_model_names(extra, "--include", channels=channels, num_classes=num_classes,
                      image_size=image_size or 32, must_fit=image_size is not None)
    return pool + unique_names(extra)
