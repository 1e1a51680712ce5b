"""A whole NAS-proxy ranking: the configuration, the plan, the jobs, the report, :func:`run_ranking`.

:func:`plan` turns a :class:`NasConfig` into the candidates (:mod:`.spaces`),
the proxy training sets (:mod:`.sets`) and the ground truth (:mod:`.truth`);
:func:`build_jobs` makes one job per candidate, set and seed; the runner
(:mod:`.runner`) trains them (cached, resumable, in parallel); and
:func:`summarize` compares each proxy's accuracies with the ground truth's
(:mod:`.stats`).
"""
from __future__ import annotations

import dataclasses
import math
import os
import time
from pathlib import Path
from typing import Sequence

import torch

from ...errors import FyiError
from .config import DEFAULT_SAMPLE, NasConfig, check_config  # noqa: F401 - re-exported (the config lives beside its options)
from .measure import candidate_mmacs
from .result import RankingResult
from .runner import Job, RecordCache, execute, make_job, rank_world, remember_dataset
from .sets import (FREE_PROXIES, SetSpec, early_stopping_set, free_proxy, resolve_set, unique_labels, zero_cost_job_set,
                   zero_cost_sets)
from .zerocost import ZERO_COST
from .spaces import NAMED_SPACES, nb201_space, sample_candidates

from .stats import is_connected_candidate, rank_stats, topk_counts
from .truth import benchmark_table, truth_set


def _is_real_subset(text: str) -> bool:
    """A proxy built from the real data (random, herding, early) or from the candidates (params, flops)."""
    base = text.strip().lower().split(":")[0]
    return (base in ("random", "herding", "early", "params", "flops") or _zero_cost_name(text) is not None) \
        and not Path(text).exists()


def _zero_cost_name(text: str) -> str | None:
    key = str(text).strip().lower().replace("-", "_")
    return key if key in ZERO_COST else None


def plan(cfg: NasConfig, dataset, *, device="auto", progress: bool = False,
         cache_dir: str | os.PathLike | None = None) -> tuple[list[str], list[SetSpec], SetSpec]:
    """Candidates, proxy training sets and the ground-truth set of a ranking (deterministic)."""
    info = dataset.info
    table = benchmark_table(cfg, info.name)
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
        sample = cfg.sample
        if sample is None:
            sample = DEFAULT_SAMPLE if cfg.space.strip().lower() in NAMED_SPACES else 0
        cands = sample_candidates(cfg.space, sample or None, seed=cfg.seed, include=cfg.include, channels=info.channels,
                                  num_classes=info.num_classes, image_size=info.image_size, max_mmacs=cfg.max_mmacs,
                                  connected_only=cfg.connected_only, stratify=stratify, variant=variant)
    if len(cands) < 2:
        raise FyiError(f"a ranking needs at least 2 candidates, got {len(cands)}; raise --sample or add --include")
    truth = truth_set(cfg, dataset, cands, table)
    resolved = {i: resolve_set(p, dataset) for i, p in enumerate(cfg.proxies) if not _is_real_subset(p)}
    ipc = cfg.ipc
    if ipc is None and resolved:
        ipc = resolved[min(resolved)].ipc or None  # "a real subset of the same size" as the first synthetic set
    specs = []
    zc = [_zero_cost_name(p) for p in cfg.proxies if _zero_cost_name(p) and not Path(p).exists()]
    zc_specs = dict(zip(zc, zero_cost_sets(zc, dataset, seed=cfg.seed))) if zc else {}
    for i, p in enumerate(cfg.proxies):
        key = p.strip().lower()
        if i in resolved:
            specs.append(resolved[i])
        elif _zero_cost_name(p) in zc_specs:
            specs.append(zc_specs[_zero_cost_name(p)])
        elif key in FREE_PROXIES:
            specs.append(free_proxy(key, cands, dataset))
        elif key == "early":
            specs.append(early_stopping_set(dataset, ipc, cfg.proxy_epochs, seed=cfg.seed))
        else:
            specs.append(resolve_set(p, dataset, ipc=ipc, seed=cfg.seed, herding_epochs=cfg.herding_epochs,
                                     device=device, progress=progress, cache_dir=cache_dir))
    return cands, unique_labels(specs), truth


def curve_points(cfg: NasConfig, spec: SetSpec) -> list[tuple[int, int]]:
    """``(proxy epochs, image-passes)`` of each learning-curve point of a trained proxy (none without ``cfg.curve``).

    A proxy set of n images trained for E epochs is tested after ``e * n``
    image-passes for each ``e`` in ``cfg.curve`` up to E; early stopping after the
    same image-passes as a proxy of ``ipc`` images per class (its
    ``curve_unit``), so that both sit at the same compute.
    """
    if not cfg.curve or not spec.trains:
        return []
    unit = spec.curve_unit or spec.num_images
    total = (spec.epochs or cfg.proxy_epochs) * spec.num_images
    return [(int(e), int(e) * unit) for e in sorted(set(cfg.curve)) if int(e) * unit <= total]


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
                                         data_root=cfg.data_root, curve=[n for _, n in curve_points(cfg, spec)]))
            if truth.trains:
                jobs.append(make_job(c, truth, tcfg, s, role="truth", test_size=cfg.test_size, data_root=cfg.data_root))
    zero = zero_cost_job_set(proxies)
    if zero is not None:  # one scoring job per candidate for all zero-cost measures (seed: the ranking's seed)
        from ...evaluate import EvalConfig

        # the training protocol does not apply to a scoring job: a fixed config keeps its key independent of it
        jobs += [make_job(c, zero, EvalConfig(epochs=1), cfg.seed, role="zerocost", data_root=cfg.data_root)
                 for c in candidates]
    return jobs


def _mean(xs):
    return sum(xs) / len(xs)


def _distill_seconds(path: str | None) -> float | None:
    """The distillation time a synthetic set recorded (None for sets that did not record it).

    Sets written before resumed runs counted their earlier segments hold only
    the last segment's seconds; where the run's log (``<stem>.log.json``) lies
    beside the set and covers every iteration, its summed iteration times count
    instead when they are larger.
    """
    if not path:
        return None
    import json

    from ...distill.checkpoint import stem
    from ...distill.logs import log_json_path
    from ...synset import load_synset

    s = load_synset(path)
    secs = s.extra.get("seconds")
    secs = float(secs) if isinstance(secs, (int, float)) else None
    try:
        log = json.loads(log_json_path(stem(Path(path))).read_text())["log"]
        iterations = int(s.config.get("iterations") or -1)
        if len(log) == iterations and all(isinstance(r.get("seconds"), (int, float)) for r in log):
            summed = float(sum(r["seconds"] for r in log))
            secs = summed if secs is None else max(secs, summed)
    except (OSError, ValueError, KeyError, TypeError):
        pass  # no log beside the set: its own record
    return secs


def _curve(cfg: NasConfig, spec: SetSpec, candidates, by: dict, t_acc: dict) -> list[dict]:
    """Rank statistics of a trained proxy at each point of its learning curve (accuracies over seeds averaged)."""
    out = []
    for epochs, images in curve_points(cfg, spec):
        acc, sec = {}, []
        for c in candidates:
            pts = [p for r in by.get((c, "proxy", spec.label), []) if not r.get("error")
                   for p in (r.get("curve") or []) if p.get("images") == images]
            if pts and c in t_acc:
                acc[c] = _mean([p["acc"] for p in pts])
                sec.append(_mean([p["seconds"] for p in pts]))
        ok = [c for c in candidates if c in acc]
        out.append({"epochs": epochs, "image_passes": images, "seconds": _mean(sec) if sec else None,
                    "accs": acc, "stats": rank_stats([acc[c] for c in ok], [t_acc[c] for c in ok], names=ok,
                                                     ks=topk_counts(cfg.topk, len(ok)))})
    return out


#: the zero-cost vote of Abdelfattah et al. (ICLR 2021), as a mean-rank ensemble
VOTE = ("synflow", "jacob_cov", "snip")


def ensemble_parts(cfg: NasConfig, text: str, labels: Sequence[str]) -> list[str]:
    """The proxy labels an ensemble names (``a+b``, matched to proxy labels or to the ``--proxy`` texts)."""
    by_text = {str(p).strip().lower(): lab for p, lab in zip(cfg.proxies, labels)}
    by_label = {lab.lower(): lab for lab in labels}

    def find(name: str) -> str | None:
        key = name.strip().lower()
        return by_label.get(key) or by_text.get(key) or by_label.get(key.replace("-", "_"))

    if text.strip().lower() == "vote":
        tokens = list(VOTE)
    else:  # split at '+', but a label may hold one ("dm+fyi ipc10"): the longest run of pieces that names a proxy
        pieces = [t.strip() for t in text.split("+")]
        tokens, i = [], 0
        while i < len(pieces):
            j = next((j for j in range(len(pieces), i, -1) if find("+".join(pieces[i:j]))), i + 1)
            tokens.append("+".join(pieces[i:j]))
            i = j
        tokens = [t for t in tokens if t.strip()]
    out = []
    for n in tokens:
        lab = find(n)
        if lab is None:
            raise FyiError(f"ensemble {text!r} names {n.strip()!r}, which is not one of this ranking's proxies "
                           f"({', '.join(labels)}); add it with --proxy")
        out.append(lab)
    if len(out) < 2:
        raise FyiError(f"ensemble {text!r} needs at least two proxies joined by '+', e.g. params+synflow")
    return out


def _mean_rank(parts: Sequence[dict], candidates: Sequence[str]) -> dict[str, float]:
    """The mean over ``parts`` ({candidate: value}, larger is better) of each candidate's rank (1 = worst)."""
    from scipy.stats import rankdata

    ok = [c for c in candidates if all(c in p for p in parts)]
    ranks = [rankdata([p[c] for c in ok]) for p in parts]
    return {c: float(sum(r[i] for r in ranks) / len(ranks)) for i, c in enumerate(ok)}


def ensemble_entries(cfg: NasConfig, report: dict, truth: SetSpec) -> list[dict]:
    """One report entry per ensemble of ``cfg.ensembles`` (mean rank of its proxies; curves where one has one)."""
    entries = {p["label"]: p for p in report["proxies"]}
    t_acc, cands = report["truth"]["accs"], report["candidates"]
    out = []
    for text in cfg.ensembles:
        parts = [entries[lab] for lab in ensemble_parts(cfg, text, list(entries))]
        values = _mean_rank([p["accs"] for p in parts], cands)
        ok = [c for c in cands if c in values and c in t_acc]
        seconds = {c: sum((p.get("seconds") or {}).get(c, 0.0) for p in parts) for c in ok}
        stats_ = rank_stats([values[c] for c in ok], [t_acc[c] for c in ok], names=ok,
                            ks=topk_counts(cfg.topk, len(ok)))
        trained = [p for p in parts if p.get("epochs") is not None]
        entry = {"label": "ensemble: " + " + ".join(p["label"] for p in parts), "kind": "ensemble",
                 "components": [p["label"] for p in parts],
                 "set": {"num_images": sum(p["set"].get("num_images") or 0 for p in trained) or None},
                 "epochs": trained[0]["epochs"] if len(trained) == 1 else None,
                 "accs": values, "seconds": seconds, "failed": {}, "stats": stats_,
                 "cost": {"proxy_seconds": sum(seconds.values()), "truth_seconds": None, "saved": None}}
        curved = [p for p in parts if p.get("curve")]
        if len(curved) == 1:  # the others are fixed scores: the ensemble follows the trained proxy's curve
            base = curved[0]
            others = [p for p in parts if p is not base]
            fixed = sum((_mean([v for v in (p.get("seconds") or {}).values()]) if p.get("seconds") else 0.0)
                        for p in others)
            entry["curve"] = []
            for point in base["curve"]:
                v = _mean_rank([point["accs"], *[p["accs"] for p in others]], cands)
                okp = [c for c in cands if c in v and c in t_acc]
                entry["curve"].append({
                    "epochs": point["epochs"], "image_passes": point["image_passes"],
                    "seconds": None if point["seconds"] is None else point["seconds"] + fixed, "accs": v,
                    "stats": rank_stats([v[c] for c in okp], [t_acc[c] for c in okp], names=okp,
                                        ks=topk_counts(cfg.topk, len(okp)))})
        out.append(entry)
    return out


#: the label of the parameter-count proxy, the free baseline every other proxy is compared with
PARAMS_LABEL = "parameter count"


def _points(entry: dict) -> list[tuple[int | None, dict]]:
    """``[(proxy epochs, {candidate: value})]``: each curve point, or the proxy's one result."""
    if entry.get("curve"):
        return [(c["epochs"], c["accs"]) for c in entry["curve"]]
    return [(entry.get("epochs"), entry["accs"])]


def paired_comparisons(report: dict, *, resamples: int = 1000, seed: int = 0) -> list[dict]:
    """rho(A) - rho(B) with paired-bootstrap intervals for the pairs a reader of the ranking asks about.

    * ``fyi``: every proxy whose label has ``+fyi`` against its twin without it
      (``dm+fyi ipc10`` - ``dm ipc10``), at each shared curve point;
    * ``vs-params``: every trained proxy and ensemble against the parameter
      count (when it is one of the proxies), at each of its curve points.

    Returns ``[{"a", "b", "kind", "points": [{"epochs", **rho_difference}]}]``.
    """
    from .stats import rho_difference

    entries = {p["label"]: p for p in report["proxies"]}
    truth = report["truth"]["accs"]
    pairs = []
    for label, p in entries.items():
        if "+fyi" in label and p.get("kind") != "ensemble":
            twin = label.replace("+fyi", "", 1)
            if twin in entries:
                pairs.append((label, twin, "fyi"))
    if PARAMS_LABEL in entries:
        pairs += [(label, PARAMS_LABEL, "vs-params") for label, p in entries.items()
                  if p.get("epochs") is not None or (p.get("kind") == "ensemble" and p.get("curve"))]
    out = []
    for a, b, kind in pairs:
        b_points = dict(_points(entries[b]))
        points = []
        for epochs, a_vals in _points(entries[a]):
            b_vals = b_points.get(epochs) if len(b_points) > 1 else next(iter(b_points.values()))
            if b_vals is None:
                continue
            ok = [c for c in report["candidates"] if c in a_vals and c in b_vals and c in truth]
            points.append({"epochs": epochs, **rho_difference([a_vals[c] for c in ok], [b_vals[c] for c in ok],
                                                              [truth[c] for c in ok], resamples=resamples,
                                                              seed=seed)})
        if points:
            out.append({"a": a, "b": b, "kind": kind, "points": points})
    return out


def summarize(cfg: NasConfig, candidates, proxies, truth, jobs: Sequence[Job], records: dict[str, dict]) -> dict:
    """The ranking report (JSON-able) from the finished records."""
    by: dict[tuple, list[dict]] = {}
    for j in jobs:
        by.setdefault((j.candidate, j.role, j.train.label), []).append(records[j.key])

    specs = {s.label: s for s in [*proxies, truth]}

    def collect(spec_label: str, role: str):
        acc, sec, err = {}, {}, {}
        spec = specs[spec_label]
        if spec.kind == "zerocost":
            for c in candidates:
                recs = by.get((c, "zerocost", "zero-cost"), [])
                if recs:
                    acc[c] = recs[0]["scores"].get(spec.source, float("nan"))
                    sec[c] = float(recs[0]["score_seconds"].get(spec.source, 0.0))
            finite = [v for v in acc.values() if v is not None and math.isfinite(v)]
            low = (min(finite) - 1.0) if finite else 0.0
            for c, v in list(acc.items()):
                if v is None or not math.isfinite(v):
                    acc[c] = low  # a score that is not a number ranks last
            return acc, sec, err
        if not spec.trains:
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
        connected = [c for c in ok if is_connected_candidate(c)]
        if len(connected) < len(ok):  # disconnected NB201 cells (10 %) make rho look better than it is
            entry["stats_connected"] = rank_stats([p_acc[c] for c in connected], [t_acc[c] for c in connected],
                                                  names=connected, ks=topk_counts(cfg.topk, len(connected)))
        ps, ts = sum(p_sec[c] for c in ok), sum(t_sec[c] for c in ok)
        if curve_points(cfg, spec):
            entry["curve"] = _curve(cfg, spec, candidates, by, t_acc)
        if spec.kind == "synset":  # making the set is part of the proxy's cost: once, shared by the candidates
            entry["distill_seconds"] = _distill_seconds(spec.path)
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
) -> RankingResult:
    """Train every candidate on every proxy and on the ground truth (cached, resumable) and rank them.

    Returns the :class:`~fyi_apps.tasks.nas.result.RankingResult` on every rank
    (under ``torchrun`` all ranks gather all records); only rank 0 should write
    files.
    """
    from ...data import load_dataset
    from ...runtime import package_versions

    if isinstance(cfg, dict):
        unknown = sorted(set(cfg) - {f.name for f in dataclasses.fields(NasConfig)})
        if unknown:
            raise FyiError(f"cfg has unknown field(s) {', '.join(map(str, unknown))}; see NasConfig's fields")
        cfg = NasConfig(**cfg)
    if not isinstance(cfg, NasConfig):
        raise FyiError(f"cfg must be a NasConfig (or a dict of its fields), got {type(cfg).__name__}")
    if dataset is None:
        dataset = load_dataset(cfg.dataset, root=cfg.data_root)
    remember_dataset(dataset, cfg.data_root)
    t0 = time.perf_counter()
    rank, world = rank_world()
    if world > 1:  # resolve once on rank 0 (herding trains a network) and share
        import torch.distributed as dist

        box = [plan(cfg, dataset, device=device, progress=progress, cache_dir=cache_dir) if rank == 0 else None]
        dist.broadcast_object_list(box, src=0)
        candidates, proxies, truth = box[0]
    else:
        candidates, proxies, truth = plan(cfg, dataset, device=device, progress=progress, cache_dir=cache_dir)
    if cfg.curve and not any(p.trains for p in proxies):
        import sys

        print("fyi: warning: --curve records the learning curves of trained proxies, and none of these proxies "
              "trains; it changes nothing here", file=sys.stderr)
    for text in cfg.ensembles:  # a misspelt ensemble fails before any training
        ensemble_parts(cfg, text, [p.label for p in proxies])
    jobs = build_jobs(cfg, candidates, proxies, truth)
    records = execute(jobs, RecordCache(cache_dir), workers=cfg.workers, threads=cfg.threads, device=device,
                      progress=progress, desc="nas")
    report = summarize(cfg, candidates, proxies, truth, jobs, records)
    report["proxies"] += ensemble_entries(cfg, report, truth)
    report["paired"] = paired_comparisons(report)
    info = dataset.info
    report["mmacs"] = {c: candidate_mmacs(c, channels=info.channels, num_classes=info.num_classes,
                                          image_size=info.image_size) for c in candidates}
    report.update(cache=str(cache_dir), world_size=world, wall_seconds=time.perf_counter() - t0,
                  versions=package_versions(), time=time.strftime("%Y-%m-%dT%H:%M:%S"))
    return RankingResult(report)
