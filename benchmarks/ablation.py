"""FYI's gain, isolated: the flip of S versus the FYI code's stronger DSA (CIFAR-10, ConvNet-3).

The FYI authors' code changed DSA as well as adding the flip of the synthetic
images: with ``flip`` in the strategy it always applies a random flip plus one
other operation (``--dsa-mode fyi``), in distillation *and* in evaluation, where
the original DSA applies one randomly chosen operation (``single``).  This
benchmark separates the two.  For DM at IPC 1 and IPC 10 it runs all eight cells

    FYI off/on  x  distillation DSA single/fyi  x  evaluation DSA single/fyi

(the same distillation seed in every cell, the same evaluation seeds, so every
difference is paired seed by seed), and for DSA (the method) at IPC 1 the four
cells FYI x DSA mode (distillation and evaluation in the same mode).  It prints
and saves the table and the decomposition

* flip of S at fixed augmentation:  acc(FYI on, a, a) - acc(FYI off, a, a)
* augmentation at fixed FYI:        acc(f, fyi, fyi) - acc(f, single, single)
  (split into its distillation part and its evaluation part)
* interaction:                      flip gain under fyi-DSA - flip gain under single-DSA

each as the mean and standard deviation over the evaluation seeds of the
paired differences.  The paper's Table 1 compares DM (single, single, FYI off;
the DM paper's number) with DM+FYI (fyi, fyi, FYI on): that gap is the sum of
the flip gain, the augmentation gain and their interaction.

Every set and every evaluation is cached under ``--work``; distillations
checkpoint and resume, so rerunning the command continues where it stopped.
Several processes may share ``--work`` by splitting ``--ipcs``/``--fyi``/
``--dsa-modes``; ``--report-only`` assembles whatever is cached.  Distillation
logs the unequalness score every ``--score-every`` iterations; the DM IPC-10
curves (paper Fig. 5 and 6 shape) are drawn from those logs.

    python -m benchmarks.ablation                 # the README's table (hours on 2 cores)
    python -m benchmarks.ablation --quick         # a minute: digits, tiny budgets
"""
from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import time
from pathlib import Path

MODES = ("single", "fyi")
PAPER_CIFAR10 = {  # FYI paper Table 1 (DM/DSA rows are the original papers' numbers, original DSA)
    ("dm", 1): (26.0, 28.7), ("dm", 10): (48.9, 53.1), ("dsa", 1): (28.8, 30.6), ("dsa", 10): (52.1, 54.7),
}


def _csv(text: str) -> list[str]:
    return [t.strip() for t in str(text).split(",") if t.strip()]


def _per_ipc(text: str, ipcs: list[int], flag: str) -> dict[int, int]:
    """``"2000"`` (every IPC) or ``"1:500,10:2000"`` (by IPC) -> {ipc: value}."""
    items = _csv(text)
    if len(items) == 1 and ":" not in items[0]:
        return {ipc: int(items[0]) for ipc in ipcs}
    try:
        table = {int(k): int(v) for k, v in (i.split(":") for i in items)}
    except ValueError:
        raise SystemExit(f"{flag} takes N or IPC:N,IPC:N (e.g. 1:500,10:2000), got {text!r}") from None
    missing = [ipc for ipc in ipcs if ipc not in table]
    if missing:
        raise SystemExit(f"{flag} {text!r} gives no value for IPC {missing}")
    return {ipc: table[ipc] for ipc in ipcs}


def _paired(a: list[float], b: list[float]) -> dict:
    """Mean and std (over seeds) of the paired differences a - b, in points."""
    d = [100 * (x - y) for x, y in zip(a, b)]
    return {"mean": statistics.fmean(d), "std": statistics.stdev(d) if len(d) > 1 else 0.0, "per_seed": d}


def decompose(acc: dict) -> dict:
    """The decomposition of one (method, IPC) block; ``acc[(fyi, dmode, emode)]`` = per-seed accuracies."""
    out: dict = {}
    have = lambda *k: all(x in acc for x in k)  # noqa: E731
    for a in MODES:
        if have((True, a, a), (False, a, a)):
            out[f"flip_gain_at_{a}_dsa"] = _paired(acc[(True, a, a)], acc[(False, a, a)])
    for f in (False, True):
        tag = "fyi_on" if f else "fyi_off"
        if have((f, "fyi", "fyi"), (f, "single", "single")):
            out[f"aug_gain_{tag}"] = _paired(acc[(f, "fyi", "fyi")], acc[(f, "single", "single")])
        if have((f, "fyi", "single"), (f, "single", "single")):
            out[f"aug_gain_{tag}_distillation_only"] = _paired(acc[(f, "fyi", "single")], acc[(f, "single", "single")])
        if have((f, "single", "fyi"), (f, "single", "single")):
            out[f"aug_gain_{tag}_evaluation_only"] = _paired(acc[(f, "single", "fyi")], acc[(f, "single", "single")])
    if have((True, "fyi", "fyi"), (False, "fyi", "fyi"), (True, "single", "single"), (False, "single", "single")):
        on_f, off_f = acc[(True, "fyi", "fyi")], acc[(False, "fyi", "fyi")]
        on_s, off_s = acc[(True, "single", "single")], acc[(False, "single", "single")]
        inter = [(a - b) - (c - d) for a, b, c, d in zip(on_f, off_f, on_s, off_s)]
        out["interaction"] = _paired(inter, [0.0] * len(inter))
        out["paper_style_total"] = _paired(on_f, off_s)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="cifar10")
    p.add_argument("--ipcs", default="1,10", help="DM IPCs (DSA always runs at IPC 1 when listed in --methods)")
    p.add_argument("--methods", default="dm,dsa")
    p.add_argument("--fyi", default="off,on", help="which FYI settings this process computes")
    p.add_argument("--dsa-modes", default="single,fyi", help="which distillation DSA modes this process computes")
    p.add_argument("--dm-iterations", default="1:500,10:2000", help="DM iterations: N, or IPC:N pairs")
    p.add_argument("--dsa-iterations", type=int, default=80, help="DSA (the method) iterations at IPC 1")
    p.add_argument("--dsa-curve-iterations", type=int, default=40,
                   help="DSA (the method) at IPC 10, FYI off/on, single DSA, for the Fig. 5/6 curves only (not "
                        "evaluated); 0 skips it")
    p.add_argument("--dsa-curve-loops", default=None,
                   help="OUTER,INNER loops of the DSA IPC-10 curve runs (default: the reference's 10,50 at IPC 10; "
                        "an outer iteration then costs minutes on a CPU)")
    p.add_argument("--curves-only", action="store_true",
                   help="compute only the DSA IPC-10 curve runs (no cells), e.g. in a process of its own")
    p.add_argument("--batch-real", type=int, default=64)
    p.add_argument("--eval-epochs", type=int, default=300)
    p.add_argument("--seeds", type=int, default=3, help="evaluation seeds 0..N-1")
    p.add_argument("--seed", type=int, default=0, help="distillation seed (the same in every cell)")
    p.add_argument("--score-every", type=int, default=50, help="log D(S, flip S) every N distillation iterations")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="auto")
    p.add_argument("--work", default="benchmarks/results/ablation", help="folder for sets and cached evaluations")
    p.add_argument("--json", default="benchmarks/results/ablation-cifar10.json")
    p.add_argument("--report-only", action="store_true", help="assemble the cached cells; compute nothing")
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        args.dataset, args.dm_iterations, args.dsa_iterations, args.eval_epochs = "digits", "10", 3, 10
        args.seeds, args.score_every, args.batch_real, args.dsa_curve_iterations = 2, 5, 32, 2
        args.work = args.work + "-quick"
        args.json = str(Path(args.work) / "ablation-quick.json")

    import torch

    import fyi_apps as fyi
    from fyi_apps.report import table
    from fyi_apps.runtime import package_versions, write_json

    torch.set_num_threads(args.threads)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    ds = fyi.load_dataset(args.dataset)
    ipcs = [int(i) for i in _csv(args.ipcs)]
    dm_its = _per_ipc(args.dm_iterations, ipcs, "--dm-iterations")
    methods = _csv(args.methods)
    fyis = [{"off": False, "on": True}[v] for v in _csv(args.fyi)]
    dmodes = _csv(args.dsa_modes)
    seeds = list(range(args.seeds))
    budget = {"dataset": ds.info.name, "source": ds.source, "dm_iterations": dm_its,
              "dsa_iterations_ipc1": args.dsa_iterations, "batch_real": args.batch_real,
              "eval_epochs": args.eval_epochs, "eval_seeds": seeds, "distill_seed": args.seed}
    print(f"budget: {json.dumps(budget)}", flush=True)

    # the blocks: (method, ipc, iterations, the (distillation, evaluation) DSA-mode pairs)
    blocks = []
    if "dm" in methods:
        blocks += [("dm", ipc, dm_its[ipc], [(d, e) for d in MODES for e in MODES]) for ipc in ipcs]
    if "dsa" in methods:
        blocks.append(("dsa", 1, args.dsa_iterations, [(m, m) for m in MODES]))

    def set_path(method, ipc, its, f, dmode, tag="") -> Path:
        return work / f"{method}{'-fyi' if f else ''}_ipc{ipc}_{its}it_b{args.batch_real}_d{dmode}{tag}.safetensors"

    def eval_cache(sp: Path, emode: str) -> Path:
        key = hashlib.sha256(json.dumps([args.eval_epochs, seeds, emode, ds.source]).encode()).hexdigest()[:10]
        return sp.with_name(sp.stem + f"_e{emode}_{key}.eval.json")

    # --quick: DSA at IPC 10 with short (outer, inner) loops, so that the pipeline check stays a minute
    curve_loops = "2,2" if args.quick and args.dsa_curve_loops is None else args.dsa_curve_loops
    curve_options, curve_tag = {}, ""
    if curve_loops:
        try:
            outer, inner = (int(v) for v in curve_loops.split(","))
        except ValueError:
            raise SystemExit(f"--dsa-curve-loops takes OUTER,INNER (e.g. 5,10), got {curve_loops!r}") from None
        curve_options, curve_tag = {"outer_loop": outer, "inner_loop": inner}, f"_loops{outer}-{inner}"
        budget["dsa_curve_loops"] = [outer, inner]

    def distilled(method, ipc, its, f, dmode, score_every=None, options=None, tag=""):
        sp = set_path(method, ipc, its, f, dmode, tag)
        if sp.exists():
            return fyi.load_synset(sp)
        cfg = fyi.DistillConfig(method=method, dataset=args.dataset, ipc=ipc, fyi="flip" if f else None,
                                iterations=its, batch_real=args.batch_real, seed=args.seed, dsa_mode=dmode,
                                checkpoint_every=min(25, max(1, its // 10)), score_every=score_every or args.score_every,
                                options=dict(options or {}))
        return fyi.Distiller(cfg, ds, device=args.device).run(sp, resume=True, progress=True)

    cells: dict = {}
    for method, ipc, its, pairs in blocks:
        for f in (False, True):
            for dmode, emode in pairs:
                sp = set_path(method, ipc, its, f, dmode)
                cache = eval_cache(sp, emode)
                name = f"{method}{'+fyi' if f else ''} ipc{ipc} distill-dsa={dmode} eval-dsa={emode}"
                if cache.exists():
                    cells[name] = json.loads(cache.read_text())
                    continue
                if args.report_only or args.curves_only or f not in fyis or dmode not in dmodes:
                    continue
                s = distilled(method, ipc, its, f, dmode)
                t = time.perf_counter()
                r = fyi.evaluate(s, ds, cfg=fyi.EvalConfig(epochs=args.eval_epochs, dsa_mode=emode),
                                        seeds=seeds, device=args.device, progress=True)["convnet"]
                images, labels = s.decoded()
                score = fyi.unequalness(images, labels, s.num_classes, num_nets=3, device=args.device)["score"]
                rec = {"method": method, "ipc": ipc, "fyi": f, "distill_dsa": dmode, "eval_dsa": emode,
                       "iterations": its, "accs": r.accs, "mean": r.mean, "std": r.std, "eval_seeds": seeds,
                       "eval_seconds": time.perf_counter() - t, "distill_seconds": s.extra.get("seconds"),
                       "final_loss": s.extra.get("final_loss"), "unequalness_dm": score, "set": str(sp)}
                write_json(cache, rec)
                cells[name] = rec
                print(f"{name}: {100 * r.mean:.2f} +- {100 * r.std:.2f}", flush=True)

    # DSA (the method) at IPC 10: distilled for the curves only (its outer iterations cost minutes each here)
    curve_blocks = []
    if "dsa" in methods and args.dsa_curve_iterations > 0:
        its = args.dsa_curve_iterations
        curve_blocks.append(("dsa", 10, its, [], curve_tag))
        if not args.report_only:
            for f in fyis:
                distilled("dsa", 10, its, f, "single", score_every=max(1, its // 20), options=curve_options,
                          tag=curve_tag)

    # ------------------------------------------------------------ the report
    rows, decomp = [], {}
    for method, ipc, its, pairs in blocks:
        acc = {}
        for f in (False, True):
            for dmode, emode in pairs:
                c = cells.get(f"{method}{'+fyi' if f else ''} ipc{ipc} distill-dsa={dmode} eval-dsa={emode}")
                if c is None:
                    rows.append([f"{method} ipc{ipc}", "on" if f else "off", dmode, emode, "pending", "-", "-"])
                    continue
                acc[(f, dmode, emode)] = c["accs"]
                paper = PAPER_CIFAR10.get((method, ipc)) if ds.info.name.startswith("cifar10") else None
                paper_cell = "-"
                if paper and (f, dmode, emode) in ((False, "single", "single"), (True, "fyi", "fyi")):
                    paper_cell = f"{paper[int(f)]:.1f}"
                rows.append([f"{method} ipc{ipc}", "on" if f else "off", dmode, emode,
                             f"{100 * c['mean']:.2f} +- {100 * c['std']:.2f}", f"{c['unequalness_dm']:.4g}",
                             paper_cell])
        decomp[f"{method} ipc{ipc}"] = decompose(acc)
    headers = ["block", "FYI", "distill DSA", "eval DSA", "test acc % (3 seeds)", "D(S, flip S)", "paper"]
    drows = [[blk, k, f"{v['mean']:+.2f} +- {v['std']:.2f}"] for blk, d in decomp.items() for k, v in d.items()]
    dheaders = ["block", "effect (points, paired over eval seeds)", "mean +- std"]
    print()
    print(table(rows, headers))
    print()
    print(table(drows, dheaders))
    curves = _curves(work, [(*b, "") for b in blocks] + curve_blocks, set_path, Path(args.json).parent)
    write_json(args.json, {"command": "python -m benchmarks.ablation " + " ".join(sys.argv[1:]), "budget": budget,
                           "cells": cells, "decomposition": decomp, "curves": curves,
                           "markdown": table(rows, headers, markdown=True),
                           "markdown_decomposition": table(drows, dheaders, markdown=True),
                           "versions": package_versions()})
    print(f"\nwritten {args.json}")
    return 0


def _curves(work: Path, blocks, set_path, out_dir: Path) -> dict:
    """D(S, flip S) and the matching loss over iterations (paper Fig. 5 / 6 shape) from the distillation logs."""
    from fyi_apps.plots import new_figure, save_figure

    written = {}
    for method, ipc, its, _, tag in blocks:
        logs = {}
        for f in (False, True):
            stem = set_path(method, ipc, its, f, "single", tag)
            log = stem.with_name(stem.stem + ".log.json")
            if log.exists():
                logs["FYI" if f else "base"] = json.loads(log.read_text())["log"]
        if len(logs) < 2:
            continue
        for key, ylabel, fig_no in (("score", "unequalness D(S, flip S)", 5), ("loss", "matching loss", 6)):
            fig = new_figure(4.6, 3.4)
            ax = fig.add_subplot(1, 1, 1)
            for label, log in logs.items():
                pts = [(r["iteration"], r[key]) for r in log if key in r]
                if pts:
                    ax.plot(*zip(*pts), label=f"{method.upper()}{' + FYI' if label == 'FYI' else ''}")
            ax.set_xlabel("iteration")
            ax.set_ylabel(ylabel)
            if key == "loss":
                ax.set_yscale("log")
            loops = f", loops {tag[6:].replace('-', ',')}" if tag else ""
            ax.set_title(f"{method.upper()} IPC {ipc}{loops}: {ylabel} (cf. paper Fig. {fig_no})", fontsize=9)
            ax.legend()
            png = out_dir / f"ablation-{method}-ipc{ipc}-{key}.png"
            save_figure(fig, png)
            written[f"{method} ipc{ipc} {key}"] = str(png)
    return written


if __name__ == "__main__":
    sys.exit(main())
