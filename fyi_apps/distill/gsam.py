"""GSAM, the surrogate-gap guided sharpness-aware update (Zhuang et al., ICLR 2022).

FTD (Du et al., CVPR 2023) trains its *flat* experts with it (``buffer_FTD.py``
of the reference): :func:`gsam_direction` sets every parameter's ``.grad`` to
GSAM's direction, and the base optimiser (plain SGD) then steps with it.
:class:`BatchNormMomentum` freezes BatchNorm running statistics during the
second (perturbed) forward pass.
"""
from __future__ import annotations

import contextlib
from typing import Callable, Sequence

import torch


class BatchNormMomentum:
    """Freeze BatchNorm running statistics during GSAM's second (perturbed) pass."""

    def __init__(self, net: torch.nn.Module):
        self.bns = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]

    def __enter__(self):
        self.saved = [m.momentum for m in self.bns]
        for m in self.bns:
            m.momentum = 0.0

    def __exit__(self, *exc):
        for m, v in zip(self.bns, self.saved):
            m.momentum = v


def gsam_direction(params: Sequence[torch.Tensor], closure: Callable[[], torch.Tensor], *, rho: float,
                   alpha: float, adaptive: bool = True, eps: float = 1e-12, second_pass=None) -> torch.Tensor:
    """GSAM (Zhuang et al., ICLR 2022): set ``p.grad`` to the update direction; return the loss at ``w``.

    1. ``g = grad L(w)``;
    2. ascend to ``w + e`` with ``e = rho g / ||g||`` (adaptive: ``e = rho w^2 g / || |w| g ||``);
    3. ``g_p = grad L(w + e)``, return to ``w``;
    4. direction ``g_p - alpha * g_perp`` where ``g_perp = g - (<g, g_p> / ||g_p||^2) g_p`` is the
       part of ``g`` orthogonal to ``g_p`` (descending it lowers the surrogate gap).

    ``closure`` computes the loss (forward only).  The base optimiser then steps with ``p.grad``.
    """
    params = [p for p in params if p.requires_grad]
    loss = closure()
    g = torch.autograd.grad(loss, params)
    with torch.no_grad():
        if adaptive:
            norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.abs() * gi) for p, gi in zip(params, g)]))
            e = [rho * gi * p * p / (norm + eps) for p, gi in zip(params, g)]
        else:
            norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(gi) for gi in g]))
            e = [rho * gi / (norm + eps) for gi in g]
        for p, ei in zip(params, e):
            p.add_(ei)
    try:
        with (second_pass or contextlib.nullcontext()):
            loss_p = closure()
        gp = torch.autograd.grad(loss_p, params)
    finally:
        with torch.no_grad():
            for p, ei in zip(params, e):
                p.sub_(ei)
    with torch.no_grad():
        inner = sum((a * b).sum() for a, b in zip(g, gp))
        gp_sq = sum((b * b).sum() for b in gp)
        coef = inner / (gp_sq + eps)
        for p, gi, gpi in zip(params, g, gp):
            p.grad = gpi - alpha * (gi - coef * gpi)
    return loss.detach()

