"""The loop every distillation method shares.

A method (one module each: ``dc.py``, ``dsa.py``, ``dm.py``, ``idc.py``,
``mtt.py``, ``ftd.py``) only says what one iteration does and declares its
options (a frozen :class:`MethodOptions` dataclass of :func:`option` fields,
read as ``self.opts``).  :func:`resolve_config` resolves a config once (method
defaults, then presets, then the user's values), refuses unknown or ill-typed
options with one line naming the valid ones, and freezes the result.  Everything else is
here, written once: initialising the synthetic images from real data or noise,
the image optimiser, FYI (via :mod:`.fyi`), DSA, the random stream, bf16 and
channels-last, NaN detection, the callbacks (periodic unequalness score and
evaluation, :mod:`.callbacks`), the metrics log (CSV, JSON, PNG curves), checkpoints every N iterations, ``resume``
and writing the synthetic-set file.

Reproducibility: every random draw comes from one ``torch.Generator`` whose
state is checkpointed, so a run resumed after ``kill -9`` ends with the same
synthetic set as an uninterrupted run with the same seed.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from pathlib import Path
from typing import Any, ClassVar, Sequence

import torch

from .. import validate
from ..errors import FyiError, command_line_active
from ..runtime import flush_denormals, make_generator, resolve_device
from ..training import normalize_uint8
from .config import (  # noqa: F401 - re-exported: the loop's public names stay importable from here
    METHODS, PRESET_FIELDS, DistillConfig, MethodOptions, default_output, option, option_names, register_method,
    resolve_config,
)
from . import checkpoint
from .callbacks import Callback
from .callbacks import from_config as callbacks_from_config
from .fyi import FYIView, get_view, maybe_expand
from .parallel import ClassShard


class Context:
    """What a method needs at each iteration: data, synthetic images, networks, randomness."""

    def __init__(self, cfg: DistillConfig, dataset, device: torch.device):
        self.cfg = cfg
        self.dataset = dataset
        self.info = dataset.info
        self.device = device
        self.num_classes = self.info.num_classes
        self.generator = make_generator(cfg.seed)
        self.view: FYIView | None = get_view(cfg.fyi)
        self.aug = None
        self.drawn: list[str] = []  # networks drawn from a space (--arch space:...), in order
        from ..runtime import resolve_precision

        #: the precision of the real-image passes (runtime.BF16_PASSES): the resolved config's (resolve_config fills
        #: the method's default) for this device
        self.precision = "bf16" if cfg.bf16 else resolve_precision(cfg.precision, device)
        self._mean = torch.tensor(self.info.mean, device=device).view(1, -1, 1, 1)
        self._std = torch.tensor(self.info.std, device=device).view(1, -1, 1, 1)
        self.train_images = dataset.train.images.to(device)  # uint8, normalised per batch
        self.train_labels = dataset.train.labels.to(device)
        self.counts = dataset.train.class_counts()
        self.shard = ClassShard.for_run(cfg, self.num_classes)  # this process's classes: all, or a share (torchrun)

    # ---------------------------------------------------------------- randomness
    def draw_seed(self) -> int:
        return int(torch.randint(0, 2**62, (1,), generator=self.generator))

    # ---------------------------------------------------------------- real data
    def normalize(self, x_uint8: torch.Tensor) -> torch.Tensor:
        return normalize_uint8(x_uint8, self._mean, self._std)

    def real_indices(self, c: int, n: int) -> torch.Tensor:
        """``n`` random training indices of class ``c`` (all of them if the class is smaller)."""
        return self.dataset.train.sample_indices(c, min(n, self.counts[c]), self.generator)

    def real_class(self, c: int, n: int) -> torch.Tensor:
        idx = self.real_indices(c, n).to(self.device)
        return self.normalize(self.train_images[idx])

    def real_all(self, n: int, classes=None) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` random real images of every class, concatenated class by class, with labels."""
        classes = range(self.num_classes) if classes is None else classes
        idx = torch.cat([self.real_indices(c, n) for c in classes]).to(self.device)
        return self.normalize(self.train_images[idx]), self.train_labels[idx]

    def real_batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` random real images from the whole training set (any class), with labels."""
        idx = torch.randint(0, self.train_images.shape[0], (n,), generator=self.generator).to(self.device)
        return self.normalize(self.train_images[idx]), self.train_labels[idx]

    # ---------------------------------------------------------------- networks
    def new_net(self, arch: str | None = None, *, frozen: bool = False) -> torch.nn.Module:
        """A freshly initialised network (seeded from the run's generator).

        With ``--arch space:NAME`` (or ``space:a|b|c``) every call first draws
        the architecture from the space with the same generator, so the
        sequence of networks is reproducible from the seed; the drawn names
        are kept in :attr:`drawn` (and in the output's metadata).
        """
        from ..networks import create_model
        from ..networks.spaces import SPACE_PREFIX, draw_architecture

        arch = arch or self.cfg.arch
        if arch.strip().lower().startswith(SPACE_PREFIX):
            arch = draw_architecture(arch, self.generator)
            self.drawn.append(arch)
        net = create_model(
            arch, channels=self.info.channels, num_classes=self.num_classes,
            image_size=self.info.image_size, seed=self.draw_seed(),
        ).to(self.device)
        if self.cfg.channels_last:
            net = net.to(memory_format=torch.channels_last)
        net.train()
        if frozen:
            for p in net.parameters():
                p.requires_grad_(False)
        return net

    def prep(self, x: torch.Tensor) -> torch.Tensor:
        """Memory format for network inputs."""
        return x.contiguous(memory_format=torch.channels_last) if self.cfg.channels_last else x

    def forward(self, net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        """``net(x)`` in the run's memory format and precision."""
        with self.autocast():
            return net(self.prep(x))

    def autocast(self):
        """bf16 autocast for passes that touch the synthetic images: only with the old ``bf16=True`` switch."""
        if not self.cfg.bf16:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def real_autocast(self):
        """bf16 autocast for the real-image passes of :data:`fyi_apps.runtime.BF16_PASSES` when the precision is bf16."""
        if self.precision != "bf16":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def forward_real(self, net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        """``net(x)`` for a real-image pass (its result needs no gradient w.r.t. the synthetic images)."""
        with self.real_autocast():
            return net(self.prep(x))

    # ---------------------------------------------------------------- FYI and DSA
    def fyi(self, images: torch.Tensor, labels: torch.Tensor | None = None):
        """``cat([S, flip(S)])`` (labels repeated) when FYI is on; unchanged otherwise."""
        return maybe_expand(self.view, images, labels)

    def siamese(self, *batches: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The same sampled DSA transform applied to every batch (identity when DSA is off)."""
        if self.aug is None:
            return batches
        params = self.aug.sample(batches[0].shape[0], self.info.image_size, self.device, self.generator, siamese=True)
        return tuple(self.aug.apply(b, params) for b in batches)

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        """Per-image DSA (as in network training), identity when DSA is off."""
        if self.aug is None:
            return x
        return self.aug(x, generator=self.generator, siamese=False)


class Method:
    """One distillation method.  Subclasses set ``name``, ``defaults`` and ``Options`` and implement ``step``."""

    name: ClassVar[str] = ""
    #: values for the DistillConfig fields left at None (``PRESET_FIELDS``)
    defaults: ClassVar[dict[str, Any]] = {}
    #: the method's typed options (a :class:`MethodOptions` dataclass)
    Options: ClassVar[type[MethodOptions]] = MethodOptions
    #: momentum of the image optimiser (SGD) in the reference code
    momentum: ClassVar[float] = 0.5
    #: whether ``step`` splits by class under torchrun (skips other ranks' classes, :mod:`.parallel`)
    class_parallel: ClassVar[bool] = False

    def __init__(self, ctx: Context):
        self.ctx = ctx
        opts = ctx.cfg.options  # a resolved config holds the typed options; a hand-made Context may hold a dict
        self.opts = opts if isinstance(opts, self.Options) else self.Options.build(ctx.cfg.method, opts)
        self.opt = None

    # --- storage of the synthetic images (IDC overrides to multi-formation) ---
    encoding: ClassVar[dict] = {"type": "plain"}

    def storage_per_class(self) -> int:
        return self.ctx.cfg.ipc

    def init_storage(self, real: torch.Tensor) -> torch.Tensor:
        """Storage tensor from ``real`` normalised images (``ipc`` per class, class-major)."""
        return real

    def decode(self, stored: torch.Tensor) -> torch.Tensor:
        """The images networks train on (identity except for IDC)."""
        return stored

    def decoded_labels(self, labels: torch.Tensor) -> torch.Tensor:
        return labels

    # --- the optimiser and the iteration ---
    def setup(self, images: torch.nn.Parameter, labels: torch.Tensor) -> None:
        self.images, self.labels = images, labels
        self.opt = torch.optim.SGD([images], lr=self.lr_img, momentum=self.momentum)

    @property
    def lr_img(self) -> float:
        return float(self.ctx.cfg.lr_img)

    def step(self, it: int) -> dict[str, float]:
        """One outer iteration: update ``self.images``; return metrics with at least ``loss``."""
        raise NotImplementedError

    def learned_lr(self) -> float | None:
        return None

    def final_images(self) -> torch.Tensor:
        return self.images.detach()

    def state_dict(self) -> dict:
        return {"opt": self.opt.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.opt.load_state_dict(state["opt"])

    def synset_config(self) -> dict:
        """Extra config stored with the set (e.g. ``eval_cutmix`` for IDC)."""
        return {}


def _arch_examples(arch: str) -> list[str]:
    """The names to check for ``--arch``: itself, or for a space every listed model (a named space: its first)."""
    from ..networks.spaces import SPACE_PREFIX, space_arch

    if not arch.strip().lower().startswith(SPACE_PREFIX):
        return [arch]
    names, variant = space_arch(arch)
    return [n + variant for n in (names if len(names) <= 32 else names[:1])]


def _drawn_metadata(arch: str, drawn: list[str]) -> dict:
    """What a space-drawn run records: the space, how many networks it drew, which (in order) and their hash."""
    if not drawn:
        return {}
    import hashlib

    return {"drawn_archs": {"space": arch, "count": len(drawn),
                            "sha256": hashlib.sha256("\n".join(drawn).encode()).hexdigest(), "names": list(drawn)}}


class Distiller:
    """Runs a method from a config: ``Distiller(cfg, dataset).run(output)``."""

    def __init__(self, cfg: DistillConfig, dataset, device: str | torch.device = "auto"):
        from ..augment import DSA
        from ..networks import check_model_names

        self.cfg = resolve_config(cfg)
        self.dataset = dataset
        self.device = resolve_device(device)
        dataset.check_ipc(self.cfg.ipc)
        info = dataset.info  # an unknown or unfit --arch fails here, not at the first iteration
        check_model_names(_arch_examples(self.cfg.arch), "--arch", channels=info.channels,
                          num_classes=info.num_classes, image_size=info.image_size)
        self.ctx = Context(self.cfg, dataset, self.device)
        if self.cfg.dsa:
            self.ctx.aug = DSA(self.cfg.dsa_strategy, mode=self.cfg.dsa_mode)
        self.method = METHODS[self.cfg.method](self.ctx)
        if self.cfg.precision != "fp32" and self.cfg.method in ("mtt", "ftd"):
            import warnings

            warnings.warn(f"--precision {self.cfg.precision} acts on real-image passes and {self.cfg.method} has none "
                          "(it matches expert trajectories): the run is fp32", stacklevel=2)
            self.ctx.precision = "fp32"  # what the outputs record is what ran
        self.log: list[dict] = []
        self.start_iteration = 0
        self._last_checkpoint: int | None = None  # iteration of the last checkpoint written or resumed

    # ---------------------------------------------------------------- init
    def init_images(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The stored tensor the run starts from (real images or noise, ``cfg.init``) and its labels."""
        ctx, cfg = self.ctx, self.cfg
        k = ctx.num_classes
        per = self.method.storage_per_class()
        labels = torch.arange(k, device=self.device).repeat_interleave(per)
        if cfg.init == "real":
            real, _ = ctx.real_all(per)
            stored = self.method.init_storage(real)
        else:
            c, s = self.dataset.info.channels, self.dataset.info.image_size
            stored = torch.randn(k * per, c, s, s, generator=ctx.generator).to(self.device)
        return stored.detach().clone(), labels

    # ---------------------------------------------------------------- checkpoints
    def checkpoint_path(self, output: Path) -> Path:
        return checkpoint.checkpoint_path(output)

    def _save_checkpoint(self, path: Path, it: int) -> None:
        self.ctx.shard.share_state(self.method)  # class-parallel: every rank's classes into the one checkpoint
        try:
            self.ctx.shard.on_main(self._write_checkpoint, path, it)
        except FyiError as e:
            kept = self._last_checkpoint
            if not kept or command_line_active():  # the fyi command adds the kept checkpoint and its resume line
                raise
            raise FyiError(f"{e.args[0]}; {path} still holds the checkpoint of iteration {kept}, resume with "
                           "--resume") from None
        self._last_checkpoint = it

    def _write_checkpoint(self, path: Path, it: int) -> None:
        checkpoint.write_checkpoint(path, total=self.cfg.iterations, state={
            "iteration": it,
            "config": self.cfg.identity(),
            "images": self.method.images.detach().cpu(),
            "labels": self.method.labels.cpu(),
            "generator": self.ctx.generator.get_state(),
            "method": self.method.state_dict(),
            "log": self.log,
            "drawn": list(self.ctx.drawn),
        })

    def _load_checkpoint(self, path: Path) -> None:
        state = self.ctx.shard.on_main(checkpoint.read_checkpoint, path)  # class-parallel: rank 0 reads it for all
        diff = self._settings_diff(state)
        if diff:
            theirs = self._stored_identity(state.get("config") or {})
            fp32 = "precision" in diff and theirs.get("precision", "fp32") == "fp32"  # made before the default changed
            raise FyiError(
                f"checkpoint {path} was made with different settings ({', '.join(diff)}); "
                + ("it ran in fp32: add --precision fp32 to resume it, " if fp32 else
                   "use the same command to resume, ")
                + "or delete the checkpoint to start over"
            )
        with torch.no_grad():
            self.method.images.copy_(state["images"].to(self.device))
        self.ctx.generator.set_state(state["generator"])
        self.method.load_state_dict(state["method"])
        self.log = state["log"]
        self.ctx.drawn = list(state.get("drawn") or [])
        self.start_iteration = self._last_checkpoint = state["iteration"]

    def _settings_diff(self, state: dict) -> list[str]:
        """The settings a checkpoint was made with that differ from this run's (none: this run can resume it)."""
        theirs, ours = self._stored_identity(state.get("config") or {}), self.cfg.identity()
        return sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))

    def _stored_identity(self, theirs: dict) -> dict:
        """A checkpoint's config with options added since it was written set to their defaults."""
        opts = theirs.get("options")
        if not isinstance(opts, dict):
            return theirs
        defaults = self.method.Options().as_dict()
        return {**theirs, "options": {**{k: v for k, v in defaults.items() if k not in opts}, **opts}}

    # ---------------------------------------------------------------- run
    @flush_denormals()
    def run(
        self,
        output: str | Path | None = None,
        *,
        resume: bool = False,
        progress: bool = True,
        stop_after: int | None = None,
        write_report: bool = True,
        callbacks: Sequence[Callback] = (),
    ):
        """Distil; write the synthetic set to ``output`` (if given) and return it.

        ``callbacks`` run after every iteration, after the ones the config asks
        for (``score_every``, ``eval_every``; see :mod:`.callbacks`).

        ``stop_after`` ends the run early after that many iterations *of this
        call* (leaving a checkpoint), which tests use to simulate a crash.
        """
        from ..runtime import progress_bar as tqdm

        cfg = self.cfg
        shard = self.ctx.shard
        progress = progress and shard.is_main
        callbacks = [*callbacks_from_config(cfg), *callbacks]
        output = validate.output_file(output, "synthetic-set file") if output else None
        stored, labels = self.init_images()
        images = torch.nn.Parameter(stored)
        self.method.setup(images, labels)
        ckpt = self.checkpoint_path(output) if output else None
        if ckpt is not None and shard.on_main(checkpoint.check_start, ckpt, resume, self._settings_diff):
            self._load_checkpoint(ckpt)
            checkpoint.note(ckpt, self.start_iteration, cfg.iterations)
            if progress:
                print(f"resuming from {ckpt} at iteration {self.start_iteration}")
        t_start = time.perf_counter()
        bar = tqdm(range(self.start_iteration, cfg.iterations), initial=self.start_iteration, total=cfg.iterations,
                   desc=f"{cfg.method}{'+fyi' if cfg.fyi else ''} {cfg.dataset} ipc{cfg.ipc}",
                   disable=not progress, dynamic_ncols=True)
        done_here = 0
        for it in bar:
            t0 = time.perf_counter()
            metrics, finite = shard.reduce(self.method.step(it), self.method.images)  # class-parallel: summed loss
            loss = float(metrics["loss"])
            if not math.isfinite(loss) or not finite:
                raise self._diverged(it, loss, ckpt)
            row = {"iteration": it + 1, **{k: float(v) for k, v in metrics.items()}, "seconds": time.perf_counter() - t0}
            if callbacks:
                shard.share_rows(self.method.images)  # class-parallel: callbacks see every class
            for cb in callbacks:
                cb.on_iteration(self, it + 1, row)
            self.log.append(row)
            if progress:
                bar.set_postfix(loss=f"{loss:.4g}")
            done_here += 1
            last = it + 1 == cfg.iterations
            if ckpt is not None and ((it + 1) % cfg.checkpoint_every == 0 or last
                                     or (stop_after is not None and done_here >= stop_after)):
                self._save_checkpoint(ckpt, it + 1)
            if stop_after is not None and done_here >= stop_after and not last:
                return None
        shard.share_rows(self.method.images)  # class-parallel: every rank's classes
        # the whole run's cost: this call's time plus the iterations of earlier calls a checkpoint carried over
        earlier = sum(r.get("seconds", 0.0) for r in self.log if r.get("iteration", 0) <= self.start_iteration)
        synset = self.synthetic_set(seconds=earlier + time.perf_counter() - t_start)
        if output is not None:
            shard.on_main(self._write_outputs, output, synset, write_report, ckpt)
            from ..runtime import note_kept

            note_kept("checkpoint", None)
        return synset

    def _write_outputs(self, output: Path, synset, write_report: bool, ckpt: Path | None) -> None:
        """The synthetic set, the logs; the checkpoint removed (rank 0 alone in a class-parallel run)."""
        from ..synset import save_synset

        save_synset(output, synset)
        if write_report:
            self._write_log(output)
        if ckpt is not None and ckpt.exists():
            ckpt.unlink()

    def _diverged(self, it: int, loss: float, ckpt: Path | None) -> FyiError:
        """What went wrong when the loss or the images stopped being finite, and what to change."""
        cfg = self.cfg
        what = (f"the loss became {loss}" if not math.isfinite(loss)
                else f"the synthetic images became NaN or infinite (the loss was still {loss:.4g})")
        fixes = [f"lower --lr-img (now {cfg.lr_img:g})"]
        if cfg.init == "noise":
            fixes.append("use --init real")
        if cfg.bf16:
            fixes.append("drop --bf16")
        kept = self._last_checkpoint
        where = f"; {ckpt} holds iteration {kept}" if ckpt is not None and kept else ""
        return FyiError(f"{cfg.method}: {what} at iteration {it} (counting from 0); {' or '.join(fixes)}{where}")

    def synthetic_set(self, seconds: float | None = None):
        from ..synset import SyntheticSet

        info = self.dataset.info
        cfg = self.cfg
        return SyntheticSet(
            images=self.method.final_images().detach().float().cpu().contiguous(),
            labels=self.method.labels.cpu(),
            dataset=info.name,
            class_names=list(info.class_names),
            mean=list(info.mean),
            std=list(info.std),
            method=cfg.method,
            fyi=cfg.fyi,
            ipc=cfg.ipc,
            lr=self.method.learned_lr(),
            config={**dataclasses.asdict(cfg), **self.method.synset_config(), "precision_used": self.ctx.precision},
            seed=cfg.seed,
            encoding=dict(self.method.encoding),
            extra={
                "source": self.dataset.source,
                "iterations_done": len(self.log),
                "final_loss": self.log[-1]["loss"] if self.log else None,
                "seconds": seconds,
                **_drawn_metadata(cfg.arch, self.ctx.drawn),
            },
        )

    def _write_log(self, output: Path) -> None:
        from .logs import write_log

        write_log(checkpoint.stem(output), self.cfg, self.log, precision_used=self.ctx.precision)
