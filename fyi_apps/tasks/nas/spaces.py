"""Candidate spaces of a ranking: :func:`sample_candidates` draws from a named space or an explicit list.

Candidates are plain strings that :func:`fyi_apps.networks.create_model`
understands (JSON keys, cache keys and CLI values alike).  The named spaces and
their registry live with the networks (:mod:`fyi_apps.networks.spaces`, so
that a distillation can draw its networks from them too) and are re-exported
here.
"""
from __future__ import annotations

from typing import Sequence

import torch

from ...errors import FyiError
from ...networks.spaces import (DC_ACTS, DC_DEPTHS, DC_NORMS, DC_POOLS, DC_WIDTHS, NAMED_SPACES, Space,  # noqa: F401
                                dc_candidate, dc_space, list_spaces, nb201_space, register_space, space_candidates,
                                split_names, unique_names)
from .measure import candidate_fits, candidate_mmacs


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
