"""Continual-learning experiments: the config, one run, memories x class orders, aggregation and files.

:func:`run_experiment` runs every memory of a :class:`CLConfig` on every class
order with the config's protocol, caches each finished run (rerunning the same
command is cheap), and writes JSON, CSV and the accuracy-vs-classes plot;
``fyi cl`` and ``benchmarks/continual.py`` call it.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import math
import re
import sys
import time
from pathlib import Path
from typing import Sequence

from ...errors import FyiError
from ...options import check_fields, default_of
from ...runtime import cache_key, resolve_device
from .benchmarks import make_benchmark, resolve_benchmark, split_sizes
from .config import CLConfig  # the config lives beside its options (re-exported)
from .memory import make_memory, memory_label, parse_memory_spec
from .online import OnlineDistillation, method_options
from .protocols import summarize
from .registry import PROTOCOLS


def _mean_std(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    vals = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    if not vals:
        return None, None
    m = sum(vals) / len(vals)
    return m, math.sqrt(sum((v - m) ** 2 for v in vals) / len(vals))


def load_cl_dataset(cfg: CLConfig, ds_name: str, root=None):
    """The benchmark's dataset: loaded, and reduced to ``cfg.train_per_class`` training images per class if set."""
    from ...data import load_dataset

    dataset = load_dataset(ds_name, root=root)
    if cfg.train_per_class is not None:  # one reduced training set for every memory and class order
        dataset = dataset.reduced(cfg.train_per_class)
    return dataset


def run_one(cfg: CLConfig, kind: str, seed: int, *, dataset=None, root=None, device="auto",
            progress: bool = False) -> dict:
    """One memory kind on one class order (``seed``): the record plus its summary."""
    key, ds_name, n_exp = resolve_benchmark(cfg.benchmark, cfg.experiences)
    device = resolve_device(device)
    protocol = PROTOCOLS.get(cfg.protocol)()
    if dataset is None:
        dataset = load_cl_dataset(cfg, ds_name, root)
    bench = make_benchmark(dataset, n_exp, seed=seed, name=key, root=root, order_rule=cfg.order_rule,
                           holdout=cfg.holdout)
    info = bench.dataset.info
    model = protocol.make_learner(cfg, info, seed)
    memory = make_memory(kind, ipc=cfg.ipc, num_classes=info.num_classes, info=info, seed=seed, device=device,
                         model=model if protocol.uses_learner else None, iterations=cfg.iterations,
                         lr_img=cfg.lr_img, batch_real=cfg.batch_real, distill_options=cfg.distill_options,
                         herding_epochs=cfg.herding_epochs, arch=cfg.arch, bf16=cfg.bf16, progress=False,
                         cache_dir=cfg.distill_cache)
    t0 = time.perf_counter()
    rec = protocol.run(cfg, bench, memory, model=model, seed=seed, device=device, progress=progress)
    label = memory_label(kind)
    # the key "buffer" (the memory's label) stays: cached runs, run keys, result files and their CSV read it
    rec.update(buffer=label, seed=seed, seconds=time.perf_counter() - t0, benchmark=bench.describe(),
               memory_policy=memory.describe(), summary=summarize(rec, bench.experience_classes))
    if label != kind:
        rec["memory_spec"] = kind
    if isinstance(memory.source, OnlineDistillation):
        rec["distillation"] = [{k: v for k, v in row.items() if k != "config"} for row in memory.source.log]
        if memory.source.log:
            rec["distill_config"] = memory.source.log[0]["config"]
    return rec


def aggregate(runs: Sequence[dict]) -> dict:
    """Per memory: mean and std over class orders of final accuracy, forgetting and the curve."""
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
    from ...report import pct, table

    rows = []
    for kind, a in agg.items():
        rows.append([kind, pct(a["final_acc"], a["final_acc_std"]) if a["final_acc"] is not None else "-",
                     pct(a["forgetting"], a["forgetting_std"]) if a["forgetting"] is not None else "-",
                     pct(a["avg_incremental_acc"], a["avg_incremental_acc_std"]) if a["avg_incremental_acc"] is not None else "-",
                     len(a["seeds"]), f"{a['seconds'] / 60:.1f}"])
    return table(rows, ["memory", "final acc %", "forgetting %", "avg incr. acc %", "orders", "minutes"],
                 markdown=markdown)


def write_outputs(payload: dict, stem: str | Path) -> dict[str, Path]:
    """``<stem>.json``, ``<stem>.csv`` (one row per memory, order, step) and ``<stem>.png`` (accuracy vs classes)."""
    from ...plots import accuracy_vs_classes
    from ...runtime import atomic_path, write_json

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


_LATER_FIELDS = {name: default_of(CLConfig, name) for name in (
    "order_rule", "batch_size_mem", "train_per_class", "dsa_mode", "stream_aug", "momentum", "weight_decay", "holdout",
    "drop_last", "eval_batch_size")}


def _file_digest(path: str | Path) -> str:
    from ...runtime import file_sha256

    return file_sha256(path)[:20]


def _run_key(cfg: CLConfig, kind: str, seed: int) -> str:
    """What a finished run depends on (everything but the other memories and seeds; a memory file's bytes)."""
    d = dataclasses.asdict(cfg)
    for k in ("memories", "seeds", "distill_cache"):
        d.pop(k)
    for k, default in _LATER_FIELDS.items():
        if d[k] == default:
            d.pop(k)
    d.update(buffer=kind, seed=int(seed))
    spec = parse_memory_spec(kind)
    if spec.is_file and Path(spec.path).is_file():  # a file is its label and its bytes, wherever it lies
        d.update(buffer=f"{spec.label}:file", memory_file=_file_digest(spec.path))
    return cache_key(d, 20, separators=(", ", ": "), default=str)  # the serialisation of the keys on disk


def _run_path(cfg: CLConfig, resume_dir, key: str, n_exp: int, kind: str, seed: int, rkey: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9+.-]+", "_", memory_label(kind))[-60:]
    tag = f"replay-{cfg.strategy}" if cfg.protocol == "replay" else cfg.protocol
    return Path(resume_dir) / f"{key}-{n_exp}_{tag}_ipc{cfg.ipc}_{safe}_seed{seed}_{rkey}.json"


def _cached_run(path: Path | None, rkey: str, reported: set | None = None) -> dict | None:
    """A finished run kept at ``path`` (None if there is none; a damaged one is reported, once, and ignored)."""
    if path is None or not path.exists():
        return None
    from ...runtime import read_sealed_json

    rec, why = read_sealed_json(path)
    why = why or _run_problem(rec, rkey)
    if why is None:
        return rec
    if reported is not None:  # looked at again before the run replaced it: said once
        if (path, why) in reported:
            return None
        reported.add((path, why))
    print(f"fyi: warning: cached run {path} is not usable ({why}); it is a cache, so the run is done again and "
          "the file replaced", file=sys.stderr)
    return None


def _run_problem(rec: dict, rkey: str) -> str | None:
    """Why a cached run is not a finished run of ``rkey`` (None when it is one)."""
    summary = rec.get("summary")
    if rec.get("run_key") not in (None, rkey):
        return "it belongs to other settings"
    if not isinstance(summary, dict) or not isinstance(summary.get("stream_acc"), list):
        return "it has no summary"
    if not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in summary["stream_acc"]):
        return "its accuracies are not numbers"
    return None


def protocol_config(protocol: str, **changes) -> CLConfig:
    """The :class:`CLConfig` that ``fyi cl --protocol PROTOCOL`` runs, with ``changes`` over its preset.

    The benchmark's experience count is filled in as the command does, so a
    run of this config finds the command's cached runs (and the reverse).

    Example:
        >>> cfg = protocol_config("er-ace-avalanche", memories=["native", "dm:sets/dm.safetensors"],
        ...                       seeds=[0, 1, 2], stream_aug="none")
    """
    import copy

    from ...deprecated import renamed_keys

    changes = renamed_keys(changes, CLConfig)
    known = {f.name for f in dataclasses.fields(CLConfig)}
    if unknown := sorted(set(changes) - known):
        raise FyiError(f"protocol_config: {', '.join(unknown)} {'is not a' if len(unknown) == 1 else 'are not'} "
                       f"CLConfig field{'s' if len(unknown) > 1 else ''}; use {', '.join(sorted(known))}")
    fields = {**copy.deepcopy(renamed_keys(PROTOCOLS.get(protocol).defaults, CLConfig)), **changes}
    key, _, n = resolve_benchmark(fields.get("benchmark", default_of(CLConfig, "benchmark")), fields.get("experiences"))
    fields.update(protocol=PROTOCOLS.canonical(protocol), benchmark=key, experiences=n)
    cfg = CLConfig(**fields)
    check_fields(cfg, apply=False)
    return cfg


def finished_runs(cfg: CLConfig, resume_dir: str | Path) -> dict[tuple[str, int], dict]:
    """The runs of ``cfg`` already kept in ``resume_dir``: ``{(memory, seed): record}``; nothing is run.

    What :func:`run_experiment` would reuse; a report can be drawn from a
    partly finished experiment with it.
    """
    key, _, n_exp = resolve_benchmark(cfg.benchmark, cfg.experiences)
    out = {}
    for kind in cfg.memories:
        for seed in cfg.seeds:
            rkey = _run_key(cfg, kind, seed)
            rec = _cached_run(_run_path(cfg, resume_dir, key, n_exp, kind, seed, rkey), rkey)
            if rec is not None:
                out[kind, int(seed)] = rec
    return out


def run_experiment(cfg: CLConfig, *, out: str | Path | None = None, root=None, device="auto",
                   progress: bool = True, command: str | None = None, resume_dir: str | Path | None = None) -> dict:
    """Every memory of ``cfg`` on every class order; returns (and writes, if ``out``) the results.

    ``resume_dir``: each finished (memory, class order) run is kept there as
    JSON and reused when the same command runs again (same settings), so an
    interrupted experiment continues where it stopped.
    """
    import json

    from ...runtime import claim, package_versions, release_claim, write_sealed_json
    from ...runtime import progress_bar as tqdm

    key, ds_name, n_exp = resolve_benchmark(cfg.benchmark, cfg.experiences)
    protocol = PROTOCOLS.get(cfg.protocol)()
    check_fields(cfg, apply=False)  # the one validator, once per run (the config is mutable: checked when it runs)
    protocol.check(cfg)
    method_options("dm", cfg.distill_options)  # a typo in a distillation option fails now, whatever the memories
    labels = [memory_label(kind) for kind in cfg.memories]
    twice = sorted({x for x in labels if labels.count(x) > 1})
    if twice:
        raise FyiError(f"two memories are named {', '.join(twice)}; give each LABEL:PATH its own label")
    device = resolve_device(device)
    dataset = load_cl_dataset(cfg, ds_name, root)
    split_sizes(dataset.info.num_classes, n_exp, dataset.info.name)
    dataset.check_ipc(cfg.ipc)
    for kind in cfg.memories:  # fail fast on a bad memory name or option
        make_memory(kind, ipc=cfg.ipc, num_classes=dataset.info.num_classes, info=dataset.info,
                    iterations=cfg.iterations, distill_options=cfg.distill_options, device=device)
    runs = []
    if resume_dir is not None:
        from ...runtime import note_kept

        note_kept("records", f"every finished run in {resume_dir}")
    jobs = [(kind, s) for kind in cfg.memories for s in cfg.seeds]
    bar = tqdm(total=len(jobs), desc=f"cl {key}", disable=not progress, dynamic_ncols=True)
    found: dict[tuple, dict] = {}
    reported: set = set()  # damaged run files already reported
    waiting = list(jobs)
    while waiting:  # runs another process on the same folder has claimed are taken from its files afterwards
        deferred = []
        for kind, s in waiting:
            bar.set_postfix(memory=kind, order=s)
            rkey = _run_key(cfg, kind, s)
            path = None if resume_dir is None else _run_path(cfg, resume_dir, key, n_exp, kind, s, rkey)
            rec = _cached_run(path, rkey, reported)
            if rec is None and path is not None and not claim(path.with_suffix(".claim")):
                deferred.append((kind, s))  # a live process is running it
                continue
            try:
                if rec is None:
                    rec = _cached_run(path, rkey, reported)  # finished while we claimed
                if rec is None:
                    rec = run_one(cfg, kind, s, dataset=dataset, device=device, progress=progress)
                    rec["run_key"] = rkey
                    if path is not None:
                        write_sealed_json(path, rec, "cached run")
            finally:
                if path is not None:
                    release_claim(path.with_suffix(".claim"))
            found[(kind, s)] = rec
            bar.update(1)
        if deferred:
            time.sleep(2.0)
        waiting = deferred
    bar.close()
    runs = [found[j] for j in jobs]
    payload = {"config": dataclasses.asdict(cfg), "benchmark": key, "dataset": dataset.info.name,
               "source": dataset.source, "n_experiences": n_exp, "device": str(device),
               "aggregate": aggregate(runs), "runs": runs, "command": command,
               "versions": package_versions(), "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
    if out is not None:
        payload["files"] = {k: str(v) for k, v in write_outputs(payload, out).items()}
    return payload
