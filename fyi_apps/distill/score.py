"""The unequalness score of the FYI paper (Eq. 5): ``D(R, flip(R))``.

``D`` is a distillation method's matching distance; a set is *flip-equal*
when it matches its own mirror image.  The paper shows that small real
subsets are far from flip-equal and that the score falls as the subset grows
(Fig. 3): a synthetic set optimised without FYI inherits this bias.

Two distances are supported, each averaged over classes and over randomly
initialised networks:

* ``"dm"``: squared distance between the mean embeddings of ``R_c`` and ``flip(R_c)``;
* ``"dc"``: DC's layer-wise gradient-matching distance between the
  cross-entropy gradients on ``R_c`` and on ``flip(R_c)``.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import torch
import torch.nn.functional as F

from .. import validate
from ..errors import FyiError
from ..runtime import derive_seed, make_generator, resolve_device
from .fyi import FYIView
from .matching import class_means, gradient_distance


@dataclasses.dataclass(frozen=True)
class UnequalnessResult:
    """The unequalness score ``D(R, view(R))`` of one set of images (:func:`fyi_apps.score`).

    ``score`` is the mean over the random networks of the class-averaged distance;
    ``per_class`` is ``None`` for a class with no image.
    """

    score: float
    std_over_nets: float
    per_net: list[float]
    per_class: list[float | None]
    distance: str
    arch: str
    num_nets: int
    view: str
    num_images: int

    @classmethod
    def from_dict(cls, d: dict) -> "UnequalnessResult":
        return cls(**{f.name: d[f.name] for f in dataclasses.fields(cls)})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def __repr__(self) -> str:
        return (f"UnequalnessResult(score={self.score:.4g} +- {self.std_over_nets:.2g} over {self.num_nets} "
                f"{self.arch} nets, distance={self.distance!r}, view={self.view!r}, {self.num_images} images)")


def _nets(arch, channels, num_classes, image_size, num_nets, seed, device):
    from ..networks import create_model

    for k in range(num_nets):
        yield create_model(
            arch, channels=channels, num_classes=num_classes, image_size=image_size,
            seed=derive_seed(seed, "score-net", k),
        ).to(device)


def unequalness(
    images: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    *,
    distance: str = "dm",
    arch: str = "convnet",
    num_nets: int = 5,
    seed: int = 0,
    view: str = "flip",
    device: str | torch.device = "auto",
    batch_size: int = 512,
) -> dict:
    """``D(R, view(R))`` for normalised images ``[N, C, H, W]`` with labels; returns the mean and its parts.

    Returns ``{"score", "std_over_nets", "per_class", "per_net", ...}``; classes
    with no image are left out of the average.
    """
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        raise FyiError(f"unequalness needs images [N, C, H, W], got {tuple(getattr(images, 'shape', ())) or images!r}")
    if distance not in ("dm", "dc"):
        raise FyiError(f"unknown distance {distance!r} for the unequalness score; use dm or dc")
    num_nets = validate.integer(num_nets, "--nets", min=1)
    num_classes = validate.integer(num_classes, "num_classes", min=1)
    batch_size = validate.integer(batch_size, "batch_size", min=1)
    if not isinstance(labels, torch.Tensor) or labels.dim() != 1 or labels.is_floating_point():
        raise FyiError(f"unequalness needs labels as a 1-D tensor of class ids, got {type(labels).__name__}")
    if images.shape[0] == 0 or labels.numel() != images.shape[0]:
        raise FyiError(f"unequalness needs one label per image, got {images.shape[0]} images and "
                       f"{labels.numel()} labels; pass a non-empty set")
    if int(labels.min()) < 0 or int(labels.max()) >= num_classes:
        raise FyiError(f"labels must be class ids from 0 to {num_classes - 1} (num_classes={num_classes}), got "
                       f"{int(labels.min())} to {int(labels.max())}")
    device = resolve_device(device)
    images, labels = images.float().to(device), labels.long().to(device)
    present = torch.bincount(labels, minlength=num_classes) > 0
    fv = FYIView(view)
    per_net = []
    per_class_sum = torch.zeros(num_classes, dtype=torch.float64)
    for net in _nets(arch, images.shape[1], num_classes, images.shape[-1], num_nets, seed, device):
        if distance == "dm":
            d = _dm_per_class(net, images, labels, num_classes, fv, batch_size)
        else:
            d = _dc_per_class(net, images, labels, num_classes, fv, present)
        d = d.double().cpu()
        per_class_sum += d
        per_net.append(float(d[present.cpu()].mean()))
    per_class = per_class_sum / num_nets
    t = torch.tensor(per_net)
    return {
        "score": float(t.mean()),
        "std_over_nets": float(t.std(unbiased=False)) if len(per_net) > 1 else 0.0,
        "per_net": per_net,
        "per_class": [float(v) if p else None for v, p in zip(per_class, present.cpu())],
        "distance": distance,
        "arch": arch,
        "num_nets": num_nets,
        "view": view,
        "num_images": int(images.shape[0]),
    }


@torch.no_grad()
def _dm_per_class(net, images, labels, num_classes, view, batch_size) -> torch.Tensor:
    net.train()  # as DM: embeddings of a randomly initialised network in training mode
    feats, feats_v = [], []
    for s in range(0, images.shape[0], batch_size):
        x = images[s : s + batch_size]
        both = net.embed(torch.cat([x, view.transform(x)]))
        feats.append(both[: x.shape[0]])
        feats_v.append(both[x.shape[0] :])
    m = class_means(torch.cat(feats), labels, num_classes)
    mv = class_means(torch.cat(feats_v), labels, num_classes)
    return ((m - mv) ** 2).sum(dim=1)


def _dc_per_class(net, images, labels, num_classes, view, present) -> torch.Tensor:
    net.train()
    params = [p for p in net.parameters() if p.requires_grad]
    out = torch.zeros(num_classes)
    for c in torch.nonzero(present).flatten().tolist():
        x = images[labels == c]
        y = labels[labels == c]
        g = torch.autograd.grad(F.cross_entropy(net(x), y), params)
        gv = torch.autograd.grad(F.cross_entropy(net(view.transform(x)), y), params)
        out[c] = float(gradient_distance(g, gv, "ours", exact=True))
    return out


def unequalness_curve(
    dataset,
    sizes: Sequence[int] = (1, 2, 5, 10, 20, 50, 100),
    *,
    distance: str = "dm",
    arch: str = "convnet",
    num_nets: int = 3,
    repeats: int = 1,
    seed: int = 0,
    device: str | torch.device = "auto",
) -> list[dict]:
    """Score of random real subsets with ``n`` images per class, for each ``n`` (paper Fig. 3)."""
    info = dataset.info
    sizes = check_subset_sizes(dataset, sizes)
    repeats = validate.integer(repeats, "repeats (--repeats)", min=1)
    rows = []
    for n in sizes:
        scores = []
        for r in range(repeats):
            g = make_generator(derive_seed(seed, "score-subset", n, r))
            idx = torch.cat([dataset.train.sample_indices(c, n, g) for c in range(info.num_classes)])
            x = dataset.normalize(dataset.train.images[idx])
            res = unequalness(
                x, dataset.train.labels[idx], info.num_classes, distance=distance, arch=arch,
                num_nets=num_nets, seed=derive_seed(seed, "score-nets", r), device=device,
            )
            scores.append(res["score"])
        t = torch.tensor(scores)
        rows.append({"ipc": n, "score": float(t.mean()), "std": float(t.std(unbiased=False)), "repeats": repeats})
    return rows


def check_subset_sizes(dataset, sizes: Sequence[int]) -> list[int]:
    """``sizes`` as positive integers no larger than the smallest class of ``dataset`` (else one FyiError line)."""
    sizes = validate.int_list(sizes, "sizes (--sizes)", min=1)
    smallest = min(dataset.train.class_counts())
    too_big = [n for n in sizes if n > smallest]
    if too_big:
        raise FyiError(f"subset size {too_big[0]} per class exceeds the smallest class of {dataset.info.name} "
                       f"({smallest} images); use --sizes up to {smallest}")
    return sizes
