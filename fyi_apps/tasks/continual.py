"""Synthetic sets as replay memories for class-incremental learning, inside Avalanche.

The toolkit plugs into Avalanche rather than replacing it:

* :class:`SyntheticReplayBuffer` is an Avalanche storage policy (a subclass of
  ``avalanche.training.storage_policy.ExemplarsBuffer`` that overrides
  ``post_adapt`` and ``resize``).  After each experience it adds ``ipc`` images
  for every class seen for the first time, so the memory holds exactly ``ipc``
  images per seen class (fewer only if ``max_size`` cannot hold that many, never
  more than ``max_size`` in total).  Buffer items are ``(x, y, t)`` with the
  task label of the experience the class came from.  Use it in any strategy::

      buffer = make_buffer("dm+fyi", ipc=10, num_classes=10, info=ds.info, iterations=500)
      strategy = Naive(model=..., optimizer=..., criterion=...,
                       plugins=[ReplayPlugin(mem_size=buffer.max_size, storage_policy=buffer)])

  Where the images of a new class come from is a *source*:
  :class:`FromSynset` (mode a: a synthetic-set file made beforehand),
  :class:`OnlineDistillation` (mode b: DM/DSA/DC, with or without FYI, run on
  the experience's own training data, new classes only), and the two real-data
  baselines :class:`RandomSelection` (class-balanced random) and
  :class:`HerdingSelection` (Avalanche's ``HerdingSelectionStrategy``).

* :func:`make_benchmark` builds Split CIFAR-10/100, Split Fashion-MNIST and
  Split digits with Avalanche's ``class_incremental_benchmark`` from fyi-apps's
  own datasets (never Avalanche's downloading classes), normalised with the
  dataset's mean/std so that real and synthetic images live in the same space.
  Class orders come from seeds (:func:`class_order`).

* Two protocols: :func:`run_gdumb` (the DM paper's: at every step a network is
  trained from scratch on the memory only, with the fyi-apps evaluation
  protocol, and tested on every seen class) and :func:`run_replay` (an
  Avalanche strategy, ``Naive`` by default, with ``ReplayPlugin``, measured by
  Avalanche's ``EvaluationPlugin``).  Both return the same record: Avalanche
  metric names per step, summarised by :func:`summarise`.

* :func:`run_experiment` runs buffers x class orders, writes JSON, CSV and the
  accuracy-vs-classes plot; ``fyi cl`` and ``benchmarks/continual.py`` call it.

Importing this module imports Avalanche (several seconds; it also writes
``~/.avalanche/config.json``): import it only when continual learning is used.
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import math
import re
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Sequence

import torch

from avalanche.benchmarks.scenarios.supervised import class_incremental_benchmark
from avalanche.benchmarks.utils import _make_taskaware_tensor_classification_dataset
from avalanche.benchmarks.utils.utils import concat_datasets
from avalanche.training.storage_policy import ExemplarsBuffer, HerdingSelectionStrategy

from ..errors import FyiError
from ..runtime import derive_seed, make_generator, resolve_device

# --------------------------------------------------------------------------- #
# benchmarks
# --------------------------------------------------------------------------- #
#: benchmark name -> (fyi-apps dataset, default number of experiences, documented choices)
BENCHMARKS: dict[str, tuple[str, int, tuple[int, ...]]] = {
    "split-digits": ("digits", 5, (5,)),
    "split-fashion-mnist": ("fashion-mnist", 5, (5,)),
    "split-cifar10": ("cifar10", 5, (5,)),
    "split-cifar100": ("cifar100", 10, (5, 10, 20)),
}

#: buffer kinds understood by :func:`make_buffer` (besides ``file:PATH``)
BUFFER_KINDS = ("random", "herding", "dm", "dm+fyi", "dsa", "dsa+fyi", "dc", "dc+fyi")
#: methods that can distil an experience on the fly (plain images, no expert trajectories needed)
ONLINE_METHODS = ("dm", "dsa", "dc")


def resolve_benchmark(name: str, experiences: int | None = None) -> tuple[str, str, int]:
    """``split-cifar10`` / ``split-cifar100-20`` / ... -> (benchmark key, dataset name, experiences)."""
    key = str(name).strip().lower()
    m = re.fullmatch(r"(split-[a-z0-9-]+?)-(\d+)", key)
    if key not in BENCHMARKS and m and m.group(1) in BENCHMARKS:
        key, from_name = m.group(1), int(m.group(2))
        if experiences is not None and experiences != from_name:
            raise FyiError(f"benchmark {name} has {from_name} experiences but --experiences {experiences} was given; "
                           "give one of them")
        experiences = from_name
    if key not in BENCHMARKS:
        raise FyiError(f"unknown benchmark {name!r}; use one of {', '.join(sorted(BENCHMARKS))} "
                       "(split-cifar100 also as split-cifar100-5, -10 or -20)")
    dataset, default_n, _ = BENCHMARKS[key]
    n = default_n if experiences is None else int(experiences)
    if n < 1:
        raise FyiError(f"--experiences must be at least 1, got {n}")
    return key, dataset, n


def class_order(num_classes: int, seed: int) -> list[int]:
    """The class order of a run: a permutation of ``0..num_classes-1`` fixed by ``seed``."""
    g = make_generator(derive_seed(seed, "cl-class-order"))
    return torch.randperm(int(num_classes), generator=g).tolist()


@dataclass
class CLBenchmark:
    """A class-incremental benchmark: the Avalanche scenario plus what the protocols need."""

    name: str
    dataset: Any  # fyi_apps.data.Dataset
    scenario: Any  # avalanche CLScenario (train_stream, test_stream)
    class_order: list[int]
    experience_classes: list[list[int]]
    seed: int | None
    test_images: torch.Tensor  # normalised float, CPU
    test_labels: torch.Tensor

    @property
    def n_experiences(self) -> int:
        return len(self.experience_classes)

    @property
    def num_classes(self) -> int:
        return self.dataset.info.num_classes

    @property
    def train_stream(self):
        return self.scenario.train_stream

    @property
    def test_stream(self):
        return self.scenario.test_stream

    def describe(self) -> dict:
        return {"benchmark": self.name, "dataset": self.dataset.info.name, "source": self.dataset.source,
                "n_experiences": self.n_experiences, "class_order": list(self.class_order),
                "experience_classes": [list(c) for c in self.experience_classes], "seed": self.seed}


def make_benchmark(
    dataset,
    n_experiences: int = 5,
    *,
    seed: int | None = 0,
    order: Sequence[int] | None = None,
    name: str | None = None,
    root=None,
) -> CLBenchmark:
    """A class-incremental split of a fyi-apps dataset, built by Avalanche's ``class_incremental_benchmark``.

    ``dataset`` is a :class:`fyi_apps.data.Dataset` or a dataset name.  The class
    order is ``order`` if given, else :func:`class_order` of ``seed``; it is
    passed to Avalanche explicitly (Avalanche's own ``seed=`` would reseed
    torch's global RNG).  Images are the dataset's normalised float tensors;
    every item carries task label 0 (class-incremental).
    """
    from ..data import load_dataset

    if isinstance(dataset, str):
        dataset = load_dataset(dataset, root=root)
    info = dataset.info
    k = info.num_classes
    n = int(n_experiences)
    if n < 1 or k % n:
        divisors = [d for d in range(1, k + 1) if k % d == 0]
        raise FyiError(f"{info.name} has {k} classes, which cannot be split into {n_experiences} equal experiences; "
                       f"use --experiences in {divisors}")
    if order is None:
        order = class_order(k, 0 if seed is None else seed)
    order = [int(c) for c in order]
    if sorted(order) != list(range(k)):
        raise FyiError(f"class order must be a permutation of 0..{k - 1}, got {order}")
    for split_name, split in (("train", dataset.train), ("test", dataset.test)):
        missing = [c for c, cnt in enumerate(split.class_counts()) if cnt == 0]
        if missing:
            raise FyiError(f"{info.name} {split_name} split has no images of classes {missing}; "
                           "a class-incremental benchmark needs every class in both splits")
    x_train = dataset.normalize(dataset.train.images)
    x_test = dataset.normalize(dataset.test.images)
    train = _make_taskaware_tensor_classification_dataset(x_train, dataset.train.labels, task_labels=0)
    test = _make_taskaware_tensor_classification_dataset(x_test, dataset.test.labels, task_labels=0)
    scenario = class_incremental_benchmark({"train": train, "test": test}, class_order=order, num_experiences=n)
    per = k // n
    exp_classes = [order[i * per:(i + 1) * per] for i in range(n)]
    for i, exp in enumerate(scenario.train_stream):  # the split is Avalanche's: check it is the one we report
        if set(exp.classes_in_this_experience) != set(exp_classes[i]):
            raise RuntimeError(f"Avalanche put classes {sorted(exp.classes_in_this_experience)} in experience {i}, "
                               f"expected {sorted(exp_classes[i])}")
    return CLBenchmark(name=name or f"split-{info.name}", dataset=dataset, scenario=scenario, class_order=order,
                       experience_classes=exp_classes, seed=seed, test_images=x_test,
                       test_labels=dataset.test.labels.clone())


# --------------------------------------------------------------------------- #
# tensors <-> datasets
# --------------------------------------------------------------------------- #
def experience_tensors(data, batch_size: int = 2048) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """All ``(x, y, t)`` of an Avalanche dataset as CPU tensors (eval transforms, dataset order)."""
    from torch.utils.data import DataLoader

    if hasattr(data, "eval"):
        data = data.eval()
    if len(data) == 0:
        raise FyiError("the experience has no training data; check the benchmark")
    loader = DataLoader(data, batch_size=batch_size, shuffle=False, collate_fn=getattr(data, "collate_fn", None))
    xs, ys, ts = [], [], []
    for batch in loader:
        x, y = batch[0], torch.as_tensor(batch[1])
        t = torch.as_tensor(batch[2]) if len(batch) > 2 else torch.zeros_like(y)
        xs.append(torch.as_tensor(x).cpu())
        ys.append(y.cpu().long().reshape(-1))
        ts.append(t.cpu().long().reshape(-1))
    return torch.cat(xs), torch.cat(ys), torch.cat(ts)


def dataset_from_tensors(images: torch.Tensor, labels: torch.Tensor, info, classes: Sequence[int] | None = None,
                         source: str = "tensors"):
    """A :class:`fyi_apps.data.Dataset` of the given classes from normalised float images.

    Labels are remapped to ``0..len(classes)-1`` in the order of ``classes``
    (the distillation machinery works on contiguous labels); map results back
    with ``torch.tensor(classes)[labels]``.  Images are brought back to uint8
    with ``info``'s mean/std (exact for images that came from a fyi-apps
    dataset).  The test split is empty.
    """
    from ..data import Dataset, DatasetInfo, Split

    labels = torch.as_tensor(labels).long().reshape(-1)
    classes = sorted(set(labels.tolist())) if classes is None else [int(c) for c in classes]
    if images.dim() != 4 or images.shape[0] != labels.shape[0]:
        raise FyiError(f"need images [N, C, H, W] and N labels, got {tuple(images.shape)} and {labels.shape[0]}")
    c, h = images.shape[1], images.shape[-1]
    if c != info.channels or h != info.image_size:
        raise FyiError(f"images are {c}x{h}x{h} but {info.name} is {info.channels}x{info.image_size}x{info.image_size}; "
                       "pass the DatasetInfo of the dataset the benchmark was built from")
    keep = torch.zeros_like(labels, dtype=torch.bool)
    remap = torch.full((int(labels.max()) + 1 if labels.numel() else 1,), -1, dtype=torch.long)
    for i, cl in enumerate(classes):
        if cl < remap.numel():
            remap[cl] = i
        keep |= labels == cl
    x, y = images[keep].float(), remap[labels[keep]]
    mean = torch.tensor(info.mean, dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(info.std, dtype=torch.float32).view(1, -1, 1, 1)
    u8 = ((x.cpu() * std + mean) * 255.0).round_().clamp_(0, 255).to(torch.uint8)
    names = tuple(info.class_names[cl] if 0 <= cl < len(info.class_names) else str(cl) for cl in classes)
    sub_info = DatasetInfo(info.name, info.channels, info.image_size, names, tuple(info.mean), tuple(info.std))
    k = len(classes)
    empty = Split(torch.zeros((0, info.channels, info.image_size, info.image_size), dtype=torch.uint8),
                  torch.zeros(0, dtype=torch.long), k)
    return Dataset(sub_info, Split(u8, y, k), empty, f"{source}: classes {classes} of {info.name}")


def _tensor_dataset(images: torch.Tensor, labels: torch.Tensor, task_labels: torch.Tensor | int = 0):
    tl = task_labels if isinstance(task_labels, int) else [int(t) for t in task_labels.tolist()]
    return _make_taskaware_tensor_classification_dataset(images, labels.long(), task_labels=tl)


# --------------------------------------------------------------------------- #
# sources of memory images
# --------------------------------------------------------------------------- #
class MemorySource:
    """Where the memory images of newly seen classes come from.

    ``select(classes, per_class, x, y, agent_state=, experience=)`` returns
    ``(images, labels)``: exactly ``per_class`` normalised float images for each
    class of ``classes``, labelled with the original class ids.  ``x``/``y`` are
    the experience's training images and labels (only classes of this
    experience).  ``needs_data = False`` sources get ``x = None``.
    """

    kind: str = "source"
    needs_data: bool = True

    def select(self, classes, per_class, x, y, *, agent_state=None, experience=None):
        raise NotImplementedError

    def describe(self) -> dict:
        return {"kind": self.kind}


def _class_positions(y: torch.Tensor, c: int, per_class: int) -> torch.Tensor:
    idx = (y == c).nonzero().flatten()
    if idx.numel() < per_class:
        raise FyiError(f"class {c} has only {idx.numel()} training images in this experience, cannot keep "
                       f"{per_class}; use --ipc {idx.numel()} or less")
    return idx


class RandomSelection(MemorySource):
    """Class-balanced random real images (each class's own seeded stream)."""

    kind = "random"

    def __init__(self, seed: int = 0):
        self.seed = int(seed)

    def select(self, classes, per_class, x, y, *, agent_state=None, experience=None):
        picks = []
        for c in classes:
            idx = _class_positions(y, c, per_class)
            g = make_generator(derive_seed(self.seed, "cl-random", c))
            picks.append(idx[torch.randperm(idx.numel(), generator=g)[:per_class]])
        picks = torch.cat(picks)
        return x[picks].clone(), y[picks].clone()

    def describe(self) -> dict:
        return {"kind": self.kind, "seed": self.seed}


class _Embedder(torch.nn.Module):
    """``model.embed`` as a module, so that Avalanche's feature extractor can hook its output (layer ``""``)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model.embed(x).flatten(1)


class FirstKHerding(HerdingSelectionStrategy):
    """Avalanche's herding selection, stopped after the ``k`` images a buffer keeps.

    Avalanche ranks every image of a class (``n`` greedy steps over ``n``
    candidates, minutes for CIFAR's 5,000 images per class); a buffer needs only
    the first ``k``.  The first ``k`` indices are the same greedy choices; the
    others follow unranked, in their original order.
    """

    def __init__(self, model, layer_name: str, k: int):
        super().__init__(model, layer_name)
        self.k = int(k)

    def make_sorted_indices_from_features(self, features: torch.Tensor) -> list[int]:
        n = features.shape[0]
        center = features.mean(dim=0)
        running = torch.zeros_like(center)
        taken = torch.zeros(n, dtype=torch.bool, device=features.device)
        picks: list[int] = []
        for i in range(min(self.k, n)):
            candidates = running * i / (i + 1) + features / (i + 1)
            dist = (candidates - center).pow(2).sum(dim=1).masked_fill(taken, float("inf"))
            j = int(dist.argmin())
            picks.append(j)
            taken[j] = True
            running = candidates[j]
        return picks + torch.nonzero(~taken).flatten().tolist()


class HerdingSelection(MemorySource):
    """Herding (iCaRL) with Avalanche's ``HerdingSelectionStrategy`` on ``model.embed`` features.

    ``model``: the network whose embedding is used (in the replay protocol, the
    learner itself, as in iCaRL).  Without one, a fresh ``arch`` network is
    trained for ``feature_epochs`` on the experience's own data (its classes
    only) and used for the selection (``feature_epochs=0``: random network).
    """

    kind = "herding"

    def __init__(self, model: torch.nn.Module | None = None, *, arch: str = "convnet", feature_epochs: int = 1,
                 seed: int = 0, device="auto", batch_size: int = 256, info=None):
        self.model = model
        self.arch, self.feature_epochs, self.seed = arch, int(feature_epochs), int(seed)
        self.device, self.batch_size, self.info = device, int(batch_size), info

    def _feature_net(self, classes, x, y, device):
        from ..evaluate import EvalConfig, train_network
        from ..networks import create_model

        remap = {c: i for i, c in enumerate(classes)}
        keep = torch.isin(y, torch.tensor(list(classes)))
        xs, ys = x[keep], torch.tensor([remap[int(v)] for v in y[keep].tolist()], dtype=torch.long)
        net = create_model(self.arch, channels=x.shape[1], num_classes=len(classes), image_size=x.shape[-1],
                           seed=derive_seed(self.seed, "cl-herding-net", *classes))
        if self.feature_epochs > 0:
            train_network(net, xs, ys, EvalConfig(epochs=self.feature_epochs, dsa=False), lr=0.01,
                          generator=make_generator(derive_seed(self.seed, "cl-herding-train", *classes)),
                          device=device)
        return net.to(device)

    def select(self, classes, per_class, x, y, *, agent_state=None, experience=None):
        device = resolve_device(getattr(agent_state, "device", None) or self.device)
        net = self.model if self.model is not None else self._feature_net(classes, x, y, device)
        was_training = net.training
        state = SimpleNamespace(device=device, eval_mb_size=self.batch_size)
        herding = FirstKHerding(_Embedder(net), "", k=per_class)
        picks = []
        try:
            for c in classes:
                idx = _class_positions(y, c, per_class)
                order = herding.make_sorted_indices(strategy=state, data=_tensor_dataset(x[idx], y[idx]))
                picks.append(idx[torch.as_tensor(list(order), dtype=torch.long)[:per_class]])
        finally:
            net.train(was_training)
        picks = torch.cat(picks)
        return x[picks].clone(), y[picks].clone()

    def describe(self) -> dict:
        return {"kind": self.kind, "features": "learner" if self.model is not None else self.arch,
                "feature_epochs": None if self.model is not None else self.feature_epochs, "seed": self.seed,
                "selection": "avalanche.training.storage_policy.HerdingSelectionStrategy (first k)"}


class FromSynset(MemorySource):
    """Mode (a): a synthetic-set file (or :class:`~fyi_apps.synset.SyntheticSet`) supplies each new class's images.

    The first ``per_class`` images of the class, in file order, of the decoded set.
    """

    kind = "file"
    needs_data = False

    def __init__(self, synset, info=None):
        from ..synset import SyntheticSet, load_synset

        if not isinstance(synset, SyntheticSet):
            path = Path(synset)
            if not path.exists():
                raise FyiError(f"synthetic-set file {path} does not exist; check the path")
            self.path = str(path)
            synset = load_synset(path)
        else:
            self.path = None
        name = self.path or f"{synset.method} set"
        if synset.config.get("zca"):
            raise FyiError(f"synthetic set {name} lives in ZCA-whitened space, not the benchmark's normalised "
                           "images; distil without ZCA for a replay memory")
        info = getattr(info, "info", info)
        if info is not None:
            if (synset.channels, synset.image_size) != (info.channels, info.image_size):
                raise FyiError(f"synthetic set {name} has {synset.channels}x{synset.image_size}px images but "
                               f"{info.name} has {info.channels}x{info.image_size}px; use a set of the benchmark's dataset")
            if any(abs(a - b) > 0.02 for a, b in zip(synset.mean + synset.std, list(info.mean) + list(info.std))):
                raise FyiError(f"synthetic set {name} is normalised with mean {synset.mean} / std {synset.std} but "
                               f"{info.name} uses {list(info.mean)} / {list(info.std)}; use a set of the benchmark's dataset")
        self.synset = synset
        self.images, self.labels = (t.detach().cpu() for t in synset.decoded())

    def select(self, classes, per_class, x, y, *, agent_state=None, experience=None):
        imgs, labs = [], []
        for c in classes:
            idx = (self.labels == c).nonzero().flatten()
            if idx.numel() < per_class:
                raise FyiError(f"synthetic set {self.path or self.synset.method} has {idx.numel()} images of class {c} "
                               f"but the memory keeps {per_class} per class; use --ipc {idx.numel()} or a larger set")
            imgs.append(self.images[idx[:per_class]].float())
            labs.append(self.labels[idx[:per_class]].clone())
        return torch.cat(imgs), torch.cat(labs)

    def describe(self) -> dict:
        s = self.synset
        return {"kind": self.kind, "path": self.path, "method": s.method, "fyi": s.fyi, "ipc": s.ipc,
                "dataset": s.dataset}


class OnlineDistillation(MemorySource):
    """Mode (b): distil the new classes of each experience from that experience's data alone.

    Runs a registered plain-encoding method (``dm``, ``dsa``, ``dc``) through
    :class:`fyi_apps.distill.Distiller` on a dataset made of the experience's
    images of the new classes; the distilled images get the original class ids.
    ``fyi``: ``None`` or a view name (``"flip"`` is the paper).  ``info`` (the
    benchmark dataset's :class:`~fyi_apps.data.DatasetInfo`) gives mean/std.
    Every distillation is recorded in ``self.log``.
    """

    kind = "distill"

    def __init__(self, method: str = "dm", *, info, fyi: str | None = None, iterations: int | None = None,
                 lr_img: float | None = None, batch_real: int | None = None, init: str = "real",
                 arch: str = "convnet", dsa: bool | None = None, options: dict | None = None, seed: int = 0,
                 device="auto", bf16: bool = False, progress: bool = False, cache_dir: str | Path | None = None):
        from ..distill import resolve_config

        if str(method).lower() not in ONLINE_METHODS:
            raise FyiError(f"online distillation supports {', '.join(ONLINE_METHODS)}, not {method!r} "
                           "(IDC stores encoded images, MTT/FTD need expert trajectories); use a file:PATH buffer")
        if info is None:
            raise FyiError("online distillation needs the dataset's info (mean/std); pass info=dataset.info")
        self.info = getattr(info, "info", info)
        self.method, self.fyi = str(method).lower(), fyi
        self.iterations, self.lr_img, self.batch_real, self.init = iterations, lr_img, batch_real, init
        self.arch, self.dsa, self.options = arch, dsa, dict(options or {})
        self.seed, self.device, self.bf16, self.progress = int(seed), device, bool(bf16), progress
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.log: list[dict] = []
        resolve_config(self._config(1, seed=0))  # fail now, not after the first experience

    def _config(self, ipc: int, seed: int):
        from ..distill import DistillConfig

        return DistillConfig(method=self.method, dataset=self.info.name, ipc=int(ipc), fyi=self.fyi,
                             iterations=self.iterations, lr_img=self.lr_img, batch_real=self.batch_real,
                             init=self.init, arch=self.arch, dsa=self.dsa, seed=seed, checkpoint_every=10**9,
                             bf16=self.bf16, options=dict(self.options))

    def _cache_path(self, cfg, sub) -> Path | None:
        """Same config, classes and pixels -> same file (distillation is deterministic given its seed)."""
        if self.cache_dir is None:
            return None
        import hashlib
        import json

        from ..distill import resolve_config

        h = hashlib.sha256(json.dumps(resolve_config(cfg).identity(), sort_keys=True, default=str).encode())
        h.update(json.dumps(list(sub.info.class_names)).encode())
        h.update(sub.train.images.numpy().tobytes())
        h.update(sub.train.labels.numpy().tobytes())
        tag = self.method + (f"-fyi-{self.fyi}" if self.fyi else "")
        return self.cache_dir / f"{tag}_ipc{cfg.ipc}_{h.hexdigest()[:20]}.fyi.safetensors"

    def select(self, classes, per_class, x, y, *, agent_state=None, experience=None):
        from ..distill import Distiller
        from ..synset import load_synset, save_synset

        sub = dataset_from_tensors(x, y, self.info, classes, source="experience")
        cfg = self._config(per_class, derive_seed(self.seed, "cl-distill", self.method, self.fyi or "", *classes))
        t0 = time.perf_counter()
        path = self._cache_path(cfg, sub)
        cached = path is not None and path.exists()
        if cached:
            syn = load_synset(path)
        else:
            syn = Distiller(cfg, sub, device=self.device).run(None, progress=self.progress)
            if path is not None:
                save_synset(path, syn)
        images, labels = syn.decoded()
        labels = torch.tensor(list(classes), dtype=torch.long)[labels.cpu()]
        self.log.append({"classes": list(classes), "ipc": per_class, "iterations": syn.extra.get("iterations_done"),
                         "final_loss": syn.extra.get("final_loss"), "seconds": time.perf_counter() - t0,
                         "distill_seconds": syn.extra.get("seconds"), "cached": cached,
                         "file": None if path is None else str(path), "config": dataclasses.asdict(cfg)})
        return images.detach().float().cpu(), labels

    def describe(self) -> dict:
        return {"kind": self.kind, "method": self.method, "fyi": self.fyi, "iterations": self.iterations,
                "lr_img": self.lr_img, "batch_real": self.batch_real, "init": self.init, "arch": self.arch,
                "options": self.options, "seed": self.seed}


# --------------------------------------------------------------------------- #
# the storage policy
# --------------------------------------------------------------------------- #
class SyntheticReplayBuffer(ExemplarsBuffer):
    """An Avalanche storage policy holding ``ipc`` images per seen class, filled class by class.

    ``post_adapt(agent_state, exp)`` (called by ``ReplayPlugin`` after each
    training experience) asks ``source`` for the images of every class of
    ``exp`` not seen before; classes already in memory keep their images.
    Per-class quota: ``min(ipc, max_size // number of seen classes)``, so the
    memory never exceeds ``max_size``; with ``max_size >= ipc * classes`` every
    seen class holds exactly ``ipc`` images.  ``resize`` (Avalanche API) drops
    the last images of each class when the quota shrinks.  Items are ``(x, y, t)``;
    ``t`` is the task label of the class's experience.
    """

    def __init__(self, max_size: int, ipc: int, source: MemorySource):
        ipc, max_size = int(ipc), int(max_size)
        if ipc < 1:
            raise FyiError(f"--ipc must be at least 1, got {ipc}")
        if max_size < ipc:
            raise FyiError(f"a memory of {max_size} images cannot hold {ipc} images of even one class; "
                           f"use mem_size >= ipc x number of classes")
        super().__init__(max_size)
        self.ipc, self.source = ipc, source
        self._images: dict[int, torch.Tensor] = {}  # class -> images, in order of arrival
        self._tasks: dict[int, int] = {}
        self.history: list[dict] = []

    # ------------------------------------------------------------------ views
    @property
    def seen_classes(self) -> list[int]:
        return list(self._images)

    def class_counts(self) -> dict[int, int]:
        return {c: int(v.shape[0]) for c, v in self._images.items()}

    def _cat(self):
        if not self._images:
            return None
        imgs = torch.cat(list(self._images.values()))
        labels = torch.cat([torch.full((v.shape[0],), c, dtype=torch.long) for c, v in self._images.items()])
        tasks = torch.cat([torch.full((v.shape[0],), self._tasks[c], dtype=torch.long) for c, v in self._images.items()])
        return imgs, labels, tasks

    @property
    def images(self) -> torch.Tensor:
        out = self._cat()
        return out[0] if out else torch.zeros(0)

    @property
    def labels(self) -> torch.Tensor:
        out = self._cat()
        return out[1] if out else torch.zeros(0, dtype=torch.long)

    def __len__(self) -> int:
        return sum(v.shape[0] for v in self._images.values())

    def quota(self, n_classes: int | None = None) -> int:
        n = len(self._images) if n_classes is None else int(n_classes)
        return self.ipc if n == 0 else min(self.ipc, self.max_size // n)

    # ------------------------------------------------------------------ Avalanche API
    def update(self, strategy, **kwargs):
        """What ``ReplayPlugin`` calls after each training experience (Avalanche 0.6): ``post_adapt``.

        Overridden only to skip the base class's deprecation warning; the work is in :meth:`post_adapt`.
        """
        self.post_adapt(strategy, strategy.experience)

    def post_adapt(self, agent_state, exp):
        data = exp.dataset
        targets = torch.as_tensor(list(data.targets), dtype=torch.long)
        new = [c for c in sorted(set(targets.tolist())) if c not in self._images]
        if not new:
            return
        per_class = self.quota(len(self._images) + len(new))
        if per_class < self.ipc:
            warnings.warn(f"replay memory of {self.max_size} images holds only {per_class} per class for "
                          f"{len(self._images) + len(new)} classes (ipc {self.ipc})", stacklevel=2)
        tasks = torch.as_tensor(list(data.targets_task_labels), dtype=torch.long) \
            if hasattr(data, "targets_task_labels") else torch.zeros_like(targets)
        if per_class > 0:
            if self.source.needs_data:
                x, y, _ = experience_tensors(data)
            else:
                x, y = None, targets
            images, labels = self.source.select(new, per_class, x, y, agent_state=agent_state, experience=exp)
            shape = tuple(x.shape[1:]) if x is not None else tuple(torch.as_tensor(data[0][0]).shape)
            self._check(images, labels, new, per_class, shape)
        else:  # the memory is too small for even one image per class: the class is seen, holds nothing
            shape = tuple(torch.as_tensor(data[0][0]).shape)
            images, labels = torch.zeros((0,) + shape), torch.zeros(0, dtype=torch.long)
        for c in new:
            self._tasks[c] = int(tasks[targets == c][0])
            self._images[c] = images[labels == c].detach().cpu().float().contiguous()
        self._shrink()
        self._rebuild()
        self.history.append({"experience": getattr(exp, "current_experience", None), "new_classes": new,
                             "per_class": per_class, "size": len(self)})

    def resize(self, strategy, new_size: int):
        new_size = int(new_size)
        if new_size < 0:
            raise FyiError(f"memory size must be >= 0, got {new_size}")
        self.max_size = new_size
        self._shrink()
        self._rebuild()

    # ------------------------------------------------------------------ internals
    def _check(self, images, labels, classes, per_class, shape):
        if images.dim() != 4 or images.shape[0] != labels.shape[0]:
            raise FyiError(f"{self.source.kind} returned {tuple(images.shape)} images for {labels.shape[0]} labels")
        if tuple(images.shape[1:]) != tuple(shape):
            raise FyiError(f"{self.source.kind} images are {tuple(images.shape[1:])} but the experience's are "
                           f"{tuple(shape)}; use a synthetic set of the benchmark's dataset")
        for c in classes:
            got = int((labels == c).sum())
            if got != per_class:
                raise RuntimeError(f"{self.source.kind} gave {got} images of class {c}, expected {per_class}")
        if not set(labels.tolist()) <= set(classes):
            raise RuntimeError(f"{self.source.kind} returned labels outside {classes}")

    def _shrink(self):
        q = self.quota()
        for c in list(self._images):
            if self._images[c].shape[0] > q:
                self._images[c] = self._images[c][:q].clone()

    def _rebuild(self):
        out = self._cat()
        if out is None or out[0].shape[0] == 0:
            self.buffer = concat_datasets([])
            return
        self.buffer = _tensor_dataset(*out)

    def describe(self) -> dict:
        return {"max_size": self.max_size, "ipc": self.ipc, "source": self.source.describe(),
                "class_counts": {str(c): n for c, n in self.class_counts().items()}}


def make_buffer(
    kind: str,
    *,
    ipc: int,
    num_classes: int | None = None,
    max_size: int | None = None,
    info=None,
    seed: int = 0,
    device="auto",
    model: torch.nn.Module | None = None,
    iterations: int | dict | None = None,
    lr_img: float | None = None,
    batch_real: int | dict | None = None,
    distill_options: dict | None = None,
    herding_epochs: int = 1,
    arch: str = "convnet",
    bf16: bool = False,
    progress: bool = False,
    cache_dir: str | Path | None = None,
) -> SyntheticReplayBuffer:
    """A :class:`SyntheticReplayBuffer` of the given kind.

    ``kind``: ``random``, ``herding``, ``<method>`` or ``<method>+fyi`` (online
    distillation; ``+fyi`` is the paper's flip, ``+fyi:vflip`` etc. other views)
    or ``file:PATH`` / a path to a synthetic-set file.  ``max_size`` defaults to
    ``ipc * num_classes``.  ``iterations`` and ``batch_real`` may be dicts per
    method (``{"dm": 500, "dsa": 50}``).  ``model``: the learner, used by herding
    (without it herding trains its own feature network for ``herding_epochs``).
    ``cache_dir``: distilled images are kept there and reused by identical
    distillations (same config, classes and pixels), e.g. across protocols or
    after an interruption.
    """
    text = str(kind).strip()
    low = text.lower()
    if max_size is None:
        if num_classes is None:
            raise FyiError("make_buffer needs max_size or num_classes")
        max_size = int(ipc) * int(num_classes)
    method, _, view = low.partition("+")
    if low == "random":
        source: MemorySource = RandomSelection(seed=seed)
    elif low == "herding":
        source = HerdingSelection(model, arch=arch, feature_epochs=herding_epochs, seed=seed, device=device,
                                  info=info)
    elif method in ONLINE_METHODS:
        fyi = None
        if view:
            name, _, sub = view.partition(":")
            if name != "fyi":
                raise FyiError(f"unknown buffer {kind!r}; use one of {', '.join(BUFFER_KINDS)} or file:PATH")
            fyi = sub or "flip"
        its = iterations.get(method) if isinstance(iterations, dict) else iterations
        br = batch_real.get(method) if isinstance(batch_real, dict) else batch_real
        source = OnlineDistillation(method, info=info, fyi=fyi, iterations=its, lr_img=lr_img, batch_real=br,
                                    arch=arch, options=distill_options, seed=seed, device=device, bf16=bf16,
                                    progress=progress, cache_dir=cache_dir)
    elif low.startswith("file:") or text.endswith(".safetensors") or Path(text).exists():
        source = FromSynset(text[5:] if low.startswith("file:") else text, info=info)
    else:
        raise FyiError(f"unknown buffer {kind!r}; use one of {', '.join(BUFFER_KINDS)}, or file:PATH for a "
                       "synthetic-set file")
    return SyntheticReplayBuffer(max_size, ipc, source)


# --------------------------------------------------------------------------- #
# protocols
# --------------------------------------------------------------------------- #
# Avalanche's metric names (class-incremental streams carry no task part in the name)
def _key_acc_exp(j: int) -> str:
    return f"Top1_Acc_Exp/eval_phase/test_stream/Exp{j:03d}"


def _key_forget_exp(j: int) -> str:
    return f"ExperienceForgetting/eval_phase/test_stream/Exp{j:03d}"


KEY_STREAM_ACC = "Top1_Acc_Stream/eval_phase/test_stream"
KEY_STREAM_FORGET = "StreamForgetting/eval_phase/test_stream"


def _scalars(metrics: dict) -> dict:
    out = {}
    for k, v in metrics.items():
        if isinstance(v, torch.Tensor) and v.numel() == 1:
            v = float(v)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out[k] = float(v)
    return out


def run_gdumb(
    bench: CLBenchmark,
    buffer: SyntheticReplayBuffer,
    *,
    arch: str = "convnet",
    cfg=None,
    seed: int = 0,
    device="auto",
    progress: bool = False,
) -> dict:
    """Protocol 1 (the DM paper's): after each experience, fill the memory, train a fresh network on it only.

    The network (``arch``, one output per class of the dataset) is trained with
    the fyi-apps evaluation protocol (``cfg``: :class:`fyi_apps.evaluate.EvalConfig`,
    DSA by default) and tested on each seen experience's test data.  The record
    uses Avalanche's metric names; forgetting of experience ``j`` is its accuracy
    right after the step that added it minus its current accuracy, as in
    Avalanche's ``ExperienceForgetting``; stream forgetting averages it over the
    experiences trained before the current one.
    """
    from tqdm.auto import tqdm

    from ..evaluate import EvalConfig, test_accuracy, train_network
    from ..networks import create_model

    cfg = cfg or EvalConfig(epochs=300)
    device = resolve_device(device)
    info = bench.dataset.info
    lr = cfg.resolved_lr()
    state = SimpleNamespace(model=None, device=device, eval_mb_size=cfg.test_batch_size, experience=None)
    history, initial, memory = [], {}, []
    bar = tqdm(list(enumerate(bench.train_stream)), desc=f"gdumb {bench.name}", disable=not progress, leave=False,
               dynamic_ncols=True)
    for i, exp in bar:
        state.experience = exp
        t0 = time.perf_counter()
        buffer.post_adapt(state, exp)
        t_mem = time.perf_counter() - t0
        x, y = buffer.images, buffer.labels
        net = create_model(arch, channels=info.channels, num_classes=info.num_classes, image_size=info.image_size,
                           seed=derive_seed(seed, "cl-gdumb-net", i))
        g = make_generator(derive_seed(seed, "cl-gdumb-train", i))
        t1 = time.perf_counter()
        train_network(net, x, y, cfg, lr=lr, generator=g, device=device, desc=f"step {i}")
        t_train = time.perf_counter() - t1
        metrics, correct, total, forgets = {}, 0, 0, []
        for j in range(i + 1):
            mask = torch.isin(bench.test_labels, torch.tensor(bench.experience_classes[j]))
            xt, yt = bench.test_images[mask], bench.test_labels[mask]
            acc = test_accuracy(net, xt, yt, device=device, batch_size=cfg.test_batch_size, bf16=cfg.bf16)
            metrics[_key_acc_exp(j)] = acc
            correct += acc * yt.numel()
            total += yt.numel()
            if j == i:
                initial[j] = acc
            else:
                f = initial[j] - acc
                metrics[_key_forget_exp(j)] = f
                forgets.append(f)
        metrics[KEY_STREAM_ACC] = correct / total
        metrics[KEY_STREAM_FORGET] = sum(forgets) / len(forgets) if forgets else 0.0
        history.append(metrics)
        memory.append({"size": len(buffer), "class_counts": {str(c): n for c, n in buffer.class_counts().items()},
                       "seconds_memory": t_mem, "seconds_train": t_train})
        bar.set_postfix(acc=f"{100 * metrics[KEY_STREAM_ACC]:.1f}")
    return {"protocol": "gdumb", "history": history, "memory": memory,
            "train": {"arch": arch, "eval_config": dataclasses.asdict(cfg), "lr": lr}}


STRATEGIES = ("naive", "ewc", "lwf")


@contextlib.contextmanager
def _seeded_global_rng(seed: int, device: torch.device):
    """Avalanche's data loaders shuffle with torch's global RNG; run them on a forked, seeded copy.

    The caller's global RNG state is restored on exit (``torch.random.fork_rng``).
    """
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.random.default_generator.manual_seed(int(seed) % (2**63))
        if device.type == "cuda":
            torch.cuda.manual_seed(int(seed) % (2**63))
        yield


def make_strategy(name: str, model, buffer: SyntheticReplayBuffer, *, lr: float = 0.01, epochs: int = 1,
                  batch_size: int = 128, batch_size_mem: int | None = None, device="auto",
                  extra_plugins: Sequence = (), ewc_lambda: float = 1.0, lwf_alpha: float = 1.0,
                  lwf_temperature: float = 2.0):
    """An Avalanche strategy (``naive``, ``ewc`` or ``lwf``) with ``ReplayPlugin(storage_policy=buffer)``.

    SGD (momentum 0.9, weight decay 5e-4), cross-entropy, and an
    ``EvaluationPlugin`` with accuracy and forgetting per experience and stream
    (no loggers: results are returned by ``strategy.eval``).
    """
    from avalanche.evaluation.metrics import accuracy_metrics, forgetting_metrics
    from avalanche.training.plugins import EvaluationPlugin, ReplayPlugin
    from avalanche.training.supervised import EWC, LwF, Naive

    name = str(name).lower()
    if name not in STRATEGIES:
        raise FyiError(f"unknown strategy {name!r}; use one of {', '.join(STRATEGIES)}")
    device = resolve_device(device)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No loggers specified")
        evaluator = EvaluationPlugin(accuracy_metrics(experience=True, stream=True),
                                     forgetting_metrics(experience=True, stream=True), loggers=[])
    plugins = [ReplayPlugin(mem_size=buffer.max_size, batch_size_mem=batch_size_mem, storage_policy=buffer),
               *extra_plugins]
    common = dict(model=model, optimizer=opt, criterion=torch.nn.CrossEntropyLoss(), train_mb_size=batch_size,
                  train_epochs=epochs, eval_mb_size=max(batch_size, 256), device=device, plugins=plugins,
                  evaluator=evaluator)
    if name == "naive":
        return Naive(**common)
    if name == "ewc":
        return EWC(ewc_lambda=ewc_lambda, **common)
    return LwF(alpha=lwf_alpha, temperature=lwf_temperature, **common)


def run_replay(
    bench: CLBenchmark,
    buffer: SyntheticReplayBuffer,
    *,
    model: torch.nn.Module | None = None,
    strategy: str = "naive",
    arch: str = "convnet",
    epochs: int = 1,
    lr: float = 0.01,
    batch_size: int = 128,
    seed: int = 0,
    device="auto",
    extra_plugins: Sequence = (),
    progress: bool = False,
) -> dict:
    """Protocol 2: an Avalanche strategy with ``ReplayPlugin`` trains on each experience plus the memory.

    After each experience the model is evaluated on the test data of every seen
    experience with Avalanche's ``EvaluationPlugin`` (accuracy and forgetting,
    per experience and stream).  ``model`` defaults to a fresh ``arch`` with one
    output per class (pass the same model to :func:`make_buffer` for herding).
    """
    from tqdm.auto import tqdm

    from ..networks import create_model

    device = resolve_device(device)
    info = bench.dataset.info
    if model is None:
        model = create_model(arch, channels=info.channels, num_classes=info.num_classes,
                             image_size=info.image_size, seed=derive_seed(seed, "cl-replay-net"))
    strat = make_strategy(strategy, model, buffer, lr=lr, epochs=epochs, batch_size=batch_size, device=device,
                          extra_plugins=extra_plugins)
    history, memory = [], []
    bar = tqdm(list(enumerate(bench.train_stream)), desc=f"{strategy}+replay {bench.name}", disable=not progress,
               leave=False, dynamic_ncols=True)
    with _seeded_global_rng(derive_seed(seed, "cl-replay-loader"), device):
        for i, exp in bar:
            t0 = time.perf_counter()
            strat.train(exp, eval_streams=[])
            t_train = time.perf_counter() - t0
            metrics = _scalars(strat.eval(bench.test_stream[: i + 1]))
            history.append(metrics)
            memory.append({"size": len(buffer), "class_counts": {str(c): n for c, n in buffer.class_counts().items()},
                           "seconds_train": t_train})
            bar.set_postfix(acc=f"{100 * metrics.get(KEY_STREAM_ACC, float('nan')):.1f}")
    return {"protocol": "replay", "history": history, "memory": memory,
            "train": {"strategy": strategy, "arch": arch, "epochs": epochs, "lr": lr, "batch_size": batch_size,
                      "optimizer": "SGD momentum 0.9 wd 5e-4"}}


def summarise(record: dict, experience_classes: Sequence[Sequence[int]]) -> dict:
    """Accuracy matrix, stream accuracy per step, forgetting, from a run's Avalanche-named metrics."""
    n = len(experience_classes)
    hist = record["history"]
    acc = [[None] * n for _ in hist]
    forget = [[None] * n for _ in hist]
    pat_acc = re.compile(r"^Top1_Acc_Exp/eval_phase/test_stream(?:/Task\d+)?/Exp(\d+)$")
    pat_forget = re.compile(r"^ExperienceForgetting/eval_phase/test_stream(?:/Task\d+)?/Exp(\d+)$")
    pat_stream_acc = re.compile(r"^Top1_Acc_Stream/eval_phase/test_stream(?:/Task\d+)?$")
    stream_acc, stream_forget = [], []
    for i, m in enumerate(hist):
        for k, v in m.items():
            if (g := pat_acc.match(k)) and int(g.group(1)) < n:
                acc[i][int(g.group(1))] = v
            elif (g := pat_forget.match(k)) and int(g.group(1)) < n:
                forget[i][int(g.group(1))] = v
        stream_acc.append(next((v for k, v in m.items() if pat_stream_acc.match(k)), None))
        stream_forget.append(m.get(KEY_STREAM_FORGET))
    classes_seen = [sum(len(c) for c in experience_classes[: i + 1]) for i in range(len(hist))]
    valid = [a for a in stream_acc if a is not None]
    return {
        "classes_seen": classes_seen,
        "stream_acc": stream_acc,
        "stream_forgetting": stream_forget,
        "acc_matrix": acc,
        "forgetting_matrix": forget,
        "final_acc": stream_acc[-1] if stream_acc else None,
        "final_forgetting": stream_forget[-1] if stream_forget else None,
        "avg_incremental_acc": sum(valid) / len(valid) if valid else None,
    }


# --------------------------------------------------------------------------- #
# experiments: buffers x class orders, files
# --------------------------------------------------------------------------- #
@dataclass
class CLConfig:
    """Budgets and settings of a continual-learning experiment (every field is a CLI option)."""

    benchmark: str = "split-cifar10"
    buffers: list[str] = field(default_factory=lambda: ["random", "herding", "dm", "dm+fyi"])
    ipc: int = 10
    protocol: str = "gdumb"  # gdumb | replay
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])  # one class order per seed
    experiences: int | None = None
    arch: str = "convnet"
    # online distillation, per experience (defaults: a budget for a 2-core CPU, far below the papers'
    # 20,000 DM / 1,000 DSA iterations with 256 real images per class and DSA loops (10, 50) at IPC 10)
    iterations: dict = field(default_factory=lambda: {"dm": 300, "dsa": 10, "dc": 10})
    batch_real: int | dict | None = field(default_factory=lambda: {"dm": 64, "dsa": 64, "dc": 64})
    lr_img: float | None = None
    distill_options: dict = field(default_factory=lambda: {"outer_loop": 5, "inner_loop": 10})  # DSA/DC loops
    herding_epochs: int = 1
    # protocol 1 (gdumb): fyi-apps evaluation protocol (fewer epochs than the paper's 1000)
    epochs: int = 100
    dsa: bool = True
    # protocol 2 (replay)
    strategy: str = "naive"
    train_epochs: int = 3
    lr: float = 0.01
    batch_size: int = 128
    bf16: bool = False
    distill_cache: str | None = None  # folder reused across runs/protocols (None: no cache)


def _mean_std(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    vals = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if not vals:
        return None, None
    m = sum(vals) / len(vals)
    return m, math.sqrt(sum((v - m) ** 2 for v in vals) / len(vals))


def run_one(cfg: CLConfig, kind: str, seed: int, *, dataset=None, root=None, device="auto",
            progress: bool = False) -> dict:
    """One buffer kind on one class order (``seed``): the record plus its summary."""
    from ..evaluate import EvalConfig
    from ..networks import create_model

    key, ds_name, n_exp = resolve_benchmark(cfg.benchmark, cfg.experiences)
    device = resolve_device(device)
    bench = make_benchmark(dataset if dataset is not None else ds_name, n_exp, seed=seed, name=key, root=root)
    info = bench.dataset.info
    model = None
    if cfg.protocol == "replay":
        model = create_model(cfg.arch, channels=info.channels, num_classes=info.num_classes,
                             image_size=info.image_size, seed=derive_seed(seed, "cl-replay-net"))
    buffer = make_buffer(kind, ipc=cfg.ipc, num_classes=info.num_classes, info=info, seed=seed, device=device,
                         model=model if cfg.protocol == "replay" else None, iterations=cfg.iterations,
                         lr_img=cfg.lr_img, batch_real=cfg.batch_real, distill_options=cfg.distill_options,
                         herding_epochs=cfg.herding_epochs, arch=cfg.arch, bf16=cfg.bf16, progress=False,
                         cache_dir=cfg.distill_cache)
    t0 = time.perf_counter()
    if cfg.protocol == "gdumb":
        rec = run_gdumb(bench, buffer, arch=cfg.arch, seed=seed, device=device, progress=progress,
                        cfg=EvalConfig(epochs=cfg.epochs, dsa=cfg.dsa, lr=cfg.lr, bf16=cfg.bf16))
    elif cfg.protocol == "replay":
        rec = run_replay(bench, buffer, model=model, strategy=cfg.strategy, arch=cfg.arch, epochs=cfg.train_epochs,
                         lr=cfg.lr, batch_size=cfg.batch_size, seed=seed, device=device, progress=progress)
    else:
        raise FyiError(f"unknown protocol {cfg.protocol!r}; use gdumb or replay")
    rec.update(buffer=kind, seed=seed, seconds=time.perf_counter() - t0, benchmark=bench.describe(),
               memory_policy=buffer.describe(), summary=summarise(rec, bench.experience_classes))
    if isinstance(buffer.source, OnlineDistillation):
        rec["distillation"] = [{k: v for k, v in row.items() if k != "config"} for row in buffer.source.log]
        if buffer.source.log:
            rec["distill_config"] = buffer.source.log[0]["config"]
    return rec


def aggregate(runs: Sequence[dict]) -> dict:
    """Per buffer: mean and std over class orders of final accuracy, forgetting and the curve."""
    out: dict[str, dict] = {}
    for kind in dict.fromkeys(r["buffer"] for r in runs):
        rs = [r for r in runs if r["buffer"] == kind]
        s = [r["summary"] for r in rs]
        steps = min(len(x["stream_acc"]) for x in s)
        curve = [_mean_std([x["stream_acc"][i] for x in s]) for i in range(steps)]
        fa, fs = _mean_std([x["final_acc"] for x in s])
        ga, gs = _mean_std([x["final_forgetting"] for x in s])
        ia, is_ = _mean_std([x["avg_incremental_acc"] for x in s])
        out[kind] = {"seeds": [r["seed"] for r in rs], "final_acc": fa, "final_acc_std": fs,
                     "forgetting": ga, "forgetting_std": gs, "avg_incremental_acc": ia,
                     "avg_incremental_acc_std": is_, "classes_seen": s[0]["classes_seen"][:steps],
                     "curve_mean": [c[0] for c in curve], "curve_std": [c[1] for c in curve],
                     "seconds": sum(r["seconds"] for r in rs)}
    return out


def results_table(agg: dict, markdown: bool = False) -> str:
    from ..report import pct, table

    rows = []
    for kind, a in agg.items():
        rows.append([kind, pct(a["final_acc"], a["final_acc_std"]) if a["final_acc"] is not None else "-",
                     pct(a["forgetting"], a["forgetting_std"]) if a["forgetting"] is not None else "-",
                     pct(a["avg_incremental_acc"], a["avg_incremental_acc_std"]) if a["avg_incremental_acc"] is not None else "-",
                     len(a["seeds"]), f"{a['seconds'] / 60:.1f}"])
    return table(rows, ["buffer", "final acc %", "forgetting %", "avg incr. acc %", "orders", "minutes"],
                 markdown=markdown)


def write_outputs(payload: dict, stem: str | Path) -> dict[str, Path]:
    """``<stem>.json``, ``<stem>.csv`` (one row per buffer, order, step) and ``<stem>.png`` (accuracy vs classes)."""
    from ..plots import accuracy_vs_classes
    from ..runtime import atomic_path, write_json

    stem = Path(stem)
    paths = {"json": stem.with_name(stem.name + ".json"), "csv": stem.with_name(stem.name + ".csv"),
             "png": stem.with_name(stem.name + ".png")}
    write_json(paths["json"], payload)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["buffer", "seed", "step", "classes_seen", "stream_acc", "stream_forgetting", "memory_size"])
    for r in payload["runs"]:
        s = r["summary"]
        for i, a in enumerate(s["stream_acc"]):
            w.writerow([r["buffer"], r["seed"], i, s["classes_seen"][i], a, s["stream_forgetting"][i],
                        r["memory"][i]["size"]])
    with atomic_path(paths["csv"]) as tmp:
        tmp.write_text(buf.getvalue())
    curves = {k: {"classes": a["classes_seen"], "mean": a["curve_mean"], "std": a["curve_std"]}
              for k, a in payload["aggregate"].items()}
    c = payload["config"]
    accuracy_vs_classes(curves, paths["png"],
                        title=f"{c['benchmark']}, {c['protocol']} protocol, IPC {c['ipc']} "
                              f"(mean over {len(c['seeds'])} class orders)")
    return paths


def _run_key(cfg: CLConfig, kind: str, seed: int) -> str:
    """What a finished run depends on (everything but the other buffers and seeds)."""
    import hashlib
    import json

    d = dataclasses.asdict(cfg)
    for k in ("buffers", "seeds", "distill_cache"):
        d.pop(k)
    d.update(buffer=kind, seed=int(seed))
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:20]


def run_experiment(cfg: CLConfig, *, out: str | Path | None = None, root=None, device="auto",
                   progress: bool = True, command: str | None = None, resume_dir: str | Path | None = None) -> dict:
    """Every buffer of ``cfg`` on every class order; returns (and writes, if ``out``) the results.

    ``resume_dir``: each finished (buffer, class order) run is kept there as
    JSON and reused when the same command runs again (same settings), so an
    interrupted experiment continues where it stopped.
    """
    import json

    from tqdm.auto import tqdm

    from ..baselines import check_ipc
    from ..data import load_dataset
    from ..runtime import package_versions, write_json

    key, ds_name, n_exp = resolve_benchmark(cfg.benchmark, cfg.experiences)
    if cfg.protocol not in ("gdumb", "replay"):
        raise FyiError(f"unknown protocol {cfg.protocol!r}; use gdumb or replay")
    if cfg.protocol == "replay" and cfg.strategy not in STRATEGIES:
        raise FyiError(f"unknown strategy {cfg.strategy!r}; use one of {', '.join(STRATEGIES)}")
    if not cfg.seeds:
        raise FyiError("--seeds must be at least 1")
    device = resolve_device(device)
    dataset = load_dataset(ds_name, root=root)
    k = dataset.info.num_classes
    if k % n_exp:
        raise FyiError(f"{dataset.info.name} has {k} classes, which cannot be split into {n_exp} equal experiences; "
                       f"use --experiences in {[d for d in range(1, k + 1) if k % d == 0]}")
    check_ipc(dataset, cfg.ipc)
    for kind in cfg.buffers:  # fail fast on a bad buffer name or option
        make_buffer(kind, ipc=cfg.ipc, num_classes=dataset.info.num_classes, info=dataset.info,
                    iterations=cfg.iterations, distill_options=cfg.distill_options, device=device)
    runs = []
    jobs = [(kind, s) for kind in cfg.buffers for s in cfg.seeds]
    bar = tqdm(jobs, desc=f"cl {key}", disable=not progress, dynamic_ncols=True)
    for kind, s in bar:
        bar.set_postfix(buffer=kind, order=s)
        rkey = _run_key(cfg, kind, s)
        path = None
        if resume_dir is not None:
            safe = re.sub(r"[^A-Za-z0-9+.-]+", "_", kind)[-60:]
            path = Path(resume_dir) / f"{key}-{n_exp}_{cfg.protocol}_ipc{cfg.ipc}_{safe}_seed{s}_{rkey}.json"
            if path.exists():
                try:
                    runs.append(json.loads(path.read_text()))
                    continue
                except (OSError, ValueError):
                    pass  # unreadable: run again
        rec = run_one(cfg, kind, s, dataset=dataset, device=device, progress=progress)
        rec["run_key"] = rkey
        if path is not None:
            write_json(path, rec)
        runs.append(rec)
    payload = {"config": dataclasses.asdict(cfg), "benchmark": key, "dataset": dataset.info.name,
               "source": dataset.source, "n_experiences": n_exp, "device": str(device),
               "aggregate": aggregate(runs), "runs": runs, "command": command,
               "versions": package_versions(), "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
    if out is not None:
        payload["files"] = {k: str(v) for k, v in write_outputs(payload, out).items()}
    return payload
