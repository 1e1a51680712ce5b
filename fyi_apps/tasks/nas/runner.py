"""The job runner: one cached JSON record per training run, worker processes and ``torch.distributed``.

A :class:`Job` is one training run (candidate, training set, protocol, seed),
named by a hash of everything that defines it; :class:`RecordCache` keeps one
JSON record per finished job, written atomically, so a rerun skips finished
jobs.  :func:`run_jobs` trains the missing ones in this process or in a
``ProcessPoolExecutor`` of spawned workers; :func:`execute` shards them by
candidate over the ranks of ``torchrun`` and gathers the records.
Used by the NAS ranking and by :mod:`fyi_apps.tasks.xarch`.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any, Sequence

import torch

from ...distributed import (  # noqa: F401 - re-exported: the runner's torchrun helpers, now shared
    default_threads, distributed_session, finish_distributed, init_distributed, rank_world, shard,
)
from ...errors import FyiError
from .records import RecordCache, record_problem  # noqa: F401  (re-exported)
from .sets import SetSpec, content_hash
from .spaces import unique_names


#: Bump when a change makes old cached records incomparable with new ones.
RECORD_VERSION = 2  # 2: settings at their default value left out of the key


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
    curve: tuple[int, ...] = ()  # image-passes at which the network is also tested (a learning curve)

    @property
    def config(self):
        from ...evaluate import EvalConfig

        return EvalConfig(**dict(self.cfg))

    @property
    def key(self) -> str:
        from ...evaluate import EvalConfig

        cfg = self.config
        defaults = dataclasses.asdict(EvalConfig())
        # settings at their default value are left out, so that a new EvalConfig field keeps old keys valid
        # (a changed default needs a RECORD_VERSION bump)
        ident = {
            "v": RECORD_VERSION, "candidate": self.candidate, "dataset": self.train.dataset,
            "train": self.train.digest, "lr": cfg.resolved_lr(self.train.lr),
            "cfg": {k: v for k, v in self.cfg if k not in defaults or defaults[k] != v},
            "cutmix": self.train.cutmix, "seed": int(self.seed), "test_size": self.test_size,
        }
        if self.curve:  # keys of runs without a curve are those of earlier versions
            ident["curve"] = list(self.curve)
        return content_hash(ident)[:24]


def make_job(candidate: str, train: SetSpec, cfg, seed: int, *, role: str = "proxy",
             test_size: int | None = None, data_root: str | None = None, curve: Sequence[int] = ()) -> Job:
    d = dataclasses.asdict(cfg)
    if train.cutmix and not d.get("cutmix"):
        d["cutmix"] = train.cutmix  # IDC's evaluation, as evaluate_synset does
    return Job(candidate=candidate, train=train, cfg=tuple(sorted(d.items())), seed=int(seed), role=role,
               test_size=test_size, data_root=data_root, curve=tuple(sorted({int(c) for c in curve})))


# per-process caches of loaded datasets and synthetic sets (workers rebuild sets from specs)
_DATASETS: dict[tuple, Any] = {}
_SYNSETS: dict[str, tuple] = {}


def remember_dataset(dataset, data_root: str | None = None) -> None:
    """Let jobs of this process reuse an already loaded dataset instead of loading it again."""
    _DATASETS[(dataset.info.name, data_root, None)] = dataset


def _test_subset(dataset, n: int | None):
    from ...data import Split
    from ...runtime import derive_seed, make_generator

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
    from ...data import load_dataset

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
    from ...synset import load_synset

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
                from ...zca import zca_from_config

                transform = zca_from_config(s.config["zca"], ds)
            _SYNSETS[spec.path] = (*s.decoded(), s.lr, transform)
        images, labels, lr, transform = _SYNSETS[spec.path]
        return images, labels, ds, lr, transform
    raise FyiError(f"unknown training-set kind {spec.kind!r}")


def score_job(job: Job, device: str | torch.device = "auto") -> dict:
    """The zero-cost scores of one candidate (a ``zerocost`` job): its record, not cached here."""
    from ...networks import create_model
    from ...runtime import derive_seed, make_generator, package_versions, resolve_device
    from .zerocost import score_network

    device = resolve_device(device)
    ds = _dataset_for(job)
    info = ds.info
    measures = job.train.source.split(",")
    g = make_generator(derive_seed(job.seed, "zero-cost-batch"))
    idx = torch.randperm(len(ds.train), generator=g)[: job.train.num_images]
    from ...training import as_float

    x = as_float(ds.train.images[idx].to(device), info.mean, info.std)
    y = ds.train.labels[idx].to(device)
    net_seed = derive_seed(job.seed, "eval-net", job.candidate)

    def make_net():
        return create_model(job.candidate, channels=info.channels, num_classes=info.num_classes,
                            image_size=info.image_size, seed=net_seed).to(device)

    t0 = time.perf_counter()
    scores, seconds = score_network(make_net, x, y, measures)
    return {
        "key": job.key, "candidate": job.candidate, "role": job.role, "set": job.train.label,
        "set_digest": job.train.digest, "dataset": job.train.dataset, "num_train": int(idx.numel()),
        "seed": job.seed, "measures": measures,
        # -inf (a score that is not a number, e.g. a cell cut off from its input) is stored as null: ranks last
        "scores": {m: (v if v != float("-inf") else None) for m, v in scores.items()}, "score_seconds": seconds,
        "acc": None, "error": None, "train_seconds": time.perf_counter() - t0, "seconds": time.perf_counter() - t0,
        "device": str(device), "threads": torch.get_num_threads(), "rank": rank_world()[0],
        "versions": package_versions(), "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def train_job(job: Job, device: str | torch.device = "auto", progress: bool = False, rank: int | None = None) -> dict:
    """Train and test one job in this process and return its record (not cached here)."""
    from ...evaluate import evaluate_images
    from ...runtime import package_versions

    if job.train.kind == "zerocost":
        return score_job(job, device)
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
                              learned_lr=lr, device=device, progress=progress, curve=job.curve, **extra)
        rec.update(acc=res.accs[0], train_seconds=res.seconds_per_run, lr=res.lr,
                   final_loss=res.extra["train"][0].get("final_loss"), error=None)
        if job.curve:
            rec["curve"] = res.extra["curves"][0]
    except FyiError as e:  # e.g. a candidate whose training diverges: a deterministic failure, recorded
        rec.update(acc=None, train_seconds=time.perf_counter() - t0, error=e.args[0])
    rec.update(
        seconds=time.perf_counter() - t0, device=str(device), threads=torch.get_num_threads(),
        rank=rank_world()[0] if rank is None else rank, versions=package_versions(), time=time.strftime("%Y-%m-%dT%H:%M:%S"),
    )
    return rec


def _pool_init(threads: int) -> None:
    torch.set_num_threads(max(1, int(threads)))
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass


def _pool_run(job: Job, device: str, cache_folder: str, rank: int, reported: frozenset = frozenset()) -> dict | None:
    return _claimed_run(job, device, RecordCache(cache_folder, reported), rank=rank)


def _claimed_run(job: Job, device, cache: RecordCache, rank: int | None = None) -> dict | None:
    """Run ``job`` if this process can claim it (None when another live process holds it); cache its record."""
    rec = cache.get(job.key)
    if rec is not None:  # finished by another process meanwhile
        return rec
    if not cache.claim(job.key):
        return None
    try:
        rec = cache.get(job.key)  # finished by another process between our look and our claim
        if rec is None:
            rec = train_job(job, device, rank=rank)
            cache.put(rec)
    finally:
        cache.release(job.key)
    return rec


def _wait_for_others(jobs: Sequence[Job], cache: RecordCache, device, done: dict, bar, poll: float = 2.0) -> None:
    """Jobs another process claimed: take their records when they appear, run them if the claimant died."""
    waiting = list(jobs)
    while waiting:
        still = []
        for j in waiting:
            rec = cache.get(j.key)
            if rec is None and not cache.claimed_elsewhere(j.key):
                rec = _claimed_run(j, device, cache)
            if rec is None:
                still.append(j)
            else:
                done[j.key] = rec
                bar.update(1)
        if still:
            time.sleep(poll)
        waiting = still


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
    from ...runtime import progress_bar as tqdm

    from ...runtime import resolve_device

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
    from ...runtime import note_kept

    note_kept("records", f"every finished run in {cache.folder}")
    bar = tqdm(total=len(todo), desc=desc, disable=not progress, dynamic_ncols=True)
    deferred: list[Job] = []  # claimed by another process on the same folder
    if workers <= 1:
        old_threads = torch.get_num_threads()
        if threads:
            torch.set_num_threads(int(threads))
        try:
            for j in todo:
                bar.set_postfix_str(_short(j.candidate) + " / " + j.train.label)
                rec = _claimed_run(j, device, cache)
                if rec is None:
                    deferred.append(j)
                    continue
                done[j.key] = rec
                bar.update(1)
            _wait_for_others(deferred, cache, device, done, bar)
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
    rank = rank_world()[0]
    try:
        reported = frozenset(cache.reported)  # a damaged record the listing reported is not reported again
        futures = {pool.submit(_pool_run, j, str(device), str(cache.folder), rank, reported): j for j in todo}
        for fut in as_completed(futures):
            rec = fut.result()
            if rec is None:
                deferred.append(futures[fut])
                continue
            done[rec["key"]] = rec
            bar.update(1)
        _wait_for_others(deferred, cache, device, done, bar)
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
def execute(jobs: Sequence[Job], cache: RecordCache, *, progress: bool = True, desc: str = "training",
            **options) -> dict[str, dict]:
    """:func:`run_jobs`, sharded by candidate over the ranks when ``torch.distributed`` is initialised.

    ``options``: :func:`run_jobs`' ``workers``, ``threads`` and ``device``.
    Rank r runs the jobs of candidates ``r::world_size`` (in first-appearance
    order); the records are gathered on every rank with ``all_gather_object``
    and rank 0 also stores the other ranks' records in its cache.
    """
    rank, world = rank_world()
    if world == 1:
        return run_jobs(jobs, cache, progress=progress, desc=desc, **options)
    import torch.distributed as dist

    mine = set(shard(unique_names(j.candidate for j in jobs), rank, world))
    local = run_jobs([j for j in jobs if j.candidate in mine], cache, progress=progress and rank == 0,
                     desc=f"{desc} (rank {rank}/{world})", **options)
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
