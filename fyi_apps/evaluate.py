"""The evaluation protocol of the FYI paper (and of DC/DSA/DM/MTT before it).

Train a freshly initialised network on a (synthetic or real) training set:
SGD with momentum 0.9 and weight decay 5e-4, learning rate 0.01 (or the set's
learned rate), multiplied by 0.1 at half of training, batch 256, DSA
augmentation, 1000 epochs by default; then report test accuracy.  Repeat over
seeds and architectures and report mean and standard deviation.
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import torch

from . import validate
from .augment import DEFAULT_STRATEGY, MODES
from .errors import FyiError
from .deprecated import renamed_arguments
from .options import check_fields, option
from .runtime import derive_seed, flush_denormals, make_generator, resolve_device
from .training import as_float, backward_in_slices, cutmix_step, micro_batch_size
from .training import test_accuracy


@dataclass
class EvalConfig:
    """Hyper-parameters of one retraining run (defaults: the paper's protocol)."""

    epochs: int = option(1000, min=1, help="training epochs (paper: 1000)")
    lr: float | None = option(None, min=0.0, min_open=True,
                              help="learning rate (default: the set's learned lr, else 0.01)")
    momentum: float = option(0.9, min=0.0, help="SGD momentum")
    weight_decay: float = option(5e-4, min=0.0, help="SGD weight decay")
    batch_size: int = option(256, min=1, help="training minibatch size")
    dsa: bool = option(True, flag="--no-dsa", help="train without DSA augmentation")
    dsa_strategy: str = option(DEFAULT_STRATEGY, help="the DSA operations, joined by _")
    dsa_mode: str = option("single", choices=MODES, help=(
        "DSA op choice: single (original), fyi (official FYI code: flip + one op), all"))
    cutmix: float = option(0.0, min=0.0, max=1.0, fix="use a probability from 0 to 1",
                           help="probability of CutMix per batch (IDC's evaluation uses it)")
    test_batch_size: int = option(1000, min=1, help="images per test batch")
    bf16: bool = option(False, help="bf16 autocast (CPUs with AVX-512 BF16, or CUDA)")
    channels_last: bool = option(False, help="channels-last memory format for the network")
    # Forward/backward each batch in slices of this many images, summing the
    # gradients (the same update, up to float rounding; networks with BatchNorm
    # always use whole batches).  None: 16 on a CPU, where small slices keep the
    # activations in cache (about 1.7x faster on the test machine), else off.
    micro_batch: int | None = option(None, min=0, fix="use 0 (off) or a slice size",
                                     help="images per forward/backward slice (default: 16 on a CPU, else off)")

    def __post_init__(self) -> None:
        """Refuse ill-typed or out-of-range settings with one line naming the field (:func:`fyi_apps.options.check_fields`)."""
        check_fields(self)

    def resolved_lr(self, learned: float | None = None) -> float:
        if self.lr is not None:
            return float(self.lr)
        return float(learned) if learned is not None else 0.01


@dataclass
class EvalResult:
    """Accuracies of one architecture over seeds."""

    arch: str
    seeds: list[int]
    accs: list[float]
    epochs: int
    lr: float
    seconds_per_run: float
    num_train: int
    extra: dict = field(default_factory=dict)

    @property
    def mean(self) -> float:
        return float(sum(self.accs) / len(self.accs))

    @property
    def std(self) -> float:
        if len(self.accs) < 2:
            return 0.0
        m = self.mean
        return float(math.sqrt(sum((a - m) ** 2 for a in self.accs) / len(self.accs)))

    @property
    def accs_pct(self) -> list[float]:
        """Test accuracies in percent (``accs`` are fractions in [0, 1])."""
        return [100.0 * a for a in self.accs]

    @property
    def mean_pct(self) -> float:
        """Mean test accuracy in percent."""
        return 100.0 * self.mean

    @property
    def std_pct(self) -> float:
        """Standard deviation of the test accuracy over seeds, in percentage points."""
        return 100.0 * self.std

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["mean"], d["std"] = self.mean, self.std
        d["mean_pct"], d["std_pct"] = self.mean_pct, self.std_pct
        return d

    def summary(self) -> str:
        return f"{self.arch}: {100 * self.mean:.2f} +- {100 * self.std:.2f} % ({len(self.accs)} seeds, {self.epochs} epochs)"


@flush_denormals()
def train_network(
    net: torch.nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    cfg: EvalConfig,
    *,
    lr: float,
    generator: torch.Generator,
    device: torch.device,
    mean=None,
    std=None,
    progress: bool = False,
    desc: str = "train",
    checkpoints: Sequence[int] = (),
    on_checkpoint: Callable[[list[int], float], None] | None = None,
) -> dict:
    """Train ``net`` in place on ``images``/``labels`` with the protocol; returns loss stats.

    ``images`` may be normalised floats (synthetic sets) or uint8 (real data,
    normalised per batch with ``mean``/``std``).  Both stay on their device
    until a batch is drawn, so a full real training set does not need to fit
    on the GPU as floats.

    ``checkpoints`` are counts of training images seen (image-passes): when a
    batch takes the count to or past some of them, ``on_checkpoint(reached,
    train_seconds)`` is called once with the list of those checkpoints (e.g. to
    test the network: a learning curve from one run).  It may switch the network to eval mode; training resumes
    in train mode, and the training itself (random draws, updates) is the
    same as without checkpoints.
    """
    from .runtime import progress_bar as tqdm

    from .augment import DSA

    if images.dtype == torch.uint8 and (mean is None or std is None):
        raise ValueError("uint8 images need mean and std")
    n = images.shape[0]
    if n == 0:
        raise FyiError("cannot train on an empty image set; check the synthetic set or the IPC")
    net.to(device).train()
    if cfg.channels_last:
        net.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[max(cfg.epochs // 2, 1)], gamma=0.1)
    aug = DSA(cfg.dsa_strategy, mode=cfg.dsa_mode) if cfg.dsa else None
    micro = micro_batch_size(cfg, net, device)
    labels = labels.to(device)
    last_loss = float("nan")
    pending = sorted({int(c) for c in checkpoints if int(c) > 0})
    seen, train_seconds, t_start = 0, 0.0, time.perf_counter()
    bar = tqdm(range(cfg.epochs), desc=desc, disable=not progress, leave=False, dynamic_ncols=True)
    for _epoch in bar:
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, cfg.batch_size):
            idx = order[start : start + cfg.batch_size]
            x = as_float(images[idx.to(images.device)].to(device, non_blocking=True), mean, std)
            y = labels[idx.to(device)]
            if aug is not None:
                x = aug(x, generator=generator, siamese=False)
            if cfg.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            x, loss_fn = cutmix_step(x, y, cfg.cutmix, generator)
            opt.zero_grad(set_to_none=True)
            last_loss = backward_in_slices(net, x, loss_fn, micro, bf16=cfg.bf16)
            opt.step()
            seen += int(idx.numel())
            if pending and seen >= pending[0]:
                train_seconds += time.perf_counter() - t_start
                reached = []
                while pending and seen >= pending[0]:
                    reached.append(pending.pop(0))
                if on_checkpoint is not None:
                    on_checkpoint(reached, train_seconds)
                net.train()
                t_start = time.perf_counter()
        sched.step()
        if not math.isfinite(last_loss):
            raise FyiError(
                f"training loss became {last_loss} at epoch {_epoch}; lower the learning rate (--lr) "
                "or check the synthetic set for NaN/inf pixels"
            )
        if progress:
            bar.set_postfix(loss=f"{last_loss:.3f}")
    return {"final_loss": last_loss}


def evaluate_images(
    images: torch.Tensor,
    labels: torch.Tensor,
    dataset,
    *,
    arch: str = "convnet",
    cfg: EvalConfig | None = None,
    seeds: Sequence[int] = (0, 1, 2),
    learned_lr: float | None = None,
    device: str | torch.device = "auto",
    progress: bool = False,
    test_transform=None,
    curve: Sequence[int] = (),
) -> EvalResult:
    """Retrain ``arch`` from scratch on the given training images once per seed; test on ``dataset.test``.

    ``dataset`` is a :class:`fyi_apps.data.Dataset` (its info gives channels,
    size, classes, mean/std; its test split is the benchmark).

    ``curve``: counts of training images seen (image-passes; ``epochs x
    len(images)`` for whole epochs) at which the network is also tested during
    the same run.  ``extra["curves"]`` then holds, per seed, a list of
    ``{"images", "epochs", "acc", "seconds"}`` (``seconds``: training time so far,
    testing excluded).  The final accuracy and the training are unchanged.
    """
    from .networks import create_model

    cfg = _eval_config(cfg)
    dataset = _dataset(dataset)
    seeds = validate.seed_list(seeds, "seeds")
    arch = validate.text(arch, "arch")
    device = resolve_device(device)
    info = dataset.info
    if images.dim() != 4 or images.shape[1] != info.channels or images.shape[-1] != info.image_size:
        raise FyiError(
            f"training images have shape {tuple(images.shape[1:])} but {info.name} needs "
            f"({info.channels}, {info.image_size}, {info.image_size}); evaluate the set on the dataset it was made from"
        )
    if int(labels.max()) >= info.num_classes:
        raise FyiError(f"labels go up to {int(labels.max())} but {info.name} has {info.num_classes} classes")
    lr = cfg.resolved_lr(learned_lr)
    n_train = int(images.shape[0])
    curve = sorted({int(c) for c in curve})
    if curve and (curve[0] < 1 or curve[-1] > cfg.epochs * n_train):
        raise FyiError(f"curve points must lie between 1 and {cfg.epochs * n_train} training images "
                       f"({cfg.epochs} epochs x {n_train} images); got {curve[0]}..{curve[-1]}")
    accs, secs, extra = [], [], []
    for seed in seeds:
        net = create_model(
            arch,
            channels=info.channels,
            num_classes=info.num_classes,
            image_size=info.image_size,
            seed=derive_seed(seed, "eval-net", arch),
        )
        g = make_generator(derive_seed(seed, "eval-train", arch))
        points: list[dict] = []

        def test(_net=net) -> float:
            return test_accuracy(
                _net, dataset.test.images, dataset.test.labels, device=device, mean=info.mean, std=info.std,
                batch_size=cfg.test_batch_size, bf16=cfg.bf16, channels_last=cfg.channels_last,
                transform=test_transform,
            )

        def on_checkpoint(reached: list[int], seconds: float, _points=points) -> None:
            acc = test()  # one test for every point this batch reached (the same network)
            _points.extend({"images": r, "epochs": r / n_train, "acc": acc, "seconds": seconds} for r in reached)

        t0 = time.perf_counter()
        stats = train_network(
            net, images, labels, cfg, lr=lr, generator=g, device=device,
            mean=info.mean, std=info.std, progress=progress, desc=f"eval {arch} seed {seed}",
            checkpoints=curve, on_checkpoint=on_checkpoint if curve else None,
        )
        secs.append(time.perf_counter() - t0)
        acc = points[-1]["acc"] if points and points[-1]["images"] == cfg.epochs * n_train else test()
        accs.append(acc)
        if curve:
            stats = {**stats, "curve": points}
        extra.append(stats)
    return EvalResult(
        arch=arch, seeds=list(seeds), accs=accs, epochs=cfg.epochs, lr=lr,
        seconds_per_run=sum(secs) / len(secs), num_train=int(images.shape[0]),
        extra={"train": extra, "config": dataclasses.asdict(cfg),
               **({"curves": [e["curve"] for e in extra]} if curve else {})},
    )


def _eval_config(cfg) -> "EvalConfig":
    """``cfg`` as an :class:`EvalConfig`: one, None (the defaults) or a dict of its fields."""
    if cfg is None:
        return EvalConfig()
    if isinstance(cfg, EvalConfig):
        return cfg
    if isinstance(cfg, dict):
        unknown = sorted(set(cfg) - {f.name for f in dataclasses.fields(EvalConfig)})
        if unknown:
            raise FyiError(f"cfg has unknown field(s) {', '.join(map(str, unknown))}; EvalConfig's fields are "
                           f"{', '.join(f.name for f in dataclasses.fields(EvalConfig))}")
        return EvalConfig(**cfg)
    raise FyiError(f"cfg must be an EvalConfig (or a dict of its fields), got {type(cfg).__name__}")


def _dataset(dataset):
    """A loaded dataset, or a dataset name to load (e.g. "digits")."""
    from .data import as_dataset

    return as_dataset(dataset)


def _synset(synset):
    """A synthetic set, or the path of one to load."""
    import os

    from .synset import SyntheticSet, load_synset

    if isinstance(synset, SyntheticSet):
        return synset
    if isinstance(synset, (str, os.PathLike)):
        return load_synset(synset)
    raise FyiError(f"synset must be a SyntheticSet or the path of a .safetensors set, got {type(synset).__name__}")


def check_compatible(synset, dataset) -> None:
    """One clear line when a synthetic set does not belong to ``dataset``."""
    info = dataset.info
    if synset.channels != info.channels:
        raise FyiError(
            f"synthetic set has {synset.channels} channel(s) but {info.name} has {info.channels}; "
            f"evaluate it on the dataset it was made from ({synset.dataset})"
        )
    if synset.image_size != info.image_size:
        raise FyiError(
            f"synthetic set images are {synset.image_size} px but {info.name} images are {info.image_size} px; "
            f"evaluate it on the dataset it was made from ({synset.dataset})"
        )
    if synset.num_classes != info.num_classes:
        raise FyiError(
            f"synthetic set has {synset.num_classes} classes but {info.name} has {info.num_classes}; "
            f"evaluate it on the dataset it was made from ({synset.dataset})"
        )


@renamed_arguments
def evaluate_synset(
    synset,
    dataset,
    *,
    arch: str | Iterable[str] = ("convnet",),
    cfg: EvalConfig | None = None,
    seeds: Sequence[int] = (0, 1, 2),
    device: str | torch.device = "auto",
    progress: bool = False,
) -> dict[str, EvalResult]:
    """The paper's protocol for a :class:`~fyi_apps.synset.SyntheticSet`, for each architecture.

    The set is decoded first (IDC's multi-formation), never flip-extended.
    ``synset`` may be a path, ``dataset`` a name, ``arch`` one name or a list
    (``archs=``, its old spelling, warns), ``cfg`` an :class:`EvalConfig`
    or a dict of its fields.  Returns ``{arch: EvalResult}``; :func:`fyi_apps.evaluate`
    returns the :class:`EvalResult` itself for one architecture.
    """
    synset, dataset = _synset(synset), _dataset(dataset)
    archs = validate.name_list(arch, "arch")
    seeds = validate.seed_list(seeds, "seeds")
    check_compatible(synset, dataset)
    cfg = _eval_config(cfg)
    if cfg.cutmix == 0 and synset.config.get("eval_cutmix"):
        cfg = dataclasses.replace(cfg, cutmix=float(synset.config["eval_cutmix"]))
    images, labels = synset.decoded()
    test_transform = None
    if synset.config.get("zca"):  # distilled from ZCA-whitened experts (MTT/FTD): whiten the test set too
        from .zca import zca_from_config

        test_transform = zca_from_config(synset.config["zca"], dataset)
    return {
        arch: evaluate_images(
            images, labels, dataset, arch=arch, cfg=cfg, seeds=seeds, learned_lr=synset.lr, test_transform=test_transform,
            device=device, progress=progress,
        )
        for arch in archs
    }


def evaluate_full(
    dataset,
    *,
    arch: str = "convnet",
    cfg: EvalConfig | None = None,
    seeds: Sequence[int] = (0,),
    device: str | torch.device = "auto",
    progress: bool = False,
) -> EvalResult:
    """Whole-training-set upper bound with the same protocol (set ``cfg.epochs`` to a sensible budget)."""
    cfg = cfg or EvalConfig(epochs=30)
    return evaluate_images(
        dataset.train.images, dataset.train.labels, dataset, arch=arch, cfg=cfg, seeds=seeds,
        device=device, progress=progress,
    )

