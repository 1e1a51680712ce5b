"""Training primitives shared by evaluation, expert training, distillation and the tasks.

* pixels: :func:`normalize_uint8` (uint8 -> ``(x / 255 - mean) / std``) and
  :func:`as_float` (the same for uint8, floats taken as already normalised);
* losses and updates: :func:`ce_shares` / :func:`cutmix_step` (a batch's loss
  as per-slice shares), :func:`backward_in_slices` (one batch's gradient in
  cache-sized slices), :func:`micro_batch_size`;
* :func:`test_accuracy` (top-1 accuracy on a test set);
* :func:`flat_params` (a network's parameters as one vector, in parameter order).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .data.base import normalize_uint8  # the one uint8 -> normalised float rule (datasets use it too)
from .errors import FyiError
from .networks import batch_slice
from .runtime import cache_slice, flush_denormals


def as_float(x: torch.Tensor, mean, std) -> torch.Tensor:
    """uint8 images are normalised on the fly; float images are taken as already normalised."""
    if x.dtype == torch.uint8:
        return normalize_uint8(x, mean, std)
    return x.float()


def _cutmix(x: torch.Tensor, y: torch.Tensor, g: torch.Generator):
    """CutMix (Yun et al. 2019) with beta(1,1): returns mixed images, both targets and the mix ratio."""
    n, _, h, w = x.shape
    lam = float(torch.rand((), generator=g))
    perm = torch.randperm(n, generator=g).to(x.device)
    cut = math.sqrt(1.0 - lam)
    ch, cw = int(h * cut), int(w * cut)
    cy, cx = int(torch.randint(h, (), generator=g)), int(torch.randint(w, (), generator=g))
    y0, y1 = max(cy - ch // 2, 0), min(cy + ch // 2, h)
    x0, x1 = max(cx - cw // 2, 0), min(cx + cw // 2, w)
    x = x.clone()
    x[:, :, y0:y1, x0:x1] = x[perm, :, y0:y1, x0:x1]
    lam = 1.0 - (y1 - y0) * (x1 - x0) / float(h * w)
    return x, y, y[perm], lam


def cutmix_step(x: torch.Tensor, y: torch.Tensor, prob: float, g: torch.Generator):
    """With probability ``prob`` apply CutMix; returns the batch and a loss function.

    ``loss_fn(logits)`` is the batch's mean cross-entropy; ``loss_fn(logits, sl)``
    takes the logits of the slice ``sl`` of the batch and returns its share of
    that mean, so the shares of all slices add up to the whole batch's loss.
    """
    n = x.shape[0]
    if prob > 0 and float(torch.rand((), generator=g)) < prob:
        x, y_a, y_b, lam = _cutmix(x, y, g)

        def mixed(out, sl=slice(None)):
            return (lam * F.cross_entropy(out, y_a[sl], reduction="sum")
                    + (1 - lam) * F.cross_entropy(out, y_b[sl], reduction="sum")) / n

        return x, mixed
    return x, ce_shares(y)


def ce_shares(y: torch.Tensor):
    """``fn(logits, sl)``: slice ``sl``'s share of the batch's mean cross-entropy (``sl`` default: all)."""
    n = y.shape[0]
    return lambda out, sl=slice(None): F.cross_entropy(out, y[sl], reduction="sum") / n


def micro_batch_size(cfg, net: torch.nn.Module, device: torch.device) -> int | None:
    """Slice size for training ``net`` with ``cfg`` (an :class:`~fyi_apps.evaluate.EvalConfig`; None: whole batches)."""
    if cfg.micro_batch is not None and cfg.micro_batch < 0:
        raise FyiError(f"micro_batch must be >= 0 (0 turns it off), got {cfg.micro_batch}")
    return batch_slice(net, device, cfg.micro_batch)


def backward_in_slices(net: torch.nn.Module, x: torch.Tensor, loss_fn, size: int | None, *, bf16: bool = False) -> float:
    """Accumulate the gradient of ``loss_fn`` over ``x`` into ``.grad``, ``size`` images at a time.

    ``loss_fn(logits, sl)`` returns slice ``sl``'s share of the batch loss (see
    :func:`cutmix_step`); ``size`` None means the whole batch at once.  Returns
    the batch loss.
    """
    step = size or x.shape[0]
    total = 0.0
    for s in range(0, x.shape[0], step):
        sl = slice(s, s + step)
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
            out = net(x[sl])
        part = loss_fn(out.float(), sl)
        part.backward()
        total += float(part.detach())
    return total


@torch.no_grad()
@flush_denormals()
def test_accuracy(
    net: torch.nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    device: torch.device,
    mean=None,
    std=None,
    batch_size: int = 1000,
    bf16: bool = False,
    channels_last: bool = False,
    transform=None,
    prepare=None,
    cache_slices: bool = True,
) -> float:
    """Top-1 accuracy of ``net`` on a (uint8 or normalised float) test set.

    ``transform`` (optional) maps each normalised test batch to the network's input
    space, e.g. the ZCA whitening of a set distilled from ZCA experts.  On a CPU
    each batch goes through the network in channels-last slices of 16 images,
    which keeps activations in cache (same predictions, about 3x faster);
    ``cache_slices=False`` feeds each batch whole, in its own memory format.
    ``prepare`` (optional) replaces the normalisation with ``mean``/``std``: it
    maps each batch of ``images`` (on ``device``) to network inputs.
    """
    net.eval()
    cpu = cache_slices and device.type == "cpu"
    correct = 0
    for start in range(0, images.shape[0], batch_size):
        batch = images[start : start + batch_size].to(device)
        x = as_float(batch, mean, std) if prepare is None else prepare(batch)
        if transform is not None:
            x = transform(x)
        if channels_last or cpu:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            if cache_slices:
                pred = torch.cat([net(part).argmax(dim=1) for part in x.split(cache_slice(device) or x.shape[0])])
            else:
                pred = net(x).argmax(dim=1)
        correct += int((pred == labels[start : start + batch_size].to(device)).sum())
    net.train()
    return correct / max(images.shape[0], 1)


def flat_params(net: torch.nn.Module, *, keep: bool = False) -> torch.Tensor:
    """All parameters of ``net`` as one detached vector, in parameter order.

    float32 on the CPU (expert trajectories), or with ``keep=True`` in the
    parameters' own dtype and device.
    """
    if keep:
        return torch.cat([p.detach().reshape(-1) for p in net.parameters()])
    return torch.cat([p.detach().reshape(-1).float().cpu() for p in net.parameters()])
