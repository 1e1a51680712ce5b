"""DM: Dataset Condensation with Distribution Matching (Zhao & Bilen, WACV 2023).

Each iteration draws a randomly initialised network, embeds a real batch of
every class and the synthetic images (with FYI: ``cat([S, flip(S)])``), applies
one siamese DSA transform to both, and minimises the sum over classes of the
squared distance between mean embeddings.  Defaults: 20,000 iterations,
lr_img 1.0 (SGD, momentum 0.5), 256 real images per class, DSA on.

Speed: when the network has no cross-sample layer (no BatchNorm; the default
ConvNet uses instance norm) every class goes through the network in one
batched forward, which gives exactly the per-class loop's loss.  With
BatchNorm the reference also forwards all classes together, so the same path
is used.  The real branch needs no graph (``no_grad``) and is embedded in
chunks of ``real_chunk`` images (option; default 16 on CPU, 1024 on GPUs).  On
a CPU, small channels-last chunks keep each layer's activations in cache: the
normalisation, ReLU and pooling that follow every convolution are memory-bound,
and on this project's 2-core test machine this alone makes the real branch
about 3x faster than NCHW batches of 256 with the same features (see
``benchmarks/speed.py``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import FyiError
from ..networks import has_batchnorm
from ..runtime import cache_slice
from .base import Method, MethodOptions, option, register_method
from .matching import feature_mean_distance


def real_chunk(value, device: torch.device) -> int:
    """Images per no-grad forward of the real branch: ``"auto"`` is 16 on a CPU (cache_slice) and 1024 elsewhere."""
    if value in (None, "auto"):
        return cache_slice(device) or 1024
    try:
        chunk = int(value)
    except (TypeError, ValueError):
        chunk = 0
    if chunk < 1:
        raise FyiError(f"DM option real_chunk must be a positive integer or 'auto', got {value!r}")
    return chunk


def _cache_friendly(x: torch.Tensor, cpu: bool) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if cpu else x


@dataclass(frozen=True)
class DMOptions(MethodOptions):
    real_chunk: int | str = option("auto", doc="images per no-grad forward of the real branch, or auto")


@register_method
class DM(Method):
    name = "dm"
    defaults = {"iterations": 20000, "lr_img": 1.0, "batch_real": 256, "dsa": True}
    Options = DMOptions
    class_parallel = True

    def setup(self, images: torch.nn.Parameter, labels: torch.Tensor) -> None:
        real_chunk(self.opts.real_chunk, self.ctx.device)  # a bad value fails before the first iteration
        super().setup(images, labels)

    def loss(self, net: torch.nn.Module, real: torch.Tensor, real_labels: torch.Tensor,
             syn: torch.Tensor, syn_labels: torch.Tensor) -> torch.Tensor:
        """Sum over classes of ``||mean embed(real_c) - mean embed(syn_c)||^2`` (inputs already augmented)."""
        f_real, f_syn = self.embed(net, real, syn)
        return feature_mean_distance(f_real, real_labels, f_syn, syn_labels, self.ctx.num_classes)

    def embed(self, net: torch.nn.Module, real: torch.Tensor, syn: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The embeddings (float32) of the real images (no graph) and of the synthetic ones (graph to the images)."""
        ctx = self.ctx
        chunk = real_chunk(self.opts.real_chunk, real.device)
        if has_batchnorm(net):  # batch statistics depend on the batch: keep the reference's single forward
            chunk = real.shape[0]
        cpu = real.device.type == "cpu"
        with ctx.real_autocast(), torch.no_grad():  # no graph: chunks bound the activation memory
            f_real = torch.cat([net.embed(_cache_friendly(ctx.prep(real[s : s + chunk]), cpu))
                                for s in range(0, real.shape[0], chunk)])
        with ctx.autocast():
            f_syn = net.embed(ctx.prep(syn))
        return f_real.float(), f_syn.float()

    def shard_loss(self, net: torch.nn.Module) -> torch.Tensor:
        """This process's share of the loss in a class-parallel run (:mod:`.parallel`): the terms of its classes.

        Every class's real indices are drawn (the one-process random stream);
        only this process's images are embedded, and their features go back to
        the one-process layout (zero rows elsewhere) so that the class means
        add the same numbers in the same order as in one process.
        """
        ctx, shard = self.ctx, self.ctx.shard
        if has_batchnorm(net):
            raise FyiError(f"DM with a BatchNorm network ({ctx.cfg.arch}) takes batch statistics over every class "
                           "at once, so it cannot split the classes over processes; use a network without BatchNorm "
                           "(the default convnet) or one process")
        real, real_labels, real_mine = shard.real_all(ctx, ctx.cfg.batch_real)
        syn, syn_labels = ctx.fyi(self.decode(self.images), self.decoded_labels(self.labels))
        syn_mine = shard.mask(syn_labels)
        real, syn = ctx.siamese(real, syn[syn_mine])
        f_real, f_syn = self.embed(net, real, syn)
        return feature_mean_distance(shard.spread(f_real, real_mine), real_labels, shard.spread(f_syn, syn_mine),
                                     syn_labels, ctx.num_classes)

    def step(self, it: int) -> dict:
        ctx = self.ctx
        net = ctx.new_net(frozen=True)
        if ctx.shard.parallel:
            loss = self.shard_loss(net)
        else:
            real, real_labels = ctx.real_all(ctx.cfg.batch_real)
            syn, syn_labels = ctx.fyi(self.decode(self.images), self.decoded_labels(self.labels))
            real, syn = ctx.siamese(real, syn)
            loss = self.loss(net, real, real_labels, syn, syn_labels)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {"loss": float(loss.detach())}
