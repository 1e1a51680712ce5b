"""IDC: Dataset Condensation via Efficient Synthetic-Data Parameterization (Kim et al., ICML 2022).

Two ideas on top of gradient matching:

* **Multi-formation.**  Each stored image holds ``factor x factor`` images at
  ``1/factor`` resolution; networks see them bilinearly upsampled to full size
  (:func:`fyi_apps.synset.multiformation.multiformation_decode`).  With the default factor 2,
  IPC 10 stores 10 images per class but trains on 40.  The storage is
  initialised from ``factor**2 * ipc`` real images per class, downsampled and
  tiled (:func:`fyi_apps.synset.multiformation.multiformation_encode`).  ``factor=1`` is IDC-I.
* **Matching on networks trained on real data.**  Every outer iteration starts
  from a fresh network (every ``fix_iter`` iterations; 1 in the reference) and
  runs ``inner_loop`` rounds of: for each class, one image step on the
  gradient-matching distance between a real batch of the class and the class's
  decoded synthetic images (at most ``batch_syn_max`` of them), both passed
  through one shared augmentation ``color_crop_cutout`` (all three ops); then
  the network is trained on ``n_data`` *real* images (SGD lr 0.01, momentum
  0.9, wd 5e-4, batch 64, per-image ``color_crop`` augmentation, CutMix with
  probability ``mix_p``).  Only convolution weight gradients are matched
  (``--bias False --fc False``); the distance is ``mse`` or ``l1``.
  Each class takes its own optimiser step (SGD, momentum 0.5) on the whole
  image tensor, and images are clamped to the valid pixel range at the start of
  every outer iteration.

Like the reference, which optimises images in [0, 1] pixel space, the image
learning rate is a pixel-space rate: images here are stored normalised, so the
gradient is divided by ``std**2`` per channel before the SGD step (exactly the
pixel-space trajectory; option ``pixel_lr``).  The reference scales its
``--lr_img`` by ``ipc / 10 * (size / base)**2`` (``tune_lr_img``; base 28 for
MNIST, 224 for ImageNet, 32 otherwise); ``DistillConfig.lr_img`` is the
unscaled value and the scaling is applied here (option ``tune_lr_img``).

FYI: the decoded synthetic images of a class are expanded to
``cat([S_c, flip(S_c)])`` (after the ``batch_syn_max`` subsampling, before the
augmentation).  Real images are never flipped; the network update uses real
data only, so FYI does not enter it.

Evaluation uses CutMix (``eval_cutmix`` in the set's config, picked up by
:func:`fyi_apps.evaluate.evaluate_synset`).

Not ported: ImageNet extras (``--early`` is available as option ``early`` but
pretrained networks ``--pt_from`` are not), ``decode_type`` multi/bound,
feature matching (``--match feat``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import FyiError
from .base import Method, MethodOptions, option, register_method
from .dc import GRADIENT_METRICS
from ..synset.multiformation import multiformation_decode, multiformation_encode
from .matching import gradient_distance, real_gradient
from .presets import dataset_family


@dataclass(frozen=True)
class IDCOptions(MethodOptions):
    """IDC's options.

    Sources: snu-mllab/Efficient-Dataset-Condensation, argument.py (argparse
    defaults and the per-dataset block), misc/reproduce.py (set_arguments, used
    by `condense.py --reproduce`), condense.py, train.py.  Per-dataset values
    (metric, lr_img, n_data, mix_p, ...) are in presets.IDC_DATASETS.
    """

    factor: int = option(2, min=1, doc="-f: 2 for 32 px datasets (README), 1 = IDC-I")
    inner_loop: int = option(100, min=1, doc="--inner_loop")
    fix_iter: int = option(1, min=1, doc="--fix_iter -1 -> max(1, .): a new network every outer iteration")
    early: int = option(0, min=0, doc="--early: epochs of real-data pretraining of each new network")
    n_data: int = option(500, min=0, doc="--n_data: real images the network trains on per inner round (CIFAR 2000)")
    net_epoch: int = option(1, min=0, doc="--net_epoch")
    batch_net: int = option(64, min=1, doc="the real loader's batch (--batch_real) used by train_epoch")
    lr_net: float = option(0.01, min=0.0, doc="--lr")
    momentum_net: float = option(0.9, min=0.0, max=1.0, max_open=True, doc="--momentum")
    weight_decay_net: float = option(5e-4, min=0.0, doc="--weight-decay")
    metric: str = option("mse", choices=GRADIENT_METRICS,
                         doc="--metric (argparse default l1; reproduce: mse CIFAR/SVHN, l1 MNIST/Fashion)")
    match_bias: bool = option(False, doc="--bias")
    match_fc: bool = option(False, doc="--fc")
    batch_syn_max: int = option(128, doc="--batch_syn_max: decoded synthetic images per class per step (<= 0: all)")
    mom_img: float = option(0.5, min=0.0, max=1.0, max_open=True, doc="--mom_img")
    aug_type: str = option("color_crop_cutout", doc="--aug_type (DiffAug batch=True: one shared draw, all ops)")
    aug_net: str = option("color_crop", doc="aug_type without cutout when --mixup_net cut (condense.py diffaug)")
    cutmix_net: bool = option(True, doc="--mixup_net cut")
    mix_p: float = option(0.5, min=0.0, max=1.0, doc="--mix_p (argument.py: 0.5 for CIFAR/SVHN/MNIST/Fashion)")
    eval_cutmix: float = option(0.5, min=0.0, max=1.0, doc="--mixup cut with --mix_p at evaluation")
    tune_lr_img: bool = option(True, doc="argument.py tune_lr_img")
    clamp: bool = option(True, doc="condense.py clamps the images to [0, 1] every outer iteration")
    pixel_lr: bool = option(True, doc="lr_img acts on [0, 1] pixels as in the reference")


@register_method
class IDC(Method):
    name = "idc"
    defaults = {
        # n_iter = niter * 100 // inner_loop outer iterations (condense.py), niter = 2000 (reproduce.py)
        "iterations": 2000,
        "lr_img": 5e-3,            # --lr_img (before tune_lr_img); 5e-3 for CIFAR/SVHN with mse
        "batch_real": 64,          # --batch_real: real images per class per matching step
        "dsa": True,               # matching augmentation on (--aug_type color_crop_cutout)
    }
    Options = IDCOptions
    class_parallel = True

    def __init__(self, ctx):
        super().__init__(ctx)
        o = self.opts
        self.factor = o.factor
        size = ctx.info.image_size
        if size % self.factor:
            raise FyiError(f"IDC factor {self.factor} does not divide the image size {size}; "
                           f"use --option factor=2 (or another divisor of {size})")
        self.encoding = {"type": "multiformation", "factor": self.factor}
        self.inner_loop, self.fix_iter, self.n_data = o.inner_loop, o.fix_iter, o.n_data
        self.net_epoch, self.batch_net, self.early = o.net_epoch, o.batch_net, o.early
        self.batch_syn_max = o.batch_syn_max  # <= 0: no limit
        self.metric = o.metric
        from ..augment import DSA

        # Matching: one draw shared by the real and synthetic batch, every op (DiffAug batch=True).
        self.match_aug = DSA(o.aug_type, mode="all") if ctx.cfg.dsa else None
        # Network update on real data: per-image draws, every op (DiffAug batch=False).
        self.net_aug = DSA(o.aug_net, mode="all")
        mean = torch.tensor(ctx.info.mean, device=ctx.device).view(1, -1, 1, 1)
        std = torch.tensor(ctx.info.std, device=ctx.device).view(1, -1, 1, 1)
        self._lo, self._hi = -mean / std, (1.0 - mean) / std  # [0, 1] pixels, normalised
        self._grad_scale = 1.0 / std**2
        self.net = self.opt_net = None

    # ------------------------------------------------------------ storage
    def init_storage(self, real: torch.Tensor) -> torch.Tensor:
        """``factor**2 * ipc`` real images per class, downsampled and tiled into ``ipc`` images.

        The ``ipc`` images per class drawn by the shared loop (``real``) are not
        enough for ``factor > 1``, so the full set is drawn here.
        """
        f, ipc, ctx = self.factor, self.ctx.cfg.ipc, self.ctx
        if f == 1:
            return real
        need = ipc * f * f
        short = [c for c in range(ctx.num_classes) if ctx.counts[c] < need]
        if short:
            raise FyiError(f"IDC with factor {f} initialises from {need} real images per class but class "
                           f"{short[0]} has {ctx.counts[short[0]]}; lower --ipc or --option factor, or use --init noise")
        many, _ = ctx.real_all(need)
        return multiformation_encode(many, f)

    def decode(self, stored: torch.Tensor) -> torch.Tensor:
        return multiformation_decode(stored, self.factor)

    def decoded_labels(self, labels: torch.Tensor) -> torch.Tensor:
        return labels.repeat_interleave(self.factor * self.factor)

    # ------------------------------------------------------------ optimiser
    @property
    def lr_img(self) -> float:
        """``--lr_img`` scaled as the reference's ``tune_lr_img``: ``* ipc / 10 * (size / base)**2``."""
        cfg = self.ctx.cfg
        lr = float(cfg.lr_img)
        if self.opts.tune_lr_img:
            fam = dataset_family(cfg.dataset)
            base = 28 if fam == "mnist" else 224 if fam.startswith("image") and fam != "imagefolder" else 32
            lr *= cfg.ipc / 10 * (self.ctx.info.image_size / base) ** 2
        return lr

    def setup(self, images: torch.nn.Parameter, labels: torch.Tensor) -> None:
        self.images, self.labels = images, labels
        self.opt = torch.optim.SGD([images], lr=self.lr_img, momentum=self.opts.mom_img)
        self._class_rows = [torch.nonzero(labels == c).flatten() for c in range(self.ctx.num_classes)]

    # ------------------------------------------------------------ networks
    def _build_net(self, seed: int) -> torch.nn.Module:
        from ..networks import create_model

        ctx = self.ctx
        net = create_model(ctx.cfg.arch, channels=ctx.info.channels, num_classes=ctx.num_classes,
                           image_size=ctx.info.image_size, seed=seed).to(ctx.device)
        if ctx.cfg.channels_last:
            net = net.to(memory_format=torch.channels_last)
        return net.train()

    def net_optimiser(self, net: torch.nn.Module) -> torch.optim.Optimizer:
        o = self.opts
        return torch.optim.SGD(net.parameters(), lr=o.lr_net, momentum=o.momentum_net, weight_decay=o.weight_decay_net)

    def _matched_params(self, net: torch.nn.Module) -> list[torch.nn.Parameter]:
        bias, fc = self.opts.match_bias, self.opts.match_fc
        params = [p for p in net.parameters() if (p.dim() != 1 or bias) and (p.dim() != 2 or fc)]
        if not params:
            raise FyiError(f"IDC matches no parameter of {self.ctx.cfg.arch} (only convolution weights by default); "
                           "use a convolutional --arch or --option match_fc=true")
        return params

    def train_net_on_real(self, n_images: int) -> float:
        """Train ``self.net`` on about ``n_images`` random real images (reference ``train_epoch``)."""
        from ..training import cutmix_step

        ctx = self.ctx
        net, opt = self.net, self.opt_net
        cutmix, mix_p = self.opts.cutmix_net, self.opts.mix_p
        seen, loss = 0, torch.zeros(())
        while seen < n_images:
            x, y = ctx.real_batch(self.batch_net)
            with torch.no_grad():
                x = self.net_aug(x, generator=ctx.generator, siamese=False)
            x, loss_fn = cutmix_step(x, y, mix_p if cutmix else 0.0, ctx.generator)
            with ctx.autocast():
                loss = loss_fn(net(ctx.prep(x)).float())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            seen += y.shape[0]
        return float(loss.detach())

    # ------------------------------------------------------------ matching
    def class_loss(self, c: int, params: list[torch.nn.Parameter]) -> torch.Tensor:
        """Gradient-matching distance for class ``c`` (graph kept back to ``self.images``)."""
        ctx = self.ctx
        syn = self.decode(self.images[self._class_rows[c]])
        if 0 < self.batch_syn_max < syn.shape[0]:
            keep = torch.randperm(syn.shape[0], generator=ctx.generator)[: self.batch_syn_max].to(ctx.device)
            syn = syn[keep]
        syn = ctx.fyi(syn)
        real = ctx.real_class(c, ctx.cfg.batch_real)
        if self.match_aug is not None:
            aug = self.match_aug.sample(1, ctx.info.image_size, ctx.device, ctx.generator, siamese=True)
            real, syn = self.match_aug.apply(real, aug), self.match_aug.apply(syn, aug)
        y_real = torch.full((real.shape[0],), c, device=ctx.device, dtype=torch.long)
        y_syn = torch.full((syn.shape[0],), c, device=ctx.device, dtype=torch.long)
        g_real = real_gradient(self.net, real, y_real, params, lambda x: ctx.forward_real(self.net, x))
        with ctx.autocast():
            loss_syn = F.cross_entropy(self.net(ctx.prep(syn)).float(), y_syn)
        g_syn = torch.autograd.grad(loss_syn, params, create_graph=True)
        return gradient_distance([g.float() for g in g_real], [g.float() for g in g_syn], self.metric)

    def skip_class(self, c: int) -> None:
        """The random draws :meth:`class_loss` makes for class ``c``, without the work (:mod:`.parallel`)."""
        ctx = self.ctx
        decoded = len(self._class_rows[c]) * self.factor * self.factor
        if 0 < self.batch_syn_max < decoded:
            torch.randperm(decoded, generator=ctx.generator)
        ctx.real_indices(c, ctx.cfg.batch_real)
        if self.match_aug is not None:
            self.match_aug.sample(1, ctx.info.image_size, ctx.device, ctx.generator, siamese=True)

    def _clamp(self) -> None:
        with torch.no_grad():
            self.images.copy_(torch.maximum(torch.minimum(self.images, self._hi), self._lo))

    def step(self, it: int) -> dict:
        ctx = self.ctx
        if self.net is None or it % self.fix_iter == 0:
            self.net = ctx.new_net()
            self.opt_net = self.net_optimiser(self.net)
            if self.early:
                self.train_net_on_real(self.early * int(ctx.train_labels.shape[0]))
        if self.opts.clamp:
            self._clamp()
        params = self._matched_params(self.net)
        pixel_lr = self.opts.pixel_lr
        total, net_loss = 0.0, float("nan")
        for _ in range(self.inner_loop):
            for c in range(ctx.num_classes):
                if ctx.shard.owns(c):
                    loss = self.class_loss(c, params)
                    self.opt.zero_grad(set_to_none=True)
                    loss.backward()
                    if pixel_lr:
                        self.images.grad.mul_(self._grad_scale)
                    total += float(loss.detach())
                else:  # class-parallel: another process's class; our rows take the momentum step every row takes
                    self.skip_class(c)
                    self.images.grad = torch.zeros_like(self.images)
                self.opt.step()
            if self.n_data > 0:
                for _ in range(self.net_epoch):
                    net_loss = self.train_net_on_real(self.n_data)
        return {"loss": total / (ctx.num_classes * self.inner_loop), "net_loss": net_loss}

    # ------------------------------------------------------------ state
    def state_dict(self) -> dict:
        state = {"opt": self.opt.state_dict()}
        if self.net is not None:
            state["net"] = {k: v.detach().clone() for k, v in self.net.state_dict().items()}
            state["opt_net"] = self.opt_net.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.opt.load_state_dict(state["opt"])
        if "net" in state:
            self.net = self._build_net(0)  # weights are overwritten; no draw from the run's generator
            self.net.load_state_dict(state["net"])
            self.opt_net = self.net_optimiser(self.net)
            self.opt_net.load_state_dict(state["opt_net"])
        else:
            self.net = self.opt_net = None

    def synset_config(self) -> dict:
        return {"eval_cutmix": self.opts.eval_cutmix, "lr_img_effective": self.lr_img}

