"""Training sets described so that any process can rebuild them: synthetic sets, real subsets, free proxies.

A :class:`SetSpec` is a proxy or a ground truth of a ranking (or a row of the
cross-architecture matrix): a synthetic-set file, a ``random`` / ``herding`` /
``real:N`` subset of the training split, the whole split (``full``), the
DC paper's early-stopping baseline, a benchmark table, or a training-free
score (``params`` / ``flops``).  Its ``digest`` identifies the content and
keys the run cache.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from ...errors import FyiError
from .measure import candidate_mmacs, candidate_params


@dataclass(frozen=True)
class SetSpec:
    """A training set described so that any process can rebuild it.

    ``kind``: ``synset`` (a file; ``path``), ``indices`` (a real subset of the
    training split; ``indices``) or ``full`` (the whole training split).
    ``digest`` identifies the content (file / data hash plus indices).
    """

    label: str
    kind: str
    dataset: str
    digest: str
    num_images: int
    ipc: int = 0
    path: str | None = None
    indices: tuple[int, ...] | None = None
    lr: float | None = None
    cutmix: float = 0.0
    source: str = ""
    epochs: int | None = None  # training epochs on this set (None: the ranking's proxy epochs)
    # image-passes per proxy epoch, for learning-curve points (0: num_images; early stopping: ipc x classes)
    curve_unit: int = 0
    # kind "table" (a benchmark's accuracies) or "score" (params, FLOPs): one value per candidate, no training
    values: tuple[tuple[str, float], ...] | None = None

    @property
    def trains(self) -> bool:
        return self.kind not in ("table", "score", "zerocost")

    def describe(self) -> dict:
        d = dataclasses.asdict(self)
        d.pop("indices")
        d.pop("values")
        return d


def content_hash(*parts: Any) -> str:
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, torch.Tensor):
            h.update(p.detach().cpu().contiguous().numpy().tobytes())
        elif isinstance(p, (bytes, bytearray)):
            h.update(p)
        else:
            h.update(json.dumps(p, sort_keys=True, default=str).encode())
        h.update(b"|")
    return h.hexdigest()


_DATA_DIGESTS: dict[int, str] = {}


def data_digest(dataset) -> str:
    """Hash of the training split (images and labels) plus the name: the identity of ``full``."""
    key = id(dataset.train.images)
    if key not in _DATA_DIGESTS:
        _DATA_DIGESTS[key] = content_hash(dataset.info.name, dataset.train.images, dataset.train.labels)
    return _DATA_DIGESTS[key]


def _synset_label(s) -> str:
    fyi = "" if not s.fyi else ("+fyi" if s.fyi == "flip" else f"+fyi({s.fyi})")
    arch = str(s.config.get("arch") or "convnet")
    where = "" if arch.lower() == "convnet" else f" [{arch.split(';')[0]}]"  # e.g. dm [space:nb201] ipc10
    return f"{s.method}{where}{fyi} ipc{s.ipc}"


def resolve_set(
    text: str,
    dataset,
    *,
    ipc: int | None = None,
    seed: int = 0,
    herding_epochs: int = 1,
    device: str | torch.device = "auto",
    progress: bool = False,
    cache_dir: str | os.PathLike | None = None,
) -> SetSpec:
    """Turn ``full``, ``real:N``, ``random[:N]``, ``herding[:N]`` or a synthetic-set path into a :class:`SetSpec`.

    ``random``/``herding`` without ``:N`` take ``ipc`` images per class.  The
    herding selection (which trains a feature network) is kept in
    ``cache_dir/sets/`` when a cache folder is given.
    """
    from ...baselines import random_indices

    text = str(text).strip()
    low = text.lower()
    name = dataset.info.name
    base, _, arg = low.partition(":")
    if base in ("full", "real", "random", "herding") and not Path(text).exists():
        if base == "full":
            if arg:
                raise FyiError(f"{text!r}: 'full' takes no size; use real:N for a subset of N images per class")
            return SetSpec(label="full", kind="full", dataset=name, digest=data_digest(dataset),
                           num_images=len(dataset.train), source=dataset.source)
        if arg:
            try:
                n = int(arg)
            except ValueError:
                raise FyiError(f"bad training set {text!r}; write {base}:N with N images per class") from None
        elif base == "real":
            raise FyiError("'real' needs a size: real:N (N random training images per class)")
        elif ipc is None:
            raise FyiError(f"'{base}' needs a size: give --ipc N (or {base}:N, or a synthetic-set proxy to match)")
        else:
            n = int(ipc)
        dataset.check_ipc(n)
        if base == "herding":
            idx = _herding_indices(dataset, n, seed, herding_epochs, device, progress, cache_dir)
            label = f"herding ipc{n}"
        else:
            idx = random_indices(dataset, n, seed=seed).tolist()
            label = f"random ipc{n}" if base == "random" else f"real ipc{n}"
        idx = tuple(int(i) for i in idx)
        return SetSpec(label=label, kind="indices", dataset=name, digest=content_hash(data_digest(dataset), list(idx)),
                       num_images=len(idx), ipc=n, indices=idx, source=f"{base} subset, seed {seed}")
    from ...evaluate import check_compatible
    from ...synset import load_synset

    path = Path(text)
    if not path.exists():
        raise FyiError(f"training set {text!r} is neither a file nor one of full, real:N, random, herding; check the path")
    s = load_synset(path)
    check_compatible(s, dataset)
    images, _ = s.decoded()
    return SetSpec(
        label=_synset_label(s), kind="synset", dataset=name, digest=content_hash(path.read_bytes()),
        num_images=int(images.shape[0]), ipc=int(s.ipc), path=str(path.resolve()), lr=s.lr,
        cutmix=float(s.config.get("eval_cutmix") or 0.0), source=str(path),
    )


def _herding_indices(dataset, n, seed, feature_epochs, device, progress, cache_dir) -> list[int]:
    from ...baselines import herding_subset
    from ...runtime import read_sealed_json, write_sealed_json

    path = None
    if cache_dir is not None:
        key = content_hash("herding", data_digest(dataset), n, seed, feature_epochs)[:24]
        path = Path(cache_dir) / "sets" / f"herding-{key}.json"
        rec, why = read_sealed_json(path)
        try:
            if rec is not None:
                idx = [int(i) for i in rec["indices"]]
                if len(idx) == n * dataset.info.num_classes and all(0 <= i < len(dataset.train) for i in idx):
                    return idx
                why = "its indices do not fit this dataset"
        except (KeyError, TypeError, ValueError):
            why = "its indices are not a list of integers"
        if why != "missing":
            import sys

            print(f"fyi: warning: herding cache {path} is not usable ({why}); it is a cache, so the selection is "
                  "made again and the file replaced", file=sys.stderr)
    idx = herding_subset(dataset, n, seed=seed, feature_epochs=feature_epochs, device=device,
                         progress=progress).extra["indices"]
    if path is not None:
        write_sealed_json(path, {"dataset": dataset.info.name, "ipc": n, "seed": seed, "feature_epochs": feature_epochs,
                                 "indices": [int(i) for i in idx]}, "herding cache")
    return idx


def unique_labels(specs: Sequence[SetSpec]) -> list[SetSpec]:
    """Make labels unique by appending the file name (two DM sets, say)."""
    counts: dict[str, int] = {}
    for s in specs:
        counts[s.label] = counts.get(s.label, 0) + 1
    out, used = [], set()
    for s in specs:
        label = s.label
        if counts[label] > 1:
            label = f"{label} ({Path(s.path).name})" if s.path else f"{label} #{len(used)}"
        while label in used:
            label += "'"
        used.add(label)
        out.append(dataclasses.replace(s, label=label))
    return out


#: proxies that need no training: the candidate's parameter count and its multiply-accumulates per image
FREE_PROXIES = ("params", "flops")


def free_proxy(kind: str, candidates: Sequence[str], dataset) -> SetSpec:
    """``params`` or ``flops``: rank the candidates by their size or compute, with no training at all."""
    info = dataset.info
    kw = dict(channels=info.channels, num_classes=info.num_classes, image_size=info.image_size)
    if kind == "params":
        values = {c: float(candidate_params(c, **kw)) for c in candidates}
        label = "parameter count"
    else:
        values = {c: candidate_mmacs(c, **kw) for c in candidates}
        label = "FLOPs (M MACs)"
    return SetSpec(label=label, kind="score", dataset=info.name, digest=content_hash(kind, sorted(values.items())),
                   num_images=0, source=kind, values=tuple(sorted(values.items())))


def zero_cost_sets(measures: Sequence[str], dataset, *, seed: int = 0) -> list[SetSpec]:
    """One spec per zero-cost measure (:mod:`.zerocost`; ``kind="zerocost"``, ``source`` = the measure).

    All share one digest (data, seed, measures): one scoring job per candidate
    computes every measure on one minibatch of real training images drawn with
    ``seed`` (:func:`zero_cost_job_set`).
    """
    from .zerocost import BATCH, DEFAULT_BATCH, check_measures

    measures = check_measures(measures)
    digest = content_hash("zerocost", data_digest(dataset), int(seed), measures)
    return [SetSpec(label=m, kind="zerocost", dataset=dataset.info.name, digest=digest,
                    num_images=BATCH.get(m, DEFAULT_BATCH), source=m) for m in measures]


def zero_cost_job_set(proxies: Sequence[SetSpec]) -> SetSpec | None:
    """The spec of the shared scoring job of the zero-cost proxies among ``proxies`` (None without any)."""
    zc = [p for p in proxies if p.kind == "zerocost"]
    if not zc:
        return None
    return SetSpec(label="zero-cost", kind="zerocost", dataset=zc[0].dataset, digest=zc[0].digest,
                   num_images=max(p.num_images for p in zc), source=",".join(p.source for p in zc))


def early_stopping_set(dataset, ipc: int | None, proxy_epochs: int, *, seed: int = 0) -> SetSpec:
    """The DC paper's early-stopping baseline: the full training set for the compute of one proxy run.

    A proxy run trains ``proxy_epochs`` epochs on ``ipc`` images per class; the
    same number of SGD steps on the full training set see ``ipc * proxy_epochs``
    fresh images per class once each, which is one epoch on a random subset of
    that size (the first steps of a full-data run).
    """

    if not ipc:
        raise FyiError("the early-stopping proxy matches a proxy's compute: give --ipc N or a synthetic-set proxy")
    n = int(ipc) * int(proxy_epochs)
    smallest = min(dataset.train.class_counts())
    if n > smallest:
        raise FyiError(f"early stopping needs {ipc} x {proxy_epochs} = {n} images per class but the smallest class has "
                       f"{smallest}; lower --proxy-epochs")
    dataset.check_ipc(n)
    spec = resolve_set(f"real:{n}", dataset, seed=seed)
    return dataclasses.replace(spec, label=f"early stopping (full data, {n} images/class once)", epochs=1,
                               curve_unit=int(ipc) * dataset.info.num_classes,
                               source=f"first steps of full-data training: {n} images per class, 1 epoch, seed {seed}")
