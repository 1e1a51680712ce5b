"""``fyi eval``: the paper's evaluation protocol on synthetic sets, real subsets or the full data."""
from __future__ import annotations

import argparse
from pathlib import Path

from .. import validate as V
from ..errors import FyiError
from .common import add_eval_options, check_archs, csv_list, eval_config, existing, load, progress, result_path, seed_list, write_result


def cmd_eval(args) -> None:
    from ..baselines import herding_subset, random_subset
    from ..evaluate import evaluate_full, evaluate_synset
    from ..report import pct, table
    from ..synset import load_synset

    archs = csv_list(args.arch)
    if not archs:
        raise FyiError(f"--arch needs at least one architecture, got {args.arch!r}; e.g. --arch convnet")
    cfg = eval_config(args)
    seeds = seed_list(args)
    result_path(args, "eval", args.json)
    for target in args.synsets:  # every file checked before the first training run
        if target.lower() not in ("random", "herding", "full"):
            existing(target, "synthetic-set file")
    rows, results = [], {}
    for target in args.synsets:
        kind = target.lower()
        if kind in ("random", "herding", "full"):
            if not args.dataset:
                raise FyiError(f"`fyi eval {kind}` needs --dataset NAME (and --ipc N for random/herding)")
            ds = load(args, args.dataset, extend_flip=args.extend_flip)
            check_archs(archs, ds.info)
            if kind == "full":
                res = {a: evaluate_full(ds, arch=a, cfg=cfg, seeds=seeds, device=args.device,
                                        progress=progress(args)) for a in archs}
                label = f"full {ds.info.name}"
            else:
                if not args.ipc:
                    raise FyiError(f"`fyi eval {kind}` needs --ipc N")
                per_seed = {}
                for s in seeds:  # a different subset for every seed, as papers report it
                    sub = (random_subset(ds, args.ipc, seed=s) if kind == "random" else
                           herding_subset(ds, args.ipc, seed=s, feature_epochs=args.herding_epochs,
                                          device=args.device, progress=progress(args)))
                    r = evaluate_synset(sub, ds, arch=archs, cfg=cfg, seeds=[s], device=args.device,
                                        progress=progress(args))
                    for a, v in r.items():
                        per_seed.setdefault(a, []).append(v)
                res = {}
                for a, vs in per_seed.items():
                    first = vs[0]
                    first.seeds = [s for v in vs for s in v.seeds]
                    first.accs = [x for v in vs for x in v.accs]
                    first.seconds_per_run = sum(v.seconds_per_run for v in vs) / len(vs)
                    res[a] = first
                label = f"{kind} ipc{args.ipc} {ds.info.name}"
        else:
            s = load_synset(existing(target, "synthetic-set file"))
            ds = load(args, args.dataset or s.dataset)
            check_archs(archs, ds.info)
            res = evaluate_synset(s, ds, arch=archs, cfg=cfg, seeds=seeds, device=args.device,
                                  progress=progress(args))
            label = f"{Path(target).name} ({s.method}{'+fyi' if s.fyi else ''}, ipc {s.ipc})"
        results[label] = {a: r.to_dict() for a, r in res.items()}
        for a, r in res.items():
            rows.append([label, a, pct(r.mean, r.std), len(r.accs), r.epochs, f"{r.seconds_per_run:.1f}"])
    print(table(rows, ["training set", "arch", "test acc %", "seeds", "epochs", "s/run"]))
    write_result(args, "eval", {"results": results}, path=args.json)


def add_eval_arguments(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("synsets", nargs="+", metavar="SYNSET", help="synthetic-set file(s), or random, herding, full")
    sp.add_argument("--dataset", help="test dataset (default: the set's own)")
    sp.add_argument("--ipc", type=V.positive_int, help="images per class for random/herding")
    sp.add_argument("--herding-epochs", type=V.non_negative_int, default=1)
    sp.add_argument("--extend-flip", action="store_true", help="(random/herding/full) draw from the flip-extended training set")
    sp.add_argument("--json", help="where to write the JSON results (default OUT/eval.json)")
    add_eval_options(sp)
