"""Cross-architecture evaluation: is a synthetic set tied to the network it was distilled with?

Every set (synthetic-set file, or a ``random``/``herding`` real subset) is
retrained from scratch with the evaluation protocol on every architecture
(``convnet``, ``vgg11``, ``resnet18``, ``alexnet``, ``timm:<name>`` ...) for
each seed; the result is a matrix, rows = sets (method, ``+fyi``, IPC),
columns = architectures, cells = mean +- std test accuracy: the shape of the
FYI paper's Table 3 (ConvNet / VGG-11 / ResNet-18 for DC, DSA, DM and MTT with
and without FYI).

Runs go through the same job machinery as the NAS ranking (the runner
:mod:`fyi_apps.tasks.nas.runner` and the training-set specs of
:mod:`fyi_apps.tasks.nas.sets`): each (set, architecture, seed) is one cached
JSON record (an interrupted matrix resumes), ``workers`` spawns local
processes and ``torchrun`` shards the architectures over ranks.
"""
from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Sequence

import torch

from ..errors import FyiError
from .nas import (RecordCache, add_common_training_arguments, candidate_fits, distributed_session, execute, make_job,
                  rank_world, remember_dataset, resolve_set, split_names, unique_labels, unique_names,
                  write_json_report, write_markdown)

ARCH_TITLES = {"convnet": "ConvNet", "vgg11": "VGG-11", "vgg11bn": "VGG-11 (BN)", "resnet18": "ResNet-18",
               "resnet18bn": "ResNet-18 (BN)", "alexnet": "AlexNet", "mlp": "MLP"}


def arch_title(arch: str) -> str:
    return ARCH_TITLES.get(arch.lower(), arch)


def _dataset_of(texts: Sequence[str]) -> str | None:
    """The dataset the synthetic-set files were made from (they must agree)."""
    from ..synset import load_synset

    names = {}
    for t in texts:
        p = Path(t)
        if p.is_file():
            names[t] = load_synset(p).dataset
    found = sorted(set(names.values()))
    if len(found) > 1:
        raise FyiError(f"the sets come from different datasets ({', '.join(found)}); run one xarch per dataset")
    return found[0] if found else None


def run_xarch(
    sets: Sequence[str],
    *,
    archs: Sequence[str] = ("convnet", "vgg11", "resnet18"),
    dataset: str | None = None,
    cfg=None,
    seeds: Sequence[int] = (0, 1, 2),
    ipc: int | None = None,
    seed: int = 0,
    cache_dir: str | os.PathLike,
    workers: int = 1,
    threads: int | None = None,
    test_size: int | None = None,
    data_root: str | None = None,
    device: str | torch.device = "auto",
    progress: bool = True,
    loaded=None,
) -> dict:
    """Evaluate every set on every architecture (cached per run) and return the matrix report.

    ``sets``: synthetic-set paths, ``random[:N]`` or ``herding[:N]`` (``ipc``
    images per class, drawn with ``seed``).  ``cfg``: an
    :class:`~fyi_apps.evaluate.EvalConfig` (default: the paper's protocol).
    ``loaded``: an already loaded :class:`~fyi_apps.data.Dataset` to use.
    """
    from ..data import load_dataset
    from ..evaluate import EvalConfig
    from ..networks import create_model
    from ..runtime import package_versions

    if not sets:
        raise FyiError("no training set given; pass one or more synthetic-set files (or random/herding with --ipc)")
    archs = unique_names(a.strip() for a in archs if a.strip())
    if not archs:
        raise FyiError("no architecture given; use --archs convnet,vgg11,resnet18")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise FyiError("--seeds must be at least 1")
    cfg = cfg or EvalConfig()
    if loaded is None:
        name = dataset or _dataset_of(sets)
        if not name:
            raise FyiError("random/herding rows need --dataset NAME")
        loaded = load_dataset(name, root=data_root)
    info = loaded.info
    for a in archs:  # fail fast on an unknown architecture or one that cannot run at this size
        if not candidate_fits(a, channels=info.channels, num_classes=info.num_classes, image_size=info.image_size):
            create_model(a, channels=info.channels, num_classes=info.num_classes, image_size=info.image_size)
            raise FyiError(f"architecture {a!r} cannot run on {info.name}")
    remember_dataset(loaded, data_root)
    t0 = time.perf_counter()
    specs = unique_labels([resolve_set(t, loaded, ipc=ipc, seed=seed, device=device, progress=progress,
                                       cache_dir=cache_dir) for t in sets])
    jobs = [make_job(a, spec, cfg, s, role="xarch", test_size=test_size, data_root=data_root)
            for spec in specs for a in archs for s in seeds]
    records = execute(jobs, RecordCache(cache_dir), workers=workers, threads=threads, device=device,
                      progress=progress, desc="xarch")
    rows = []
    for spec in specs:
        cells = {}
        for a in archs:
            recs = [records[j.key] for j in jobs if j.train.label == spec.label and j.candidate == a]
            errors = [r["error"] for r in recs if r.get("error")]
            if errors:
                cells[a] = {"error": errors[0], "mean": None, "std": None}
                continue
            accs = [r["acc"] for r in recs]
            m = sum(accs) / len(accs)
            sd = (sum((x - m) ** 2 for x in accs) / len(accs)) ** 0.5 if len(accs) > 1 else 0.0
            cells[a] = {"mean": m, "std": sd, "accs": accs, "seeds": [r["seed"] for r in recs],
                        "seconds_per_run": sum(r["train_seconds"] for r in recs) / len(recs)}
        rows.append({"label": spec.label, "set": spec.describe(), "cells": cells})
    return {
        "dataset": info.name, "archs": list(archs), "seeds": seeds, "rows": rows,
        "config": dataclasses.asdict(cfg), "test_size": test_size, "cache": str(cache_dir),
        "world_size": rank_world()[1], "wall_seconds": time.perf_counter() - t0,
        "versions": package_versions(), "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def matrix_rows(report: dict) -> tuple[list[list], list[str]]:
    """Rows = sets, columns = architectures, cells ``mean +- std`` (%)."""
    from ..report import pct

    headers = ["training set"] + [arch_title(a) for a in report["archs"]]
    rows = []
    for r in report["rows"]:
        row = [r["label"]]
        for a in report["archs"]:
            c = r["cells"][a]
            row.append("failed" if c.get("error") else pct(c["mean"], c["std"]))
        rows.append(row)
    return rows, headers


def write_xarch(report: dict, out_dir: str | os.PathLike, *, name: str = "xarch", command: str | None = None) -> dict:
    """``<name>.json`` and ``<name>.md`` (the matrix as a Markdown table) in ``out_dir``."""
    from ..report import table

    out = Path(out_dir)
    report, json_path = write_json_report(report, out / f"{name}.json", command)
    rows, headers = matrix_rows(report)
    cfg = report["config"]
    md = (f"Cross-architecture test accuracy (%) on {report['dataset']}, mean +- std over seeds {report['seeds']}; "
          f"{cfg['epochs']} epochs{', DSA' if cfg['dsa'] else ''}.\n\n" + table(rows, headers, markdown=True) + "\n")
    return {"json": json_path, "md": write_markdown(md, out / f"{name}.md", command)}


# --------------------------------------------------------------------------- #
# command line (`fyi xarch`)
# --------------------------------------------------------------------------- #
def add_xarch_arguments(sp) -> None:
    from .. import validate as V

    sp.add_argument("synsets", nargs="+", metavar="SYNSET", help="synthetic-set file(s); random/herding need --ipc")
    sp.add_argument("--archs", "--arch", dest="archs", default="convnet,vgg11,resnet18",
                    help="comma-separated architectures (e.g. convnet,vgg11,resnet18,alexnet,timm:resnet18)")
    sp.add_argument("--dataset", help="test dataset (default: the sets' own)")
    sp.add_argument("--ipc", type=V.positive_int, default=None, help="images per class for random/herding rows")
    sp.add_argument("--epochs", type=V.positive_int, default=1000, help="training epochs (paper: 1000)")
    sp.add_argument("--seeds", type=V.positive_int, default=3, help="evaluation seeds (seed, seed+1, ...)")
    add_common_training_arguments(sp)


def run_xarch_command(args) -> None:
    import sys

    from ..evaluate import EvalConfig
    from ..options import from_namespace
    from ..report import table

    for what in ("epochs", "seeds", "workers", "batch_size"):
        v = getattr(args, what)
        if v < 1:
            raise FyiError(f"--{what.replace('_', '-')} must be at least 1, got {v}")
    name = args.name or "xarch"
    cfg = from_namespace(EvalConfig, args)  # --epochs and the training options shared with fyi nas
    archs = split_names(args.archs)
    with distributed_session(args.device, args.threads) as device:
        report = run_xarch(
            args.synsets, archs=archs, dataset=args.dataset, cfg=cfg,
            seeds=list(range(args.seed, args.seed + args.seeds)), ipc=args.ipc, seed=args.seed,
            cache_dir=args.cache or str(Path(args.out) / f"{name}-cache"), workers=args.workers,
            threads=args.threads, test_size=args.test_size, data_root=args.data_root, device=device,
            progress=not args.quiet,
        )
        if rank_world()[0] != 0:
            return
        rows, headers = matrix_rows(report)
        print(table(rows, headers))
        paths = write_xarch(report, args.out, name=name, command=" ".join(["fyi", *sys.argv[1:]]))
        print(f"results written to {paths['json']} and {paths['md']}")
