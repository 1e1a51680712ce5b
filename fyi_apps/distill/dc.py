"""DC: Dataset Condensation with Gradient Matching (Zhao, Mopuri & Bilen, ICLR 2021).

Each iteration draws a random network and alternates ``outer_loop`` times:
(1) for every class, match the gradient of the loss on a real batch with the
gradient on that class's synthetic images (layer-wise distance, the paper's
"ours" metric) and take one image step; (2) train the network for
``inner_loop`` epochs on the current synthetic set (SGD, lr_net 0.01, batch
256).  With FYI the synthetic side of (1) is ``cat([S_c, flip(S_c)])`` and, as
in the official FYI code, (2) trains on ``cat([S, flip(S)])`` too
(``fyi_inner``, on by default).  Networks with BatchNorm get their statistics
from 16 real images per class and are frozen during matching, as in the
reference.

Defaults: 1,000 iterations, lr_img 0.1 (SGD momentum 0.5), batch_real 256,
(outer, inner) loops by IPC 1:(1,1) 10:(10,50) 20:(20,25) 30:(30,20) 40:(40,15)
50:(50,10).  :mod:`.dsa` is the same with siamese augmentation.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..networks import batch_slice, has_batchnorm
from ..training import backward_in_slices, ce_shares
from .base import Method, MethodOptions, option, register_method
from .matching import gradient_distance, real_gradient

#: the distances :func:`.matching.gradient_distance` knows
GRADIENT_METRICS = ("ours", "mse", "l1", "cos")


def freeze_batchnorm_stats(ctx, net: torch.nn.Module, per_class: int = 16) -> None:
    """Set BatchNorm statistics from a real batch, then keep them fixed (reference behaviour)."""
    if not has_batchnorm(net):
        return
    net.train()
    with torch.no_grad():
        real, _ = ctx.real_all(per_class)
        net(ctx.prep(real))
    for m in net.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()


def skip_class(ctx, c: int, n: int) -> None:
    """Another process's class in a class-parallel run: only the random draws its matching makes (:mod:`.parallel`)."""
    ctx.real_indices(c, n)
    if ctx.aug is not None:
        ctx.aug.sample(1, ctx.info.image_size, ctx.device, ctx.generator, siamese=True)


@dataclass(frozen=True)
class DCOptions(MethodOptions):
    """DC's and DSA's options; ``outer_loop``/``inner_loop`` are preset by IPC (``presets.dc_loops``)."""

    outer_loop: int = option(1, min=1, doc="image updates per iteration, each on a freshly trained network")
    inner_loop: int = option(1, min=1, doc="network epochs on the synthetic set between image updates")
    lr_net: float = option(0.01, min=0.0, min_open=True, doc="SGD learning rate of the inner network")
    batch_train: int = option(256, min=1, doc="minibatch of the inner network training")
    metric: str = option("ours", choices=GRADIENT_METRICS, doc="gradient-matching distance")
    fyi_inner: bool = option(True, doc="with FYI, also train the inner network on cat([S, flip(S)])")


@register_method
class DC(Method):
    name = "dc"
    defaults = {"iterations": 1000, "lr_img": 0.1, "batch_real": 256, "dsa": False}
    Options = DCOptions
    class_parallel = True

    def match_loss(self, net: torch.nn.Module) -> torch.Tensor:
        """Sum over classes of the gradient-matching distance (graph kept for the image step)."""
        ctx, cfg = self.ctx, self.ctx.cfg
        params = [p for p in net.parameters() if p.requires_grad]
        syn_all, syn_labels_all = self.decode(self.images), self.decoded_labels(self.labels)
        total = syn_all.new_zeros(())
        for c in range(ctx.num_classes):
            if not ctx.shard.owns(c):
                skip_class(ctx, c, cfg.batch_real)
                continue
            real = ctx.real_class(c, cfg.batch_real)
            y_real = torch.full((real.shape[0],), c, device=ctx.device, dtype=torch.long)
            mask = syn_labels_all == c
            syn, y_syn = ctx.fyi(syn_all[mask], syn_labels_all[mask])
            real, syn = ctx.siamese(real, syn)
            g_real = real_gradient(net, real, y_real, params, lambda x: ctx.forward_real(net, x))
            with ctx.autocast():
                loss_syn = F.cross_entropy(net(ctx.prep(syn)).float(), y_syn)
            g_syn = torch.autograd.grad(loss_syn, params, create_graph=True)
            total = total + gradient_distance(g_real, g_syn, self.opts.metric)
        return total

    def train_net(self, net: torch.nn.Module, opt_net: torch.optim.Optimizer) -> None:
        """``inner_loop`` epochs of the network on the current synthetic set (FYI-expanded if on)."""
        ctx, o = self.ctx, self.opts
        ctx.shard.share_rows(self.images)  # class-parallel: the network trains on every rank's classes
        x = self.decode(self.images).detach()
        y = self.decoded_labels(self.labels)
        if o.fyi_inner:
            x, y = ctx.fyi(x, y)
        n, bs = x.shape[0], o.batch_train
        slices = batch_slice(net, ctx.device)  # same update, cache-sized pieces on a CPU
        for _ in range(o.inner_loop):
            order = torch.randperm(n, generator=ctx.generator).to(ctx.device)
            for s in range(0, n, bs):
                idx = order[s : s + bs]
                xb, yb = ctx.prep(ctx.augment(x[idx])), y[idx]
                opt_net.zero_grad(set_to_none=True)
                backward_in_slices(net, xb, ce_shares(yb), slices, bf16=ctx.cfg.bf16)
                opt_net.step()

    def step(self, it: int) -> dict:
        net = self.ctx.new_net()
        opt_net = torch.optim.SGD(net.parameters(), lr=self.opts.lr_net)
        outer = self.opts.outer_loop
        total = 0.0
        for ol in range(outer):
            freeze_batchnorm_stats(self.ctx, net)
            loss = self.match_loss(net)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            total += float(loss.detach())
            if ol == outer - 1:
                break
            net.train()
            self.train_net(net, opt_net)
        return {"loss": total / outer}
