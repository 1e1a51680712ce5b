"""The two real-data baselines every distillation number is compared with.

* ``random``: ``ipc`` training images per class drawn uniformly at random.
* ``herding``: ``ipc`` images per class chosen greedily so that their mean
  embedding tracks the class mean (Welling 2009), with the embeddings of a
  ConvNet trained briefly on the full training set (``feature_epochs``; 0 uses
  a randomly initialised network).

Both return a :class:`~fyi_apps.synset.SyntheticSet` so that they are
evaluated, shown and consumed exactly like distilled sets.
"""
from __future__ import annotations

import torch

from . import validate
from .runtime import derive_seed, make_generator, resolve_device
from .synset import SyntheticSet


def _make_set(dataset, idx: torch.Tensor, method: str, ipc: int, seed: int, config: dict) -> SyntheticSet:
    info = dataset.info
    return SyntheticSet(
        images=dataset.normalize(dataset.train.images[idx]).cpu(),
        labels=dataset.train.labels[idx].clone(),
        dataset=info.name,
        class_names=list(info.class_names),
        mean=list(info.mean),
        std=list(info.std),
        method=method,
        fyi=None,
        ipc=ipc,
        config={"method": method, "ipc": ipc, "seed": seed, **config},
        seed=seed,
        extra={"source": dataset.source, "indices": idx.tolist()},
    )


def _checked(dataset, ipc, seed):
    """The dataset (a name is loaded) once ``ipc`` and ``seed`` are checked: a bad one is one line naming it."""
    from .data import as_dataset

    dataset = as_dataset(dataset)
    dataset.check_ipc(ipc)
    validate.integer(seed, "seed", min=0)
    return dataset


def random_indices(dataset, ipc: int, seed: int = 0) -> torch.Tensor:
    """Indices of ``ipc`` random training images per class, class-ordered."""
    dataset = _checked(dataset, ipc, seed)
    g = make_generator(derive_seed(seed, "random-subset"))
    return torch.cat([dataset.train.sample_indices(c, ipc, g) for c in range(dataset.info.num_classes)])


def random_subset(dataset, ipc: int, seed: int = 0) -> SyntheticSet:
    """A class-balanced random real subset (of a :class:`~fyi_apps.data.Dataset` or a dataset name) as a set."""
    dataset = _checked(dataset, ipc, seed)
    return _make_set(dataset, random_indices(dataset, ipc, seed), "random", ipc, seed, {})


def herding_select(features: torch.Tensor, k: int) -> torch.Tensor:
    """Greedy herding: positions of ``k`` rows of ``features`` whose running mean tracks the full mean."""
    mu = features.mean(dim=0)
    chosen: list[int] = []
    running = torch.zeros_like(mu)
    available = torch.ones(features.shape[0], dtype=torch.bool, device=features.device)
    for step in range(k):
        # distance of the mean of (chosen + candidate) to mu, for all candidates at once
        cand = (running[None, :] + features) / (step + 1)
        d = ((cand - mu[None, :]) ** 2).sum(dim=1)
        d[~available] = float("inf")
        j = int(torch.argmin(d))
        chosen.append(j)
        available[j] = False
        running += features[j]
    return torch.tensor(chosen, dtype=torch.long)


@torch.no_grad()
def embed_all(net, images_uint8: torch.Tensor, mean, std, device, batch_size: int = 1000) -> torch.Tensor:
    """Embeddings of a uint8 image tensor, in batches."""
    from .training import as_float

    net.eval()
    out = [net.embed(as_float(images_uint8[s : s + batch_size].to(device), mean, std)).float().cpu()
           for s in range(0, images_uint8.shape[0], batch_size)]
    net.train()
    return torch.cat(out)


def herding_subset(
    dataset,
    ipc: int,
    seed: int = 0,
    *,
    arch: str = "convnet",
    feature_epochs: int = 1,
    device: str | torch.device = "auto",
    progress: bool = False,
) -> SyntheticSet:
    """Herding selection per class on the embeddings of ``arch`` trained ``feature_epochs`` on full data."""
    from .evaluate import EvalConfig, train_network
    from .networks import create_model

    dataset = _checked(dataset, ipc, seed)
    validate.integer(feature_epochs, "feature_epochs", min=0)
    device = resolve_device(device)
    info = dataset.info
    net = create_model(arch, channels=info.channels, num_classes=info.num_classes, image_size=info.image_size,
                       seed=derive_seed(seed, "herding-net"))
    if feature_epochs > 0:
        cfg = EvalConfig(epochs=feature_epochs, dsa=False)
        train_network(net, dataset.train.images, dataset.train.labels, cfg, lr=0.01,
                      generator=make_generator(derive_seed(seed, "herding-train")), device=device,
                      mean=info.mean, std=info.std, progress=progress, desc="herding features")
    feats = embed_all(net.to(device), dataset.train.images, info.mean, info.std, device)
    picks = []
    for c in range(info.num_classes):
        idx_c = dataset.train.class_indices[c]
        picks.append(idx_c[herding_select(feats[idx_c], ipc)])
    config = {"feature_arch": arch, "feature_epochs": feature_epochs}
    return _make_set(dataset, torch.cat(picks), "herding", ipc, seed, config)
