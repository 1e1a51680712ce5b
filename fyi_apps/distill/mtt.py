"""MTT: Dataset Distillation by Matching Training Trajectories (Cazenavette et al., CVPR 2022).

Each iteration picks a random expert trajectory (:mod:`.experts`) and a random
start epoch ``s`` in ``{0, ..., max_start_epoch - 1}``, starts a student at the
expert's parameters ``w_s`` and takes ``syn_steps`` plain SGD steps on
minibatches of the synthetic images with a *learnable* learning rate
``syn_lr``.  The loss is the normalised parameter distance to the expert
``expert_epochs`` later::

    L = ||w_student - w_{s+E}||^2 / ||w_s - w_{s+E}||^2

and its gradient (through the whole unroll) updates the images (SGD, momentum
0.5, ``lr_img``) and ``syn_lr`` (SGD, momentum 0.5, ``lr_lr``; initialised
at ``lr_teacher``).  Minibatches: a random permutation of the synthetic set
cut into chunks of ``batch_syn`` (default: the whole set), a new permutation
when the chunks run out; each minibatch gets its own per-image DSA transform.

The student is a functional copy of the architecture
(:func:`torch.func.functional_call` on views of one flat parameter vector), so
no hand-written re-parametrisation is involved.  Memory grows with
``syn_steps`` (every step's activations and gradient graph are kept for the
backward pass); ``checkpoint_unroll=true`` recomputes each step during the
backward pass instead (:func:`torch.utils.checkpoint.checkpoint`), trading
about one extra forward/backward per step for memory that no longer grows with
the activations of all steps.

FYI (:mod:`.fyi`): each step draws ``batch_syn // 2`` images and trains on
``cat([S_b, flip(S_b)])``, so the student still sees ``batch_syn`` images per
step at the same cost; the flip comes before DSA and the gradient reaches the
stored (unflipped) images.

The learned learning rate is stored in the synthetic-set file (``lr``) and the
evaluation protocol trains with it.  With ZCA experts the synthetic images
live in whitened space; the set records the transform (``config["zca"]``) and
:func:`fyi_apps.evaluate.evaluate_synset` whitens the test images to match.

Defaults (reference ``distill.py``): 5,000 iterations, lr_img 1000, lr_lr 1e-5,
lr_teacher 0.01, syn_steps 20, expert_epochs 3, max_start_epoch 25, DSA on;
per-dataset/IPC values from FTD's hyper-parameter table (``presets.TRAJECTORY_TABLE``).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F

from ..errors import FyiError
from ..training import flat_params
from .base import Method, MethodOptions, option, register_method
from .fyi import FYIView, maybe_expand

# --------------------------------------------------------------------------- the unroll
class FlatParams:
    """Names and shapes of a network's parameters, to go between one flat vector and a dict."""

    def __init__(self, net: torch.nn.Module):
        self.names = [n for n, _ in net.named_parameters()]
        self.shapes = [tuple(p.shape) for _, p in net.named_parameters()]
        self.sizes = [math.prod(s) for s in self.shapes]
        self.total = sum(self.sizes)

    def unflatten(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        return {n: t.view(s) for n, t, s in zip(self.names, torch.split(flat, self.sizes), self.shapes)}

    def flatten(self, net: torch.nn.Module) -> torch.Tensor:
        return flat_params(net, keep=True)


def param_matching_loss(w_end: torch.Tensor, w_start: torch.Tensor, w_target: torch.Tensor) -> torch.Tensor:
    """``||w_end - w_target||^2 / ||w_start - w_target||^2`` (MTT's normalised parameter distance)."""
    num = (w_end - w_target).pow(2).sum()
    den = (w_start - w_target).pow(2).sum()
    return num / den.clamp_min(torch.finfo(den.dtype).tiny)


def unroll(
    net: torch.nn.Module,
    spec: FlatParams,
    w_start: torch.Tensor,
    images: torch.Tensor,
    labels: torch.Tensor,
    lr: torch.Tensor,
    plan: Sequence[tuple[torch.Tensor, object]],
    *,
    view: FYIView | None = None,
    aug=None,
    checkpoint: bool = False,
    autocast=None,
    prep=None,
) -> torch.Tensor:
    """``len(plan)`` SGD steps of the student from ``w_start`` on minibatches of ``images``.

    ``plan`` holds one ``(indices, dsa_params)`` per step (``dsa_params`` None for no
    DSA); drawing it beforehand keeps the unroll deterministic, which gradient
    checkpointing needs (the step is recomputed during backward).  Returns the
    final flat parameters, differentiable w.r.t. ``images``, ``lr`` and ``w_start``.
    """
    from torch.func import functional_call

    def one_step(w, imgs, step_lr, idx, aug_params):
        x, y = imgs[idx], labels[idx]
        x, y = maybe_expand(view, x, y)
        if aug is not None and aug_params is not None:
            x = aug.apply(x, aug_params)
        if prep is not None:
            x = prep(x)
        if autocast is not None:
            with autocast():
                out = functional_call(net, spec.unflatten(w), (x,))
        else:
            out = functional_call(net, spec.unflatten(w), (x,))
        ce = F.cross_entropy(out.float() if out.dtype in (torch.bfloat16, torch.float16) else out, y)
        (g,) = torch.autograd.grad(ce, w, create_graph=True)
        return w - step_lr * g

    w = w_start
    if not w.requires_grad:
        w = w.detach().requires_grad_(True)
    for idx, aug_params in plan:
        if checkpoint:
            from torch.utils.checkpoint import checkpoint as ckpt

            w = ckpt(one_step, w, images, lr, idx, aug_params, use_reentrant=False)
        else:
            w = one_step(w, images, lr, idx, aug_params)
    return w


# --------------------------------------------------------------------------- the method
@dataclass(frozen=True)
class MTTOptions(MethodOptions):
    """MTT's options (FTD adds ``ema_decay``); per-dataset/IPC values in ``presets.TRAJECTORY_TABLE``."""

    experts: str | None = option(None, doc="folder of expert trajectories (`fyi experts -o FOLDER`)")
    syn_steps: int = option(20, min=1, doc="student SGD steps on the synthetic set per iteration")
    expert_epochs: int = option(3, min=1, doc="expert epochs the student's steps are matched to")
    max_start_epoch: int = option(25, min=1, doc="start epochs are drawn from 0 .. max_start_epoch - 1")
    lr_lr: float = option(1e-5, min=0.0, doc="learning rate of the learned student learning rate")
    lr_teacher: float = option(0.01, min=0.0, min_open=True, doc="initial student learning rate")
    lr_momentum: float = option(0.5, min=0.0, max=1.0, max_open=True, doc="momentum of the lr optimiser")
    batch_syn: int | None = option(None, min=0, doc="synthetic images per student step (None or 0: all)")
    checkpoint_unroll: bool = option(False, doc="recompute the unroll during backward (less memory)")
    max_experts: int | None = option(None, min=0, doc="use only the first N experts (None or 0: all)")

    def check(self, method: str) -> None:
        if self.experts is not None:
            folder = Path(self.experts)
            if folder.is_file():
                raise FyiError(f"{method} option experts={self.experts} is a file, not a folder of expert "
                               "trajectories; pass the folder `fyi experts -o FOLDER` made")


@register_method
class MTT(Method):
    name = "mtt"
    defaults = {"iterations": 5000, "lr_img": 1000.0, "batch_real": 256, "dsa": True}
    Options = MTTOptions
    #: what the experts should have been trained with (FTD wants flat ones)
    wants_flat = False

    def __init__(self, ctx):
        super().__init__(ctx)
        from .experts import ExpertStore

        o = self.opts
        folder = o.experts
        if not folder:
            raise FyiError(
                f"{self.name} needs expert trajectories; make them with `fyi experts --dataset {ctx.cfg.dataset} "
                f"--experts N --epochs E{' --flat' if self.wants_flat else ''} -o FOLDER` and pass --experts FOLDER"
            )
        self.experts = ExpertStore(folder)
        b = self.experts
        if b.dataset != ctx.info.name:
            raise FyiError(f"the experts in {folder} were trained on {b.dataset}, not {ctx.info.name}; "
                           "use experts of the dataset being distilled")
        if b.arch.lower() != str(ctx.cfg.arch).lower():
            raise FyiError(f"the experts in {folder} are {b.arch} networks but --arch is {ctx.cfg.arch}; "
                           f"pass --arch {b.arch} or train experts of that architecture")
        if bool(b.config.get("extend_flip")) != bool(ctx.cfg.extend_flip):
            raise FyiError(f"the experts in {folder} were trained with extend_flip={b.config.get('extend_flip')} "
                           f"but the run has extend_flip={ctx.cfg.extend_flip}; make them agree")
        self.syn_steps, self.expert_epochs, self.max_start_epoch = o.syn_steps, o.expert_epochs, o.max_start_epoch
        per_class = b.config.get("train_per_class")
        n_train = int(per_class) * ctx.info.num_classes if per_class else int(ctx.dataset.train.labels.numel())
        steps_per_epoch = math.ceil(n_train / int(b.config.get("batch_size", 256)))
        teacher_steps = self.expert_epochs * steps_per_epoch
        needed = self.max_start_epoch - 1 + self.expert_epochs
        if self.expert_epochs > b.epochs or needed > b.epochs:
            # one consistent set of options for these experts, checked as a whole (so that following the
            # advice cannot run into the next check)
            e = min(self.expert_epochs, b.epochs)
            m = max(1, min(self.max_start_epoch, b.epochs - e + 1))
            syn = min(self.syn_steps, e * steps_per_epoch)
            raise FyiError(
                f"the experts in {folder} store {b.epochs} epochs but expert_epochs {self.expert_epochs} and "
                f"max_start_epoch {self.max_start_epoch} need {max(needed, self.expert_epochs)}; options that fit "
                f"these experts: --option expert_epochs={e} --option max_start_epoch={m} --option syn_steps={syn} "
                f"(or train experts with --epochs {max(needed, self.expert_epochs)})")
        if self.syn_steps > teacher_steps:
            warnings.warn(
                f"the student takes syn_steps={self.syn_steps} steps to match {teacher_steps} expert steps "
                f"({self.expert_epochs} epochs of {n_train} images); with the same lr it overshoots and the "
                f"learned lr shrinks towards 0. Use --option syn_steps={teacher_steps} or raise expert_epochs.",
                stacklevel=2)
        self.teacher_steps = teacher_steps
        if self.wants_flat and not b.flat:
            warnings.warn(f"{self.name} expects flat experts (`fyi experts --flat`) but {folder} holds SGD experts",
                          stacklevel=2)
        n_exp = o.max_experts
        self.num_experts = min(n_exp, b.num_experts) if n_exp else b.num_experts
        self.zca = b.zca
        if self.zca is not None and ctx.cfg.eval_every:
            raise FyiError("--eval-every is not available with ZCA experts (the periodic evaluation does not whiten "
                           "the test set); evaluate the output with `fyi eval` instead")

    # --- storage: the synthetic images live in the experts' input space (whitened with ZCA) ---
    def init_storage(self, real: torch.Tensor) -> torch.Tensor:
        return self.zca(real) if self.zca is not None else real

    def setup(self, images: torch.nn.Parameter, labels: torch.Tensor) -> None:
        super().setup(images, labels)
        ctx, o = self.ctx, self.opts
        self.net = ctx.new_net()
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.spec = FlatParams(self.net)
        if self.spec.total != self.experts.num_params:
            raise FyiError(f"{self.experts.folder} stores {self.experts.num_params} parameters per expert but "
                           f"{ctx.cfg.arch} has {self.spec.total}; use buffers made for this architecture and dataset")
        n = images.shape[0]
        self.batch_syn = o.batch_syn or n
        self.step_batch = FYIView.halve(self.batch_syn) if ctx.view is not None else self.batch_syn
        self.syn_lr = torch.nn.Parameter(torch.tensor(o.lr_teacher, device=ctx.device))
        self.opt_lr = torch.optim.SGD([self.syn_lr], lr=o.lr_lr, momentum=o.lr_momentum)

    # --- one iteration ---
    def draw_plan(self) -> list[tuple[torch.Tensor, object]]:
        """Minibatch indices and DSA parameters for every unrolled step (reference order: pop chunks)."""
        ctx = self.ctx
        n = self.images.shape[0]
        size = self.ctx.info.image_size
        plan, chunks = [], []
        for _ in range(self.syn_steps):
            if not chunks:
                chunks = list(torch.split(torch.randperm(n, generator=ctx.generator), self.step_batch))
            idx = chunks.pop().to(ctx.device)
            params = None
            if ctx.aug is not None:
                m = idx.numel() * (2 if ctx.view is not None else 1)
                params = ctx.aug.sample(m, size, ctx.device, ctx.generator, siamese=False)
            plan.append((idx, params))
        return plan

    def pick_trajectory(self) -> tuple[int, int, torch.Tensor, torch.Tensor]:
        g = self.ctx.generator
        k = int(torch.randint(self.num_experts, (1,), generator=g))
        s = int(torch.randint(self.max_start_epoch, (1,), generator=g))
        rows = self.experts.load(k, [s, s + self.expert_epochs], device=self.ctx.device)
        return k, s, rows[0], rows[1]

    def step(self, it: int) -> dict:
        ctx = self.ctx
        k, s, w_start, w_target = self.pick_trajectory()
        plan = self.draw_plan()
        w_end = unroll(
            self.net, self.spec, w_start.clone().requires_grad_(True), self.decode(self.images),
            self.decoded_labels(self.labels), self.syn_lr, plan, view=ctx.view, aug=ctx.aug,
            checkpoint=self.opts.checkpoint_unroll,
            autocast=ctx.autocast if ctx.cfg.bf16 else None, prep=ctx.prep if ctx.cfg.channels_last else None,
        )
        loss = param_matching_loss(w_end, w_start, w_target)
        self.opt.zero_grad(set_to_none=True)
        self.opt_lr.zero_grad(set_to_none=True)
        loss.backward(inputs=[self.images, self.syn_lr])
        self.opt.step()
        prev_lr = float(self.syn_lr.detach())
        self.opt_lr.step()
        lr = float(self.syn_lr.detach())
        if not (lr > 0 and math.isfinite(lr)):
            lr_lr = self.opts.lr_lr
            if self.syn_steps > self.teacher_steps:  # the cause measured most often: too many student steps
                raise FyiError(f"the learned learning rate became {lr:.4g} at iteration {it}: the student's "
                               f"syn_steps={self.syn_steps} overshoot the experts' {self.teacher_steps} steps; "
                               f"use --option syn_steps={self.teacher_steps} (or raise expert_epochs)")
            step = prev_lr - lr if math.isfinite(lr) else float("inf")
            # at most a tenth of the current lr_lr, and small enough that this step would have moved the lr by at
            # most half of its value (the decline tends to go on: a step-sized fix alone is not enough)
            target = min(lr_lr * 0.5 * prev_lr / step, lr_lr / 10) if 0 < step < float("inf") and prev_lr > 0 \
                else lr_lr / 10
            exp10 = 10 ** math.floor(math.log10(target)) if target > 0 else lr_lr / 10
            suggestion = math.floor(target / exp10) * exp10 if target > 0 else lr_lr / 10
            raise FyiError(f"the learned learning rate became {lr:.4g} at iteration {it} (from {prev_lr:.4g}); use "
                           f"--option lr_lr={suggestion:.1g} (now {lr_lr:g}) or a lower --lr-img (now "
                           f"{self.ctx.cfg.lr_img:g})")
        self.after_step()
        return {"loss": float(loss.detach()), "syn_lr": float(self.syn_lr.detach()), "expert": k, "start_epoch": s}

    def after_step(self) -> None:
        """Hook for FTD's moving average."""

    # --- what the set stores ---
    def learned_lr(self) -> float | None:
        return float(self.syn_lr.detach())

    def state_dict(self) -> dict:
        return {"opt": self.opt.state_dict(), "opt_lr": self.opt_lr.state_dict(),
                "syn_lr": self.syn_lr.detach().cpu()}

    def load_state_dict(self, state: dict) -> None:
        self.opt.load_state_dict(state["opt"])
        self.opt_lr.load_state_dict(state["opt_lr"])
        with torch.no_grad():
            self.syn_lr.copy_(state["syn_lr"].to(self.syn_lr.device))

    def synset_config(self) -> dict:
        b = self.experts
        out = {"experts_info": {"folder": str(b.folder), "experts": b.num_experts, "experts_used": self.num_experts,
                                "epochs": b.epochs, "flat": b.flat, "arch": b.arch},
               "batch_syn_resolved": self.batch_syn, "step_batch": self.step_batch}
        if self.zca is not None:
            out["zca"] = b.zca_record()
        return out
