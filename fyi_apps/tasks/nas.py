"""NAS proxies: rank many architectures cheaply by training them on a small set.

The other job people distil datasets for.  Every candidate architecture is
trained with the evaluation protocol (:mod:`fyi_apps.evaluate`) twice:

* on a *proxy* (a synthetic-set file, or a random / herding real subset of the
  same size) for ``proxy_epochs``;
* on the *ground truth* training set: the whole training set (``full``) or a
  stated larger real subset (``real:N`` = N random images per class) for
  ``full_epochs``;

and the two accuracy lists are compared with rank statistics (Spearman's rho
and Kendall's tau from :mod:`scipy.stats`, over all candidates and over the
top-k by ground truth, as FTD's Table 5 reports), top-k overlap, the
ground-truth accuracy and rank of the proxy's favourite, and the compute saved
(ground-truth training seconds / proxy training seconds).

Candidates are plain strings that :func:`fyi_apps.networks.create_model`
understands, so they serve as JSON keys, cache keys and CLI values alike:

* ``dc720``: the search space of the DC paper, depth 1-4 x width 32/64/128/256
  x activation sigmoid/relu/leakyrelu x normalisation none/batch/layer/
  instance/group x pooling none/max/avg = 720 ConvNets, named like
  ``convnet:depth=2,width=64,act=sigmoid,norm=batch,pool=max``;
* ``classic``: ConvNet, VGG-11, ResNet-18, AlexNet; ``mixed``: those plus a few
  timm models (``timm:<name>``); or any comma-separated list of names.

Every training run is one *job* (candidate, training set, protocol, seed) whose
result is one JSON record in a cache folder, named by a hash of everything that
defines it and written atomically; a rerun skips finished records, so an
interrupted ranking continues where it stopped.

Parallelism, without a scheduler of our own:

* ``workers=W``: a ``concurrent.futures.ProcessPoolExecutor`` (spawn) of W
  processes on this machine, each with ``cores // W`` torch threads;
* ``torchrun --nproc-per-node N fyi nas ...`` (several GPUs or nodes):
  ``torch.distributed`` (NCCL on CUDA, else gloo); rank r trains candidates
  ``r::world_size``, the records are gathered with ``all_gather_object`` and
  rank 0 writes the report.
"""
from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import torch

from ..errors import FyiError

#: Bump when a change makes old cached records incomparable with new ones.
RECORD_VERSION = 1

# --------------------------------------------------------------------------- #
# the search space
# --------------------------------------------------------------------------- #
DC_DEPTHS = (1, 2, 3, 4)
DC_WIDTHS = (32, 64, 128, 256)
DC_ACTS = ("sigmoid", "relu", "leakyrelu")
DC_NORMS = ("none", "batch", "layer", "instance", "group")
DC_POOLS = ("none", "max", "avg")


def dc_candidate(depth: int, width: int, act: str, norm: str, pool: str) -> str:
    """The candidate string of one ConvNet of the DC search space."""
    return f"convnet:depth={int(depth)},width={int(width)},act={act},norm={norm},pool={pool}"


def dc_space() -> list[str]:
    """The 720 ConvNets of the DC paper's architecture search space, in a fixed order."""
    return [dc_candidate(*knobs) for knobs in itertools.product(DC_DEPTHS, DC_WIDTHS, DC_ACTS, DC_NORMS, DC_POOLS)]


_CLASSIC = ["convnet", "vgg11", "resnet18", "alexnet"]
# timm models that build and train at 32 px (see the shared reference facts)
_TIMM = ["timm:resnet18", "timm:mobilenetv2_050", "timm:regnetx_002", "timm:efficientnet_b0"]

def nb201_space() -> list[str]:
    """The 15,625 NAS-Bench-201 cells as ``nb201:<cell string>`` candidates (:mod:`fyi_apps.nb201`)."""
    from ..nb201 import PREFIX, all_cells

    return [PREFIX + c for c in all_cells()]


NAMED_SPACES: dict[str, Callable[[], list[str]]] = {
    "dc720": dc_space,
    "nb201": nb201_space,
    "classic": lambda: list(_CLASSIC),
    "mixed": lambda: list(_CLASSIC) + list(_TIMM),
}


def list_spaces() -> list[str]:
    return sorted(NAMED_SPACES)


def space_candidates(space: str | Sequence[str]) -> list[str]:
    """A named space (``dc720``, ``classic``, ``mixed``), a comma-separated list, or a list of names."""
    if isinstance(space, str):
        key = space.strip().lower()
        if key in NAMED_SPACES:
            return NAMED_SPACES[key]()
        names = _split_names(space)
    else:
        names = [str(s).strip() for s in space if str(s).strip()]
    if not names:
        raise FyiError(f"empty candidate space {space!r}; use {', '.join(list_spaces())} or a comma-separated list of models")
    return _unique(names)


def _split_names(text: str) -> list[str]:
    """Split ``a,convnet:depth=2,width=64,b`` at the commas that start a new model name."""
    out: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if out and "=" in part and ":" not in part.split("=")[0]:
            out[-1] += "," + part  # a key=value option of the previous model
        else:
            out.append(part)
    return out


def _unique(names: Iterable[str]) -> list[str]:
    seen, out = set(), []
    for n in names:
        if n not in seen:
            seen.add(n)
            out.append(n)
    return out


def candidate_fits(name: str, *, channels: int = 3, num_classes: int = 10, image_size: int = 32) -> bool:
    """Whether ``name`` builds at this input size (checked on the meta device: no memory, no training)."""
    from ..networks import create_model

    kw = dict(channels=channels, num_classes=num_classes, image_size=image_size, seed=0)
    try:
        with torch.device("meta"):
            create_model(name, **kw)
    except FyiError:
        try:  # a model may refuse the meta device only: confirm on the CPU
            create_model(name, **kw)
        except FyiError:
            return False
    return True


def _meta_model(name: str, channels: int, num_classes: int, image_size: int):
    """``(model, device)``: built on the meta device (nothing allocated), or on the CPU if it refuses meta."""
    from ..networks import create_model

    kw = dict(channels=channels, num_classes=num_classes, image_size=image_size, seed=0)
    try:
        with torch.device("meta"):
            return create_model(name, **kw), "meta"
    except FyiError:
        return create_model(name, **kw), "cpu"


def candidate_mmacs(name: str, *, channels: int = 3, num_classes: int = 10, image_size: int = 32) -> float:
    """Multiply-accumulates (millions) of one image's forward pass through ``name``.

    Counted by :class:`torch.utils.flop_counter.FlopCounterMode` (convolutions
    and matrix products) on the meta device, so nothing is allocated or run.
    """
    from torch.utils.flop_counter import FlopCounterMode

    net, device = _meta_model(name, channels, num_classes, image_size)
    net.eval()
    x = torch.zeros(2, channels, image_size, image_size, device=device)  # 2: BatchNorm-free shapes need no care
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(x)
    return counter.get_total_flops() / 2 / 2 / 1e6  # 2 FLOPs per MAC, 2 images


def sample_candidates(
    space: str | Sequence[str] = "dc720",
    n: int | None = None,
    *,
    seed: int = 0,
    include: Sequence[str] = (),
    channels: int = 3,
    num_classes: int = 10,
    image_size: int | None = 32,
    max_mmacs: float | None = None,
    connected_only: bool = False,
    stratify: dict[str, float] | None = None,
    variant: str = "",
) -> list[str]:
    """``n`` candidates drawn without replacement from ``space`` (all of them when ``n`` is None or 0).

    Candidates that cannot run at ``image_size`` (e.g. depth 4 with pooling on
    8 px digits) are left out before drawing (``image_size=None``: no check),
    and so are those above ``max_mmacs`` million multiply-accumulates per image
    (a compute-constrained space, e.g. to leave out the DC space's
    unpooled width-256 ConvNets, ~36x a ConvNet-3's cost at 32 px).
    The draw depends only on ``seed``, the space and the cap; the result keeps
    the space's order, followed by ``include`` (e.g. ``vgg11``, ``resnet18``),
    which the cap does not apply to.

    NAS-Bench-201 spaces (every candidate ``nb201:<cell>``): ``connected_only``
    leaves out the cells whose output is disconnected from the input (they
    score 10 %); ``stratify`` (a ground-truth accuracy per cell) draws one cell
    from each of ``n`` equal-size bins of the accuracy-sorted pool instead of
    uniformly; ``variant`` (e.g. ``";cells=1"``) is appended to every drawn
    cell (the network's options).  NB201 networks run at any size from 4 px, so
    the per-candidate size check is skipped for them.
    """
    from ..runtime import derive_seed, make_generator

    from .. import validate

    pool = space_candidates(space)
    if not (isinstance(space, str) and space.strip().lower() in NAMED_SPACES):  # a typo must not be dropped silently
        validate.check_model_names(pool, "--space", channels=channels, num_classes=num_classes,
                                   image_size=image_size or 32, must_fit=False,
                                   hint=f"named spaces: {', '.join(list_spaces())}")
    nb201_only = all(c.lower().startswith("nb201:") for c in pool)
    if connected_only or stratify is not None or variant:
        if not nb201_only:
            raise FyiError("--connected-only, --stratified and --nb201-cells/--nb201-width apply to the nb201 space "
                           "only; use --space nb201")
    if connected_only:
        from ..nb201 import is_connected, split_name

        pool = [c for c in pool if is_connected(split_name(c)[0])]
    if nb201_only and image_size is not None:
        if image_size < 4:
            raise FyiError(f"NAS-Bench-201 networks need images of at least 4 px, the dataset has {image_size}")
        image_size = None  # every cell runs at this size
    if image_size is not None:
        pool = [c for c in pool if candidate_fits(c, channels=channels, num_classes=num_classes, image_size=image_size)]
        if not pool:
            raise FyiError(f"no candidate of {space!r} runs at {image_size} px; pick another space or dataset")
    if max_mmacs is not None:
        if not max_mmacs > 0:
            raise FyiError(f"--max-mmacs must be a positive number of million MACs per image, got {max_mmacs!r}")
        size = image_size or 32
        pool = [c for c in pool
                if candidate_mmacs(c, channels=channels, num_classes=num_classes, image_size=size) <= max_mmacs]
        if not pool:
            raise FyiError(f"no candidate of {space!r} costs at most {max_mmacs:g} M MACs per image; raise --max-mmacs")
    if n:
        if n < 0 or n > len(pool):
            raise FyiError(f"--sample {n} but the space has {len(pool)} candidates that run at this image size; "
                           f"use 1..{len(pool)} (or 0 for all)")
        g = make_generator(derive_seed(seed, "nas-sample", space if isinstance(space, str) else ",".join(space)))
        if stratify is not None:
            missing = [c for c in pool if c not in stratify]
            if missing:
                raise FyiError(f"no ground truth for {missing[0]!r} to stratify by; use --truth nb201")
            order = sorted(range(len(pool)), key=lambda i: (stratify[pool[i]], i))
            bins = [order[len(order) * b // n: len(order) * (b + 1) // n] for b in range(n)]
            picked = sorted(b[int(torch.randint(len(b), (1,), generator=g))] for b in bins)
        else:
            picked = sorted(torch.randperm(len(pool), generator=g)[:n].tolist())
        pool = [pool[i] for i in picked]
    if variant:
        pool = [c + variant for c in pool]
    extra = [c for c in (_split_names(include) if isinstance(include, str) else include) if c not in pool]
    validate.check_model_names(extra, "--include", channels=channels, num_classes=num_classes,
                               image_size=image_size or 32, must_fit=image_size is not None)
    return pool + _unique(extra)


# --------------------------------------------------------------------------- #
# training sets (proxies and ground truth)
# --------------------------------------------------------------------------- #
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
    # kind "table" (a benchmark's accuracies) or "score" (params, FLOPs): one value per candidate, no training
    values: tuple[tuple[str, float], ...] | None = None

    @property
    def trains(self) -> bool:
        return self.kind not in ("table", "score")

    def describe(self) -> dict:
        d = dataclasses.asdict(self)
        d.pop("indices")
        d.pop("values")
        return d


def _sha(*parts: Any) -> str:
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
        _DATA_DIGESTS[key] = _sha(dataset.info.name, dataset.train.images, dataset.train.labels)
    return _DATA_DIGESTS[key]


def _synset_label(s) -> str:
    fyi = "" if not s.fyi else ("+fyi" if s.fyi == "flip" else f"+fyi({s.fyi})")
    return f"{s.method}{fyi} ipc{s.ipc}"


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
    from ..baselines import check_ipc, random_indices

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
        check_ipc(dataset, n)
        if base == "herding":
            idx = _herding_indices(dataset, n, seed, herding_epochs, device, progress, cache_dir)
            label = f"herding ipc{n}"
        else:
            idx = random_indices(dataset, n, seed=seed).tolist()
            label = f"random ipc{n}" if base == "random" else f"real ipc{n}"
        idx = tuple(int(i) for i in idx)
        return SetSpec(label=label, kind="indices", dataset=name, digest=_sha(data_digest(dataset), list(idx)),
                       num_images=len(idx), ipc=n, indices=idx, source=f"{base} subset, seed {seed}")
    from ..evaluate import check_compatible
    from ..synset import load_synset

    path = Path(text)
    if not path.exists():
        raise FyiError(f"training set {text!r} is neither a file nor one of full, real:N, random, herding; check the path")
    s = load_synset(path)
    check_compatible(s, dataset)
    images, _ = s.decoded()
    return SetSpec(
        label=_synset_label(s), kind="synset", dataset=name, digest=_sha(path.read_bytes()),
        num_images=int(images.shape[0]), ipc=int(s.ipc), path=str(path.resolve()), lr=s.lr,
        cutmix=float(s.config.get("eval_cutmix") or 0.0), source=str(path),
    )


def _herding_indices(dataset, n, seed, feature_epochs, device, progress, cache_dir) -> list[int]:
    from ..baselines import herding_subset
    from ..runtime import write_json

    path = None
    if cache_dir is not None:
        key = _sha("herding", data_digest(dataset), n, seed, feature_epochs)[:24]
        path = Path(cache_dir) / "sets" / f"herding-{key}.json"
        try:
            return [int(i) for i in json.loads(path.read_text())["indices"]]
        except (OSError, ValueError, KeyError, TypeError):
            pass
    idx = herding_subset(dataset, n, seed=seed, feature_epochs=feature_epochs, device=device,
                         progress=progress).extra["indices"]
    if path is not None:
        write_json(path, {"dataset": dataset.info.name, "ipc": n, "seed": seed, "feature_epochs": feature_epochs,
                          "indices": [int(i) for i in idx]})
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


# --------------------------------------------------------------------------- #
# jobs, records, cache
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class Job:
    """One training run: a candidate trained on a training set with a protocol and a seed."""

    candidate: str
    train: SetSpec
    cfg: tuple  # EvalConfig as sorted (key, value) pairs (hashable, picklable)
    seed: int
    role: str = "proxy"
    test_size: int | None = None
    data_root: str | None = None

    @property
    def config(self):
        from ..evaluate import EvalConfig

        return EvalConfig(**dict(self.cfg))

    @property
    def key(self) -> str:
        cfg = self.config
        ident = {
            "v": RECORD_VERSION, "candidate": self.candidate, "dataset": self.train.dataset,
            "train": self.train.digest, "lr": cfg.resolved_lr(self.train.lr), "cfg": dict(self.cfg),
            "cutmix": self.train.cutmix, "seed": int(self.seed), "test_size": self.test_size,
        }
        return _sha(ident)[:24]


def make_job(candidate: str, train: SetSpec, cfg, seed: int, *, role: str = "proxy",
             test_size: int | None = None, data_root: str | None = None) -> Job:
    d = dataclasses.asdict(cfg)
    if train.cutmix and not d.get("cutmix"):
        d["cutmix"] = train.cutmix  # IDC's evaluation, as evaluate_synset does
    return Job(candidate=candidate, train=train, cfg=tuple(sorted(d.items())), seed=int(seed), role=role,
               test_size=test_size, data_root=data_root)


class RecordCache:
    """One JSON file per finished job, ``<folder>/<key>.json``, written atomically."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.json"

    def get(self, key: str) -> dict | None:
        p = self.path(key)
        try:
            rec = json.loads(p.read_text())
        except (OSError, ValueError):
            return None  # missing or unreadable: train again
        return rec if isinstance(rec, dict) and rec.get("key") == key else None

    def put(self, record: dict) -> None:
        from ..runtime import write_json

        write_json(self.path(record["key"]), record)

    def keys(self) -> set[str]:
        return {p.stem for p in self.folder.glob("*.json")} if self.folder.exists() else set()


# per-process caches of loaded datasets and synthetic sets (workers rebuild sets from specs)
_DATASETS: dict[tuple, Any] = {}
_SYNSETS: dict[str, tuple] = {}


def remember_dataset(dataset, data_root: str | None = None) -> None:
    """Let jobs of this process reuse an already loaded dataset instead of loading it again."""
    _DATASETS[(dataset.info.name, data_root, None)] = dataset


def _test_subset(dataset, n: int | None):
    from ..data import Split
    from ..runtime import derive_seed, make_generator

    if not n or n >= len(dataset.test):
        return dataset
    k = dataset.info.num_classes
    if n < k:
        raise FyiError(f"--test-size {n} is smaller than the number of classes ({k}); use at least {k}")
    g = make_generator(derive_seed(0, "nas-test-subset"))
    counts = dataset.test.class_counts()
    idx = torch.cat([dataset.test.sample_indices(c, min(n // k, counts[c]), g) for c in range(k)])
    test = Split(dataset.test.images[idx], dataset.test.labels[idx], dataset.test.num_classes)
    return dataclasses.replace(dataset, test=test)


def _dataset_for(job: Job):
    from ..data import load_dataset

    key = (job.train.dataset, job.data_root, job.test_size)
    if key not in _DATASETS:
        base = _DATASETS.get((job.train.dataset, job.data_root, None))
        if base is None:
            base = load_dataset(job.train.dataset, root=job.data_root)
            _DATASETS[(job.train.dataset, job.data_root, None)] = base
        _DATASETS[key] = _test_subset(base, job.test_size)
    return _DATASETS[key]


def materialize(job: Job):
    """``(images, labels, dataset, learned_lr, test_transform)`` of a job's training set, in this process.

    ``test_transform`` is not None only for sets distilled in a ZCA-whitened
    space (MTT/FTD with ``--zca``), whose test images must be whitened too.
    """
    from ..synset import load_synset

    ds = _dataset_for(job)
    spec = job.train
    if spec.kind == "full":
        return ds.train.images, ds.train.labels, ds, None, None
    if spec.kind == "indices":
        idx = torch.tensor(spec.indices, dtype=torch.long)
        return ds.train.images[idx], ds.train.labels[idx], ds, None, None
    if spec.kind == "synset":
        if spec.path not in _SYNSETS:
            s = load_synset(spec.path)
            transform = None
            if s.config.get("zca"):
                from ..distill.buffers import zca_from_config

                transform = zca_from_config(s.config["zca"], ds)
            _SYNSETS[spec.path] = (*s.decoded(), s.lr, transform)
        images, labels, lr, transform = _SYNSETS[spec.path]
        return images, labels, ds, lr, transform
    raise FyiError(f"unknown training-set kind {spec.kind!r}")


def train_job(job: Job, device: str | torch.device = "auto", progress: bool = False, rank: int | None = None) -> dict:
    """Train and test one job in this process and return its record (not cached here)."""
    from ..evaluate import evaluate_images
    from ..runtime import package_versions

    images, labels, ds, lr, transform = materialize(job)
    t0 = time.perf_counter()
    rec: dict[str, Any] = {
        "key": job.key, "candidate": job.candidate, "role": job.role, "set": job.train.label,
        "set_digest": job.train.digest, "dataset": job.train.dataset, "num_train": int(images.shape[0]),
        "seed": job.seed, "config": dict(job.cfg), "test_size": len(ds.test),
    }
    try:
        extra = {} if transform is None else {"test_transform": transform}
        res = evaluate_images(images, labels, ds, arch=job.candidate, cfg=job.config, seeds=[job.seed],
                              learned_lr=lr, device=device, progress=progress, **extra)
        rec.update(acc=res.accs[0], train_seconds=res.seconds_per_run, lr=res.lr,
                   final_loss=res.extra["train"][0].get("final_loss"), error=None)
    except FyiError as e:  # e.g. a candidate whose training diverges: a deterministic failure, recorded
        rec.update(acc=None, train_seconds=time.perf_counter() - t0, error=str(e))
    rec.update(
        seconds=time.perf_counter() - t0, device=str(device), threads=torch.get_num_threads(),
        rank=_rank_world()[0] if rank is None else rank, versions=package_versions(), time=time.strftime("%Y-%m-%dT%H:%M:%S"),
    )
    return rec


def _pool_init(threads: int) -> None:
    torch.set_num_threads(max(1, int(threads)))
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass


def _pool_run(job: Job, device: str, cache_folder: str, rank: int) -> dict:
    rec = train_job(job, device, rank=rank)
    RecordCache(cache_folder).put(rec)
    return rec


def default_threads(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(1, int(workers)))


def run_jobs(
    jobs: Sequence[Job],
    cache: RecordCache,
    *,
    workers: int = 1,
    threads: int | None = None,
    device: str | torch.device = "auto",
    progress: bool = True,
    desc: str = "training",
) -> dict[str, dict]:
    """Run the jobs whose record is not cached yet (in this process or W spawned workers).

    Returns ``{key: record}`` for every job.  Each finished record is written to
    the cache at once, so an interruption loses at most the runs under way.
    """
    from tqdm.auto import tqdm

    from ..runtime import resolve_device

    device = resolve_device(device)
    todo, done, seen = [], {}, set()
    for j in jobs:
        k = j.key
        if k in seen:
            continue
        seen.add(k)
        rec = cache.get(k)
        if rec is None:
            todo.append(j)
        else:
            done[k] = rec
    if not todo:
        return done
    bar = tqdm(total=len(todo), desc=desc, disable=not progress, dynamic_ncols=True)
    if workers <= 1:
        old_threads = torch.get_num_threads()
        if threads:
            torch.set_num_threads(int(threads))
        try:
            for j in todo:
                bar.set_postfix_str(_short(j.candidate) + " / " + j.train.label)
                rec = train_job(j, device, progress=False)
                cache.put(rec)
                done[j.key] = rec
                bar.update(1)
        finally:
            torch.set_num_threads(old_threads)
            bar.close()
        return done
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    threads = threads or default_threads(workers)
    # longest runs first (by training images x epochs) so that no worker is left with a long tail
    todo.sort(key=lambda j: -j.train.num_images * j.config.epochs)
    ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=int(workers), mp_context=ctx, initializer=_pool_init, initargs=(threads,))
    rank = _rank_world()[0]
    try:
        futures = [pool.submit(_pool_run, j, str(device), str(cache.folder), rank) for j in todo]
        for fut in as_completed(futures):
            rec = fut.result()
            done[rec["key"]] = rec
            bar.update(1)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)  # finished records are already in the cache
        raise
    else:
        pool.shutdown()
    finally:
        bar.close()
    return done


def _short(candidate: str) -> str:
    if not candidate.startswith("convnet:"):
        return candidate
    o = dict(kv.split("=") for kv in candidate.split(":", 1)[1].split(","))
    return f"D{o.get('depth')}W{o.get('width')}-{o.get('act')}-{o.get('norm')}-{o.get('pool')}"


# --------------------------------------------------------------------------- #
# torch.distributed (torchrun)
# --------------------------------------------------------------------------- #
def _rank_world() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_distributed(device: str | torch.device = "auto", threads: int | None = None) -> torch.device:
    """Join the process group when started by ``torchrun`` (``WORLD_SIZE`` > 1); return this rank's device.

    NCCL on CUDA (one GPU per local rank), gloo otherwise; on CPU the cores are
    shared between the local ranks unless ``threads`` is given.
    """
    import torch.distributed as dist

    from ..runtime import resolve_device

    device = resolve_device(device)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return device
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank % max(torch.cuda.device_count(), 1))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    if device.type == "cpu":
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
        torch.set_num_threads(threads or default_threads(local_world))
    return device


def shard(items: Sequence, rank: int, world: int) -> list:
    """The items of rank ``rank`` of ``world``: ``items[rank::world]``."""
    if world < 1 or not 0 <= rank < world:
        raise FyiError(f"bad rank {rank} of world size {world}")
    return list(items)[rank::world]


def execute(
    jobs: Sequence[Job],
    cache: RecordCache,
    *,
    workers: int = 1,
    threads: int | None = None,
    device: str | torch.device = "auto",
    progress: bool = True,
    desc: str = "training",
) -> dict[str, dict]:
    """:func:`run_jobs`, sharded by candidate over the ranks when ``torch.distributed`` is initialised.

    Rank r runs the jobs of candidates ``r::world_size`` (in first-appearance
    order); the records are gathered on every rank with ``all_gather_object``
    and rank 0 also stores the other ranks' records in its cache.
    """
    rank, world = _rank_world()
    if world == 1:
        return run_jobs(jobs, cache, workers=workers, threads=threads, device=device, progress=progress, desc=desc)
    import torch.distributed as dist

    mine = set(shard(_unique(j.candidate for j in jobs), rank, world))
    local = run_jobs([j for j in jobs if j.candidate in mine], cache, workers=workers, threads=threads,
                     device=device, progress=progress and rank == 0, desc=f"{desc} (rank {rank}/{world})")
    gathered: list = [None] * world
    dist.all_gather_object(gathered, local)
    merged: dict[str, dict] = {}
    for part in gathered:
        merged.update(part or {})
    if rank == 0:
        for k, rec in merged.items():
            if cache.get(k) is None:
                cache.put(rec)
    return merged


# --------------------------------------------------------------------------- #
# rank statistics
# --------------------------------------------------------------------------- #
def _finite_or_none(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def rank_stats(
    proxy: Sequence[float],
    truth: Sequence[float],
    *,
    names: Sequence[str] | None = None,
    ks: Sequence[int] = (5, 10, 20),
) -> dict:
    """How well ``proxy`` accuracies rank candidates compared with ``truth`` accuracies.

    * ``spearman``/``kendall`` (and p-values) over all candidates;
    * ``top`` ``{k: {spearman, kendall, overlap}}`` over the k best candidates
      by ground truth (k larger than the number of candidates is left out);
      ``overlap`` = |top-k by truth and top-k by proxy| / k;
    * ``best``: the proxy's favourite, its ground-truth accuracy and rank
      (1 = best; ties share the best rank) and the regret against the truly best.

    Constant inputs give ``None`` correlations (undefined), not NaN.
    """
    import numpy as np
    from scipy import stats

    p = np.asarray(proxy, dtype=float)
    t = np.asarray(truth, dtype=float)
    if p.shape != t.shape or p.ndim != 1:
        raise FyiError(f"proxy and truth need one accuracy per candidate; got {p.shape} and {t.shape}")
    n = int(p.size)
    if n < 2:
        raise FyiError(f"ranking needs at least 2 candidates with results, got {n}; sample more candidates")
    if not (np.isfinite(p).all() and np.isfinite(t).all()):
        raise FyiError("accuracies must be finite numbers; drop failed candidates first")
    names = list(names) if names is not None else [str(i) for i in range(n)]

    def corr(a, b) -> dict:
        if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
            return {"spearman": None, "spearman_p": None, "kendall": None, "kendall_p": None}
        rho = stats.spearmanr(a, b)
        tau = stats.kendalltau(a, b)
        return {"spearman": _finite_or_none(rho.statistic), "spearman_p": _finite_or_none(rho.pvalue),
                "kendall": _finite_or_none(tau.statistic), "kendall_p": _finite_or_none(tau.pvalue)}

    by_truth = np.argsort(-t, kind="stable")
    by_proxy = np.argsort(-p, kind="stable")
    truth_rank = stats.rankdata(-t, method="min").astype(int)
    top = {}
    for k in sorted({int(k) for k in ks}):
        if k < 1 or k > n:
            continue
        idx = by_truth[:k]
        overlap = len(set(idx.tolist()) & set(by_proxy[:k].tolist())) / k
        top[str(k)] = {**corr(p[idx], t[idx]), "overlap": overlap,
                       "proxy_top": [names[i] for i in by_proxy[:k]], "truth_top": [names[i] for i in idx]}
    b = int(by_proxy[0])
    return {
        "n": n,
        **corr(p, t),
        "top": top,
        "best": {
            "candidate": names[b], "proxy_acc": float(p[b]), "truth_acc": float(t[b]),
            "truth_rank": int(truth_rank[b]), "oracle": names[int(by_truth[0])],
            "oracle_acc": float(t[by_truth[0]]), "regret": float(t[by_truth[0]] - t[b]),
        },
        "truth_rank": {names[i]: int(truth_rank[i]) for i in range(n)},
    }


# --------------------------------------------------------------------------- #
# a whole ranking
# --------------------------------------------------------------------------- #
@dataclass
class NasConfig:
    """Everything that defines a NAS-proxy ranking (``fyi nas`` options)."""

    dataset: str = "cifar10"
    proxies: list[str] = field(default_factory=lambda: ["random"])
    ipc: int | None = None  # size of random/herding proxies (default: the first synthetic proxy's IPC)
    space: str = "dc720"
    sample: int | None = 24  # None/0: every candidate of the space
    include: list[str] = field(default_factory=list)
    max_mmacs: float | None = None  # leave out sampled candidates above this many million MACs per image
    candidates: list[str] | None = None  # an explicit list replaces space/sample
    proxy_epochs: int = 300
    truth: str = "full"  # full, real:N (a stated cheaper ground truth), or nb201 (the benchmark's accuracies)
    nb201: str | None = None  # path of the NAS-Bench-201 table (else $FYI_NB201, else the data roots)
    nb201_cells: int | None = None  # cells per stage of nb201 candidates (the benchmark: 5; DC-Bench: 1)
    nb201_width: int | None = None  # channels of the first stage (the benchmark: 16)
    connected_only: bool = False  # nb201: leave out cells whose output is disconnected
    stratified: bool = False  # nb201: sample across the ground-truth accuracy range
    full_epochs: int = 30
    seeds: int = 1
    seed: int = 0
    topk: list = field(default_factory=lambda: [5, 10, 20])  # counts, or "10%" of the candidates
    test_size: int | None = None  # None: the whole test split
    lr: float | None = None
    batch_size: int = 256
    dsa: bool = True
    dsa_mode: str = "single"
    bf16: bool = False
    channels_last: bool = False
    herding_epochs: int = 1
    workers: int = 1
    threads: int | None = None
    data_root: str | None = None

    def eval_config(self, epochs: int):
        from ..evaluate import EvalConfig

        return EvalConfig(epochs=int(epochs), lr=self.lr, batch_size=self.batch_size, dsa=self.dsa,
                          dsa_mode=self.dsa_mode, bf16=self.bf16, channels_last=self.channels_last)


def _check_config(cfg: NasConfig) -> None:
    for name in ("proxy_epochs", "full_epochs", "seeds", "batch_size", "workers"):
        v = getattr(cfg, name)
        if not isinstance(v, int) or v < 1:
            raise FyiError(f"--{name.replace('_', '-')} must be a positive integer, got {v!r}")
    if not cfg.proxies:
        raise FyiError("no proxy given; pass --proxy SYNSET, random or herding")


def _is_real_subset(text: str) -> bool:
    """A proxy built from the real data (random, herding, early) or from the candidates (params, flops)."""
    base = text.strip().lower().split(":")[0]
    return base in ("random", "herding", "early", "params", "flops") and not Path(text).exists()


def plan(cfg: NasConfig, dataset, *, device="auto", progress: bool = False,
         cache_dir: str | os.PathLike | None = None) -> tuple[list[str], list[SetSpec], SetSpec]:
    """Candidates, proxy training sets and the ground-truth set of a ranking (deterministic)."""
    info = dataset.info
    _check_config(cfg)
    table = None
    if cfg.truth.strip().lower() == "nb201" or cfg.stratified:
        from ..nb201 import BenchmarkTable, column_for

        column_for(info.name)  # refuse a dataset the table has no column for, before reading 3 MB
        table = BenchmarkTable.read(cfg.nb201, cfg.data_root)
    variant = "".join(f";{k}={v}" for k, v in (("cells", cfg.nb201_cells), ("width", cfg.nb201_width)) if v)
    if cfg.candidates:
        cands = sample_candidates(cfg.candidates, None, include=cfg.include, channels=info.channels,
                                  num_classes=info.num_classes, image_size=info.image_size)
    else:
        stratify = None
        if cfg.stratified:
            if cfg.space.strip().lower() != "nb201":
                raise FyiError("--stratified samples by the NAS-Bench-201 accuracies; use it with --space nb201")
            stratify = table.truth(info.name, nb201_space())
        cands = sample_candidates(cfg.space, cfg.sample, seed=cfg.seed, include=cfg.include, channels=info.channels,
                                  num_classes=info.num_classes, image_size=info.image_size, max_mmacs=cfg.max_mmacs,
                                  connected_only=cfg.connected_only, stratify=stratify, variant=variant)
    if len(cands) < 2:
        raise FyiError(f"a ranking needs at least 2 candidates, got {len(cands)}; raise --sample or add --include")
    if table is not None and cfg.truth.strip().lower() == "nb201":
        accs = table.truth(info.name, cands)
        truth = SetSpec(label="NAS-Bench-201 (200 epochs, full data)", kind="table", dataset=info.name,
                        digest=_sha(str(table.path), sorted(accs.items())), num_images=len(dataset.train), epochs=200,
                        source=str(table.path), values=tuple(sorted(accs.items())))
    else:
        truth = resolve_set(cfg.truth, dataset, seed=cfg.seed)
    if truth.kind == "synset":
        raise FyiError("the ground truth must be real data: --truth full, real:N or nb201")
    resolved = {i: resolve_set(p, dataset) for i, p in enumerate(cfg.proxies) if not _is_real_subset(p)}
    ipc = cfg.ipc
    if ipc is None and resolved:
        ipc = resolved[min(resolved)].ipc or None  # "a real subset of the same size" as the first synthetic set
    specs = []
    for i, p in enumerate(cfg.proxies):
        key = p.strip().lower()
        if i in resolved:
            specs.append(resolved[i])
        elif key in FREE_PROXIES:
            specs.append(free_proxy(key, cands, dataset))
        elif key == "early":
            specs.append(early_stopping_set(dataset, ipc, cfg.proxy_epochs, seed=cfg.seed))
        else:
            specs.append(resolve_set(p, dataset, ipc=ipc, seed=cfg.seed, herding_epochs=cfg.herding_epochs,
                                     device=device, progress=progress, cache_dir=cache_dir))
    return cands, unique_labels(specs), truth


#: proxies that need no training: the candidate's parameter count and its multiply-accumulates per image
FREE_PROXIES = ("params", "flops")


def candidate_params(name: str, *, channels: int = 3, num_classes: int = 10, image_size: int = 32) -> int:
    """Number of parameters of ``name`` (built on the meta device: nothing allocated)."""
    net, _ = _meta_model(name, channels, num_classes, image_size)
    return int(sum(p.numel() for p in net.parameters()))


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
    return SetSpec(label=label, kind="score", dataset=info.name, digest=_sha(kind, sorted(values.items())),
                   num_images=0, source=kind, values=tuple(sorted(values.items())))


def early_stopping_set(dataset, ipc: int | None, proxy_epochs: int, *, seed: int = 0) -> SetSpec:
    """The DC paper's early-stopping baseline: the full training set for the compute of one proxy run.

    A proxy run trains ``proxy_epochs`` epochs on ``ipc`` images per class; the
    same number of SGD steps on the full training set see ``ipc * proxy_epochs``
    fresh images per class once each, which is one epoch on a random subset of
    that size (the first steps of a full-data run).
    """
    from ..baselines import check_ipc

    if not ipc:
        raise FyiError("the early-stopping proxy matches a proxy's compute: give --ipc N or a synthetic-set proxy")
    n = int(ipc) * int(proxy_epochs)
    smallest = min(dataset.train.class_counts())
    if n > smallest:
        raise FyiError(f"early stopping needs {ipc} x {proxy_epochs} = {n} images per class but the smallest class has "
                       f"{smallest}; lower --proxy-epochs")
    check_ipc(dataset, n)
    spec = resolve_set(f"real:{n}", dataset, seed=seed)
    return dataclasses.replace(spec, label=f"early stopping (full data, {n} images/class once)", epochs=1,
                               source=f"first steps of full-data training: {n} images per class, 1 epoch, seed {seed}")


def build_jobs(cfg: NasConfig, candidates, proxies, truth) -> list[Job]:
    seeds = list(range(cfg.seed, cfg.seed + cfg.seeds))
    pcfg, tcfg = cfg.eval_config(cfg.proxy_epochs), cfg.eval_config(cfg.full_epochs)
    jobs = []
    for c in candidates:
        for s in seeds:
            for spec in proxies:
                if spec.trains:
                    jcfg = pcfg if spec.epochs is None else cfg.eval_config(spec.epochs)
                    jobs.append(make_job(c, spec, jcfg, s, role="proxy", test_size=cfg.test_size,
                                         data_root=cfg.data_root))
            if truth.trains:
                jobs.append(make_job(c, truth, tcfg, s, role="truth", test_size=cfg.test_size, data_root=cfg.data_root))
    return jobs


def topk_counts(topk: Sequence, n: int) -> list[int]:
    """``[5, "10%", "20%"]`` -> counts for ``n`` candidates (a percentage rounds, at least 2)."""
    out = []
    for k in topk:
        text = str(k).strip()
        try:
            out.append(max(2, round(n * float(text[:-1]) / 100)) if text.endswith("%") else int(text))
        except ValueError:
            raise FyiError(f"--topk takes counts or percentages (5,10%,20%), got {k!r}") from None
    return sorted(set(out))


def _mean(xs):
    return sum(xs) / len(xs)


def _is_connected_candidate(name: str) -> bool:
    """False only for NAS-Bench-201 cells whose output is cut off from the input."""
    if not name.lower().startswith("nb201:"):
        return True
    from ..nb201 import is_connected, split_name

    return is_connected(split_name(name)[0])


def summarize(cfg: NasConfig, candidates, proxies, truth, jobs: Sequence[Job], records: dict[str, dict]) -> dict:
    """The ranking report (JSON-able) from the finished records."""
    by: dict[tuple, list[dict]] = {}
    for j in jobs:
        by.setdefault((j.candidate, j.role, j.train.label), []).append(records[j.key])

    specs = {s.label: s for s in [*proxies, truth]}

    def collect(spec_label: str, role: str):
        acc, sec, err = {}, {}, {}
        if not specs[spec_label].trains:
            values = dict(specs[spec_label].values)
            return {c: values[c] for c in candidates}, {c: 0.0 for c in candidates}, {}
        for c in candidates:
            recs = by.get((c, role, spec_label), [])
            errors = [r["error"] for r in recs if r.get("error")]
            if errors:
                err[c] = errors[0]
            else:
                acc[c] = _mean([r["acc"] for r in recs])
            sec[c] = sum(r["train_seconds"] for r in recs)
        return acc, sec, err

    t_acc, t_sec, t_err = collect(truth.label, "truth")
    out_proxies = []
    for spec in proxies:
        p_acc, p_sec, p_err = collect(spec.label, "proxy")
        ok = [c for c in candidates if c in p_acc and c in t_acc]
        ks = topk_counts(cfg.topk, len(ok))
        stats_ = rank_stats([p_acc[c] for c in ok], [t_acc[c] for c in ok], names=ok, ks=ks)
        entry = {}
        connected = [c for c in ok if _is_connected_candidate(c)]
        if len(connected) < len(ok):  # disconnected NB201 cells (10 %) make rho look better than it is
            entry["stats_connected"] = rank_stats([p_acc[c] for c in connected], [t_acc[c] for c in connected],
                                                  names=connected, ks=topk_counts(cfg.topk, len(connected)))
        ps, ts = sum(p_sec[c] for c in ok), sum(t_sec[c] for c in ok)
        out_proxies.append({
            "label": spec.label, "kind": spec.kind, "set": spec.describe(),
            "epochs": None if not spec.trains else (spec.epochs or cfg.proxy_epochs),
            "accs": p_acc, "seconds": p_sec, "failed": p_err, "stats": stats_, **entry,
            "cost": {"proxy_seconds": ps, "truth_seconds": ts if truth.trains else None,
                     "saved": ts / ps if ps > 0 and truth.trains else None},
        })
    return {
        "dataset": proxies[0].dataset if proxies else truth.dataset,
        "candidates": list(candidates),
        "seeds": list(range(cfg.seed, cfg.seed + cfg.seeds)),
        "truth": {"label": truth.label, "kind": truth.kind, "set": truth.describe(),
                  "epochs": truth.epochs or cfg.full_epochs,
                  "accs": t_acc, "seconds": t_sec, "failed": t_err},
        "proxies": out_proxies,
        "config": dataclasses.asdict(cfg),
    }


def run_ranking(
    cfg: NasConfig,
    *,
    cache_dir: str | os.PathLike,
    dataset=None,
    device: str | torch.device = "auto",
    progress: bool = True,
) -> dict:
    """Train every candidate on every proxy and on the ground truth (cached, resumable) and rank them.

    Returns the report on every rank (under ``torchrun`` all ranks gather all
    records); only rank 0 should write files.
    """
    from ..data import load_dataset
    from ..runtime import package_versions

    if dataset is None:
        dataset = load_dataset(cfg.dataset, root=cfg.data_root)
    remember_dataset(dataset, cfg.data_root)
    t0 = time.perf_counter()
    rank, world = _rank_world()
    if world > 1:  # resolve once on rank 0 (herding trains a network) and share
        import torch.distributed as dist

        box = [plan(cfg, dataset, device=device, progress=progress, cache_dir=cache_dir) if rank == 0 else None]
        dist.broadcast_object_list(box, src=0)
        candidates, proxies, truth = box[0]
    else:
        candidates, proxies, truth = plan(cfg, dataset, device=device, progress=progress, cache_dir=cache_dir)
    jobs = build_jobs(cfg, candidates, proxies, truth)
    records = execute(jobs, RecordCache(cache_dir), workers=cfg.workers, threads=cfg.threads, device=device,
                      progress=progress, desc="nas")
    report = summarize(cfg, candidates, proxies, truth, jobs, records)
    info = dataset.info
    report["mmacs"] = {c: candidate_mmacs(c, channels=info.channels, num_classes=info.num_classes,
                                          image_size=info.image_size) for c in candidates}
    report.update(cache=str(cache_dir), world_size=world, wall_seconds=time.perf_counter() - t0,
                  versions=package_versions(), time=time.strftime("%Y-%m-%dT%H:%M:%S"))
    return report


# --------------------------------------------------------------------------- #
# presenting a report
# --------------------------------------------------------------------------- #
def _fmt(v, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def summary_rows(report: dict) -> tuple[list[list], list[str]]:
    """One row per proxy: rho, tau, top-k figures, proxy's best, cost ratio."""
    ks = sorted({k for p in report["proxies"] for k in p["stats"]["top"]}, key=int)
    connected = any("stats_connected" in p for p in report["proxies"])
    headers = ["proxy", "images", "epochs", "rho", "tau"]
    if connected:
        headers += ["rho / tau (connected cells)"]
    for k in ks:
        headers += [f"rho@{k}", f"tau@{k}", f"overlap@{k}"]
    headers += ["best: truth acc % (rank)", "oracle %", "proxy compute (s)", "compute saved"]
    rows = []
    for p in report["proxies"]:
        s = p["stats"]
        row = [p["label"], p["set"]["num_images"] or "-", p["epochs"] or "-", _fmt(s["spearman"]), _fmt(s["kendall"])]
        if connected:
            sc = p.get("stats_connected") or s
            row += [f"{_fmt(sc['spearman'])} / {_fmt(sc['kendall'])}"]
        for k in ks:
            t = s["top"].get(k)
            row += [_fmt(t and t["spearman"]), _fmt(t and t["kendall"]), _fmt(t and t["overlap"], 2)]
        b = s["best"]
        saved = p["cost"]["saved"]
        row += [f"{100 * b['truth_acc']:.2f} ({b['truth_rank']}/{s['n']})", f"{100 * b['oracle_acc']:.2f}",
                f"{p['cost']['proxy_seconds']:.0f}", "-" if saved is None else f"{saved:.1f}x"]
        rows.append(row)
    return rows, headers


def candidate_rows(report: dict) -> tuple[list[list], list[str]]:
    """One row per candidate: ground-truth accuracy and rank, each proxy's accuracy."""
    t = report["truth"]["accs"]
    ranks = report["proxies"][0]["stats"]["truth_rank"] if report["proxies"] else {}
    macs = report.get("mmacs") or {}
    headers = ["candidate", "M MACs", f"truth ({report['truth']['label']}) %", "rank"]
    headers += [p["label"] + ("" if p.get("kind") == "score" else " %") for p in report["proxies"]]
    order = sorted(report["candidates"], key=lambda c: -t.get(c, -1))
    rows = []
    for c in order:
        row = [c, _fmt(macs.get(c), 1), _fmt(100 * t[c], 2) if c in t else "failed", ranks.get(c, "-")]
        row += [("failed" if c not in p["accs"] else f"{p['accs'][c]:.4g}" if p.get("kind") == "score"
                 else _fmt(100 * p["accs"][c], 2)) for p in report["proxies"]]
        rows.append(row)
    return rows, headers


def write_report(report: dict, out_dir: str | os.PathLike, *, name: str = "nas", command: str | None = None) -> dict:
    """``<name>.json``, ``<name>.md`` (tables) and ``<name>.png`` (proxy vs truth scatter) in ``out_dir``."""
    from ..plots import rank_scatter
    from ..report import table
    from ..runtime import atomic_path, write_json

    out = Path(out_dir)
    if command:
        report = {**report, "command": command}
    json_path = write_json(out / f"{name}.json", report)
    panels = []
    for p in report["proxies"]:
        ok = [c for c in report["candidates"] if c in p["accs"] and c in report["truth"]["accs"]]
        panels.append({"label": p["label"], "proxy": [p["accs"][c] for c in ok],
                       "truth": [report["truth"]["accs"][c] for c in ok],
                       "ranks": [p["stats"]["truth_rank"][c] for c in ok], "stats": p["stats"],
                       "best": p["stats"]["best"]["candidate"], "names": ok,
                       **({"xscale": 1.0, "xlabel": p["label"], "xlog": True} if p.get("kind") == "score" else {})})
    png = rank_scatter(panels, out / f"{name}.png",
                       title=f"{report['dataset']}: proxy vs ground truth ({report['truth']['label']}, "
                             f"{report['truth']['epochs']} epochs); numbers = ground-truth rank")
    srows, sheads = summary_rows(report)
    crows, cheads = candidate_rows(report)
    md = (f"Ranking of {len(report['candidates'])} candidates on {report['dataset']}; ground truth: "
          f"{report['truth']['label']} ({report['truth']['set']['num_images']} images, {report['truth']['epochs']} "
          f"epochs); seeds {report['seeds']}.\n\n" + table(srows, sheads, markdown=True) + "\n\n"
          + table(crows, cheads, markdown=True) + "\n")
    if command:
        md += f"\nCommand: `{command}`\n"
    with atomic_path(out / f"{name}.md") as tmp:
        tmp.write_text(md)
    return {"json": json_path, "png": png, "md": out / f"{name}.md"}


# --------------------------------------------------------------------------- #
# command line (`fyi nas`)
# --------------------------------------------------------------------------- #
def add_common_training_arguments(sp) -> None:
    """Protocol and parallelism options shared by `fyi nas` and `fyi xarch`."""
    from .. import validate as V

    sp.add_argument("--lr", type=V.positive_float, default=None, help="learning rate (default: a set's learned lr, else 0.01)")
    sp.add_argument("--batch-size", type=V.positive_int, default=256)
    sp.add_argument("--no-dsa", action="store_true", help="train without DSA augmentation")
    sp.add_argument("--dsa-mode", default="single", choices=["single", "fyi", "all"])
    sp.add_argument("--bf16", action="store_true", help="bf16 autocast (CPUs with AVX-512 BF16, or CUDA)")
    sp.add_argument("--channels-last", action="store_true")
    sp.add_argument("--test-size", type=V.positive_int, default=None,
                    help="test on a fixed class-balanced subset of this many test images (default: all)")
    sp.add_argument("--workers", type=V.positive_int, default=1, help="parallel worker processes on this machine (spawned)")
    sp.add_argument("--threads", type=V.positive_int, default=None, help="torch threads per worker (default: cores / workers)")
    sp.add_argument("--cache", default=None, help="folder of per-run records (default OUT/<name>-cache); "
                                                  "rerunning the command resumes from it")
    sp.add_argument("--name", default=None, help="base name of the outputs in OUT (default: the command name)")


def add_nas_arguments(sp) -> None:
    from .. import validate as V

    sp.add_argument("--dataset", required=True)
    sp.add_argument("--proxy", action="append", default=None, metavar="SYNSET|random|herding|early|params|flops",
                    help="a proxy: a synthetic set, a random or herding real subset, early (full data for one proxy "
                         "run's compute), or params / flops (no training); repeat for several (default: random)")
    sp.add_argument("--ipc", type=V.positive_int, default=None,
                    help="images per class of random/herding proxies (default: the first synthetic proxy's IPC)")
    sp.add_argument("--space", default="dc720",
                    help=f"candidate space: {', '.join(list_spaces())}, or a comma-separated list of models")
    sp.add_argument("--sample", type=V.non_negative_int, default=24, help="candidates drawn from the space (0: all of them)")
    sp.add_argument("--include", default="", help="candidates always added, e.g. vgg11,resnet18")
    sp.add_argument("--max-mmacs", type=V.positive_float, default=None,
                    help="sample only candidates of at most this many million MACs per image (a compute cap)")
    sp.add_argument("--proxy-epochs", type=V.positive_int, default=300)
    sp.add_argument("--truth", default="full",
                    help="ground truth: full (train on the whole training set), real:N (N random images per class, "
                         "a cheaper stated budget) or nb201 (NAS-Bench-201's 200-epoch accuracies; --space nb201)")
    sp.add_argument("--nb201", default=None, metavar="CSV",
                    help="the NAS-Bench-201 accuracy table (default $FYI_NB201, else nas-bench-201-accuracies.csv "
                         "in the data roots)")
    sp.add_argument("--nb201-cells", type=V.positive_int, default=None,
                    help="cells per stage of nb201 candidates (the benchmark's 5; 1 is DC-Bench's cheaper network)")
    sp.add_argument("--nb201-width", type=V.positive_int, default=None, help="channels of nb201 candidates' first stage (16)")
    sp.add_argument("--connected-only", action="store_true",
                    help="nb201: leave out cells whose output is disconnected from the input (they score 10 %%)")
    sp.add_argument("--stratified", action="store_true",
                    help="nb201: draw --sample cells evenly across the NAS-Bench-201 accuracy range")
    sp.add_argument("--full-epochs", type=V.positive_int, default=30, help="ground-truth training epochs")
    sp.add_argument("--seeds", type=V.positive_int, default=1, help="training seeds per candidate and set")
    sp.add_argument("--topk", default="5,10,20",
                    help="top-k sizes (by ground truth) for the rank statistics; counts or percentages (10%%,20%%)")
    sp.add_argument("--herding-epochs", type=V.non_negative_int, default=1)
    add_common_training_arguments(sp)


def _topk_list(text: str) -> list:
    """``"5,10%,20%"`` -> ``[5, "10%", "20%"]`` (checked now; percentages resolve per ranking)."""
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    topk_counts(items, 100)  # refuses anything that is neither a count nor a percentage
    return [t if t.endswith("%") else int(t) for t in items]


def run_nas_command(args) -> None:
    import sys

    from ..report import table

    name = args.name or "nas"
    cfg = NasConfig(
        dataset=args.dataset, proxies=args.proxy or ["random"], ipc=args.ipc, space=args.space,
        sample=args.sample or None, include=_split_names(args.include), max_mmacs=args.max_mmacs,
        proxy_epochs=args.proxy_epochs,
        truth=args.truth, full_epochs=args.full_epochs, seeds=args.seeds, seed=args.seed,
        topk=_topk_list(args.topk),
        test_size=args.test_size,
        nb201=args.nb201, nb201_cells=args.nb201_cells, nb201_width=args.nb201_width,
        connected_only=args.connected_only, stratified=args.stratified, lr=args.lr, batch_size=args.batch_size,
        dsa=not args.no_dsa, dsa_mode=args.dsa_mode, bf16=args.bf16, channels_last=args.channels_last,
        herding_epochs=args.herding_epochs, workers=args.workers, threads=args.threads, data_root=args.data_root,
    )
    _check_config(cfg)
    device = init_distributed(args.device, args.threads)
    try:
        cache = args.cache or str(Path(args.out) / f"{name}-cache")
        report = run_ranking(cfg, cache_dir=cache, device=device, progress=not args.quiet)
        if _rank_world()[0] != 0:
            return
        rows, heads = candidate_rows(report)
        print(table(rows, heads))
        print()
        rows, heads = summary_rows(report)
        print(table(rows, heads))
        paths = write_report(report, args.out, name=name, command=" ".join(["fyi", *sys.argv[1:]]))
        print(f"report: {paths['json']}, {paths['md']}, {paths['png']}")
    finally:
        _finish_distributed()


def _finish_distributed() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
