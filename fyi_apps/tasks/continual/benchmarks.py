"""Class-incremental benchmarks built from fyi-apps's own datasets, and tensors <-> Avalanche datasets.

:func:`make_benchmark` builds Split CIFAR-10/100, Split Fashion-MNIST and
Split digits with Avalanche's ``class_incremental_benchmark`` from fyi-apps's
datasets (never Avalanche's downloading classes), normalised with the
dataset's mean/std so that real and synthetic images live in the same space.
Class orders come from seeds (:func:`class_order`): fyi-apps's own rule, or the
DM paper's ``np.random.seed(k); np.random.permutation(n)``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence

import torch

from avalanche.benchmarks.scenarios.supervised import class_incremental_benchmark
from avalanche.benchmarks.utils import _make_taskaware_tensor_classification_dataset

from ...errors import FyiError
from ...runtime import derive_seed, make_generator

#: benchmark name -> (fyi-apps dataset, default number of experiences, documented choices)
BENCHMARKS: dict[str, tuple[str, int, tuple[int, ...]]] = {
    "split-digits": ("digits", 5, (5,)),
    "split-fashion-mnist": ("fashion-mnist", 5, (5,)),
    "split-cifar10": ("cifar10", 5, (5,)),
    "split-cifar100": ("cifar100", 10, (5, 10, 20)),
}

from .choices import ORDER_RULES  # noqa: E402,F401  (re-exported)


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


def class_order(num_classes: int, seed: int, rule: str = "fyi") -> list[int]:
    """The class order of a run: a permutation of ``0..num_classes-1`` fixed by ``seed``.

    ``rule="numpy"`` is the DM paper's (``np.random.seed(seed); np.random.permutation(n)``),
    drawn from a private ``RandomState`` so numpy's global RNG is left alone.
    """
    if rule == "fixed":
        return list(range(int(num_classes)))
    if rule == "numpy":
        import numpy as np

        return [int(c) for c in np.random.RandomState(int(seed)).permutation(int(num_classes))]
    if rule != "fyi":
        raise FyiError(f"unknown class-order rule {rule!r}; use one of {', '.join(ORDER_RULES)}")
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
    order_rule: str = "fyi"

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
        d = {"benchmark": self.name, "dataset": self.dataset.info.name, "source": self.dataset.source,
             "n_experiences": self.n_experiences, "class_order": list(self.class_order),
             "experience_classes": [list(c) for c in self.experience_classes], "seed": self.seed}
        if self.order_rule != "fyi":
            d["order_rule"] = self.order_rule
        return d


def split_sizes(num_classes: int, n_experiences: int, name: str) -> int:
    """Classes per experience; refuses splits that are not equal."""
    k, n = int(num_classes), int(n_experiences)
    if n < 1 or k % n:
        divisors = [d for d in range(1, k + 1) if k % d == 0]
        raise FyiError(f"{name} has {k} classes, which cannot be split into {n_experiences} equal experiences; "
                       f"use --experiences in {divisors}")
    return k // n


def make_benchmark(
    dataset,
    n_experiences: int = 5,
    *,
    seed: int | None = 0,
    order: Sequence[int] | None = None,
    name: str | None = None,
    root=None,
    order_rule: str = "fyi",
    holdout: float = 0.0,
) -> CLBenchmark:
    """A class-incremental split of a fyi-apps dataset, built by Avalanche's ``class_incremental_benchmark``.

    ``dataset`` is a :class:`fyi_apps.data.Dataset` or a dataset name.  The class
    order is ``order`` if given, else :func:`class_order` of ``seed`` (and
    ``order_rule``); it is passed to Avalanche explicitly (Avalanche's own
    ``seed=`` would reseed torch's global RNG).  Images are the dataset's
    normalised float tensors; every item carries task label 0 (class-incremental).
    ``holdout`` > 0 keeps that fraction of each class's training images out of
    the stream (as Avalanche's ``benchmark_with_validation_stream`` does per
    experience), drawn with ``seed``.
    """
    from ...data import load_dataset

    if isinstance(dataset, str):
        dataset = load_dataset(dataset, root=root)
    info = dataset.info
    k = info.num_classes
    per = split_sizes(k, n_experiences, info.name)
    n = int(n_experiences)
    if order is None:
        order = class_order(k, 0 if seed is None else seed, order_rule)
    order = [int(c) for c in order]
    if sorted(order) != list(range(k)):
        raise FyiError(f"class order must be a permutation of 0..{k - 1}, got {order}")
    for split_name, split in (("train", dataset.train), ("test", dataset.test)):
        missing = [c for c, cnt in enumerate(split.class_counts()) if cnt == 0]
        if missing:
            raise FyiError(f"{info.name} {split_name} split has no images of classes {missing}; "
                           "a class-incremental benchmark needs every class in both splits")
    if holdout:
        dataset = _without_holdout(dataset, float(holdout), 0 if seed is None else seed)
    x_train = dataset.normalize(dataset.train.images)
    x_test = dataset.normalize(dataset.test.images)
    train = tensor_dataset(x_train, dataset.train.labels)
    test = tensor_dataset(x_test, dataset.test.labels)
    scenario = class_incremental_benchmark({"train": train, "test": test}, class_order=order, num_experiences=n)
    exp_classes = [order[i * per:(i + 1) * per] for i in range(n)]
    for i, exp in enumerate(scenario.train_stream):  # the split is Avalanche's: check it is the one we report
        if set(exp.classes_in_this_experience) != set(exp_classes[i]):
            raise RuntimeError(f"Avalanche put classes {sorted(exp.classes_in_this_experience)} in experience {i}, "
                               f"expected {sorted(exp_classes[i])}")
    return CLBenchmark(name=name or f"split-{info.name}", dataset=dataset, scenario=scenario, class_order=order,
                       experience_classes=exp_classes, seed=seed, test_images=x_test,
                       test_labels=dataset.test.labels.clone(), order_rule=order_rule)


def _without_holdout(dataset, fraction: float, seed: int):
    """The dataset with ``fraction`` of each class's training images removed (a seeded random choice)."""
    import dataclasses

    from ...data import Split

    if not 0 < fraction < 1:
        raise FyiError(f"holdout must be a fraction in (0, 1), got {fraction!r}")
    g = make_generator(derive_seed(seed, "cl-holdout"))
    keep = []
    labels = dataset.train.labels
    for c in range(dataset.info.num_classes):
        idx = (labels == c).nonzero().flatten()
        n_out = int(round(fraction * idx.numel()))
        keep.append(idx[torch.randperm(idx.numel(), generator=g)[n_out:]])
    keep = torch.cat(keep).sort().values
    train = Split(dataset.train.images[keep], labels[keep], dataset.train.num_classes)
    return dataclasses.replace(dataset, train=train)


# --------------------------------------------------------------------------- #
# tensors <-> datasets
# --------------------------------------------------------------------------- #
def tensor_dataset(images: torch.Tensor, labels: torch.Tensor, task_labels: torch.Tensor | int = 0):
    """An Avalanche classification dataset of ``(x, y, t)`` items from tensors."""
    tl = task_labels if isinstance(task_labels, int) else [int(t) for t in task_labels.tolist()]
    return _make_taskaware_tensor_classification_dataset(images, labels.long(), task_labels=tl)


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
    from ...data import Dataset, DatasetInfo, Split

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
