"""Zero-cost NAS proxies: score an untrained network from one minibatch, no training.

Each measure is written from its paper's definition; all see a freshly
initialised network (the candidate's own default initialisation, seeded) and
one fixed minibatch of real training images (64 images; NASWOT 128, as in its
paper), with cross-entropy where a loss is needed, and the network in training
mode (BatchNorm on batch statistics), as the published evaluations do.
Larger is better for every score as returned here.

* ``synflow`` (Tanaka et al., NeurIPS 2020): with every weight replaced by its
  absolute value, BatchNorm removed, float64 and an all-ones input of one image,
  R = sum of the outputs; score = sum over conv/linear weights of |theta * dR/dtheta|.
* ``snip`` (Lee et al., ICLR 2019): sum of |theta * dL/dtheta| over conv/linear weights.
* ``grad_norm``: sum over conv/linear layers of the L2 norm of dL/dW.
* ``grasp`` (Wang et al., ICLR 2020): sum of -theta * (H g), g = dL/dtheta,
  H g the Hessian-gradient product, over conv/linear weights.
* ``fisher`` (Theis et al. 2018; Turner et al. 2020): for every conv/linear
  output channel, 0.5 x the batch mean of (sum over positions of activation x
  dL/dactivation)^2; summed.
* ``jacob_cov`` (Mellor et al. 2020, v1): J = d(sum of outputs)/d(input) per
  image; with the eigenvalues v of the correlation matrix of J's rows,
  score = -sum(log(v + k) + 1 / (v + k)), k = 1e-5.
* ``naswot`` (Mellor et al., ICML 2021): the binary codes of every ReLU's
  activations over the batch give the Hamming-similarity kernel
  K = sum over ReLUs of c c^T + (1 - c)(1 - c)^T; score = log |det K|.

The combination used by Abdelfattah et al. (ICLR 2021) shares passes:
``snip``, ``grad_norm`` and ``fisher`` come from one backward pass.
A score that is not a finite number (e.g. ``jacob_cov`` of a cell whose
output does not depend on its input) is returned as ``-inf``: it ranks last.
"""
from __future__ import annotations

import copy
import math
import time
from typing import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ...errors import FyiError

#: the zero-cost measures, in the order they are reported
ZERO_COST = ("synflow", "snip", "grad_norm", "grasp", "fisher", "jacob_cov", "naswot")

#: minibatch size of each measure (NASWOT's paper uses 128; the others 64)
BATCH = {"naswot": 128}
DEFAULT_BATCH = 64


def _layers(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _finite(x: float) -> float:
    x = float(x)
    return x if math.isfinite(x) else float("-inf")


def synflow(net: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None) -> float:
    """Synaptic flow: sum |theta * dR/dtheta| with |theta|, no BatchNorm, float64, an all-ones input."""
    net = copy.deepcopy(net)
    _drop_batchnorm(net)
    net = net.double()
    with torch.no_grad():
        for p in net.state_dict().values():
            p.abs_()
    net.zero_grad(set_to_none=True)
    ones = torch.ones((1, *x.shape[1:]), dtype=torch.float64, device=x.device)
    net(ones).sum().backward()
    return _finite(sum(float((m.weight.detach() * m.weight.grad).abs().sum()) for m in _layers(net)
                       if m.weight.grad is not None))


def _drop_batchnorm(net: nn.Module) -> None:
    for name, child in list(net.named_children()):
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(net, name, nn.Identity())
        else:
            _drop_batchnorm(child)


def loss_gradient_scores(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """``snip``, ``grad_norm`` and ``fisher`` from one cross-entropy forward and backward pass."""
    layers = _layers(net)
    acts: list[torch.Tensor] = []

    def keep(_m, _inp, out):
        out.retain_grad()
        acts.append(out)

    hooks = [m.register_forward_hook(keep) for m in layers]
    try:
        net.zero_grad(set_to_none=True)
        F.cross_entropy(net(x), y).backward()
    finally:
        for h in hooks:
            h.remove()
    snip = grad_norm = fisher = 0.0
    for m in layers:
        g = m.weight.grad
        if g is not None:
            snip += float((m.weight.detach() * g).abs().sum())
            grad_norm += float(g.norm())
    for a in acts:
        if a.grad is None:
            continue
        prod = a.detach() * a.grad
        per = prod.sum(dim=(2, 3)) if prod.dim() == 4 else prod
        fisher += float(0.5 * per.pow(2).mean(0).sum())
    return {"snip": _finite(snip), "grad_norm": _finite(grad_norm), "fisher": _finite(fisher)}


def snip(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Connection sensitivity: sum |theta * dL/dtheta| over conv/linear weights."""
    return loss_gradient_scores(net, x, y)["snip"]


def grad_norm(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Sum over conv/linear layers of ||dL/dW||_2."""
    return loss_gradient_scores(net, x, y)["grad_norm"]


def fisher(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fisher information of the conv/linear output channels, summed."""
    return loss_gradient_scores(net, x, y)["fisher"]


def grasp(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Gradient signal preservation: sum of -theta * (H g) over conv/linear weights."""
    layers = [m for m in _layers(net)]
    weights = [m.weight for m in layers]
    g = torch.autograd.grad(F.cross_entropy(net(x), y), weights, allow_unused=True)
    g = [torch.zeros_like(w) if gi is None else gi.detach() for w, gi in zip(weights, g)]
    g2 = torch.autograd.grad(F.cross_entropy(net(x), y), weights, create_graph=True, allow_unused=True)
    z = sum((gi * g2i).sum() for gi, g2i in zip(g, g2) if g2i is not None)
    if not isinstance(z, torch.Tensor) or not z.requires_grad:
        return 0.0
    hg = torch.autograd.grad(z, weights, allow_unused=True)
    return _finite(sum(float((-w.detach() * h).sum()) for w, h in zip(weights, hg) if h is not None))


def jacob_cov(net: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None) -> float:
    """Score of the correlations of the input Jacobians of the images in the batch (NASWOT v1)."""
    import numpy as np

    x = x.detach().clone().requires_grad_(True)
    out = net(x)
    (jac,) = torch.autograd.grad(out.sum(), x, allow_unused=True)
    if jac is None:
        return float("-inf")
    j = jac.reshape(jac.shape[0], -1).double().cpu().numpy()
    with np.errstate(all="ignore"):
        corr = np.corrcoef(j)
    if not np.isfinite(corr).all():
        return float("-inf")
    v = np.linalg.eigvalsh(corr)
    k = 1e-5
    return _finite(-np.sum(np.log(v + k) + 1.0 / (v + k)))


def naswot(net: nn.Module, x: torch.Tensor, y: torch.Tensor | None = None) -> float:
    """log |det K|, K the Hamming-similarity kernel of the ReLU activation patterns (NASWOT)."""
    n = x.shape[0]
    k = torch.zeros(n, n, dtype=torch.float64, device=x.device)

    def code(_m, _inp, out):
        nonlocal k
        c = (out.detach().reshape(n, -1) > 0).double()
        k = k + c @ c.t() + (1.0 - c) @ (1.0 - c).t()

    hooks = [m.register_forward_hook(code) for m in net.modules() if isinstance(m, nn.ReLU)]
    try:
        with torch.no_grad():
            net(x)
    finally:
        for h in hooks:
            h.remove()
    sign, logdet = torch.linalg.slogdet(k)
    return _finite(logdet) if float(sign) != 0 else float("-inf")


MEASURES: dict[str, Callable[..., float]] = {
    "synflow": synflow, "snip": snip, "grad_norm": grad_norm, "grasp": grasp, "fisher": fisher,
    "jacob_cov": jacob_cov, "naswot": naswot,
}


def check_measures(names: Sequence[str]) -> list[str]:
    """The names, checked against :data:`ZERO_COST` (one line naming the unknown one)."""
    out = []
    for n in names:
        key = str(n).strip().lower().replace("-", "_")
        if key not in MEASURES:
            raise FyiError(f"unknown zero-cost proxy {n!r}; the zero-cost proxies are {', '.join(ZERO_COST)}")
        if key not in out:
            out.append(key)
    return out


def score_network(
    make_net: Callable[[], nn.Module],
    x: torch.Tensor,
    y: torch.Tensor,
    measures: Sequence[str] = ZERO_COST,
) -> tuple[dict[str, float], dict[str, float]]:
    """``(scores, seconds)`` of the zero-cost ``measures`` for one candidate.

    ``make_net()`` returns a freshly initialised network (the same one each
    call: seeded); ``x``/``y`` are the normalised real minibatch (the first 64
    images serve the 64-image measures, all of them NASWOT).  ``snip``,
    ``grad_norm`` and ``fisher`` share one pass; ``seconds`` gives each measure
    its share of that pass.
    """
    measures = check_measures(measures)
    scores, seconds = {}, {}
    shared = [m for m in measures if m in ("snip", "grad_norm", "fisher")]
    if shared:
        n = min(DEFAULT_BATCH, x.shape[0])
        t0 = time.perf_counter()
        vals = loss_gradient_scores(make_net().train(), x[:n], y[:n])
        dt = (time.perf_counter() - t0) / len(shared)
        for m in shared:
            scores[m], seconds[m] = vals[m], dt
    for m in measures:
        if m in scores:
            continue
        n = min(BATCH.get(m, DEFAULT_BATCH), x.shape[0])
        t0 = time.perf_counter()
        scores[m] = MEASURES[m](make_net().train(), x[:n], y[:n])
        seconds[m] = time.perf_counter() - t0
    return scores, seconds
