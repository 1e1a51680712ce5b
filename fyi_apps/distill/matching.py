"""The matching distances of the distillation methods, and the unequalness score's D.

* Gradient matching (DC/DSA/IDC): layer-wise distance between the gradients of
  the loss on real and synthetic data.  ``"ours"`` is the DC paper's metric:
  for every weight tensor, reshaped to ``[out, -1]``, the sum over output units
  of ``1 - cos``; bias and normalisation vectors are ignored.  ``"mse"`` and
  ``"cos"`` are the alternatives of the reference code; ``"l1"`` (sum of
  absolute differences) is IDC's.  ``mse``/``l1``/``cos`` use every tensor given.
* Feature-mean matching (DM): squared distance between mean embeddings.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from ..errors import FyiError
from ..networks import batch_slice

_EPS = 1e-6


def _rows(g: torch.Tensor) -> torch.Tensor:
    return g.reshape(g.shape[0], -1)


def real_gradient(
    net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, params: Sequence[torch.Tensor],
    forward: Callable[[torch.Tensor], torch.Tensor],
) -> list[torch.Tensor]:
    """Gradient of the mean cross-entropy of ``forward(x)`` w.r.t. ``params``, no graph kept.

    Computed as the sum of the gradients of slices of the batch (see
    :func:`fyi_apps.networks.batch_slice`).
    """
    n, total = x.shape[0], None
    chunk = batch_slice(net, x.device) or n
    for s in range(0, n, chunk):
        loss = F.cross_entropy(forward(x[s : s + chunk]).float(), y[s : s + chunk], reduction="sum") / n
        g = torch.autograd.grad(loss, params)
        total = [t.detach() for t in g] if total is None else [t + u.detach() for t, u in zip(total, g)]
    return total


def gradient_distance(
    g_real: Sequence[torch.Tensor], g_syn: Sequence[torch.Tensor], metric: str = "ours", exact: bool = False
) -> torch.Tensor:
    """Distance between two lists of per-parameter gradients (same order, same shapes).

    ``exact=False`` is the reference form ``1 - dot / (|a||b| + 1e-6)`` used for
    distillation; it charges 1 for a row whose gradients are both zero (a dead
    unit).  ``exact=True`` (the unequalness score) counts such rows as equal, so
    that identical gradient lists are at distance 0.
    """
    if metric == "ours":
        total = g_syn[0].new_zeros(())
        for gr, gs in zip(g_real, g_syn):
            if gr.dim() == 1:  # biases and normalisation parameters do not count
                continue
            gr, gs = _rows(gr), _rows(gs)
            dot, norms = (gr * gs).sum(-1), gr.norm(dim=-1) * gs.norm(dim=-1)
            if exact:
                tiny = torch.finfo(norms.dtype).tiny
                both_zero = (gr.abs().amax(-1) == 0) & (gs.abs().amax(-1) == 0)
                cos = torch.where(both_zero, torch.ones_like(dot), dot / norms.clamp_min(tiny))
            else:
                cos = dot / (norms + _EPS)
            total = total + (1.0 - cos).sum()
        return total
    flat_r = torch.cat([g.reshape(-1) for g in g_real])
    flat_s = torch.cat([g.reshape(-1) for g in g_syn])
    if metric == "mse":
        return ((flat_r - flat_s) ** 2).sum()
    if metric == "l1":  # IDC's default (sum of absolute differences)
        return (flat_r - flat_s).abs().sum()
    if metric == "cos":
        return 1.0 - (flat_r * flat_s).sum() / (flat_r.norm() * flat_s.norm() + _EPS)
    raise FyiError(f"unknown gradient-matching metric {metric!r}; use ours, mse, l1 or cos")


def class_means(features: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Per-class mean of ``features`` ``[N, D]`` -> ``[num_classes, D]`` in one matmul (no class loop)."""
    onehot = torch.nn.functional.one_hot(labels, num_classes).to(features.dtype)  # [N, K]
    counts = onehot.sum(0).clamp_min(1)
    return (onehot.t() @ features) / counts[:, None]


def feature_mean_distance(
    feat_real: torch.Tensor,
    labels_real: torch.Tensor,
    feat_syn: torch.Tensor,
    labels_syn: torch.Tensor,
    num_classes: int,
    classes: torch.Tensor | None = None,
) -> torch.Tensor:
    """DM's loss: sum over classes of ``||mean(feat_real_c) - mean(feat_syn_c)||^2``.

    ``classes`` restricts the sum to the classes present (all by default).
    """
    diff = class_means(feat_real, labels_real, num_classes) - class_means(feat_syn, labels_syn, num_classes)
    per_class = (diff**2).sum(dim=1)
    if classes is not None:
        per_class = per_class[classes]
    return per_class.sum()
