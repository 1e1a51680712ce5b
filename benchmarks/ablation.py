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

import json
import statistics
import sys
from pathlib import Path

from benchmarks import harness as H

MODES = ("single", "fyi")
FULL = dict(dataset="cifar10", dm_iterations="1:500,10:2000", dsa_iterations=80, eval_epochs=300, seeds=3,
            score_every=50, batch_real=64, dsa_curve_iterations=40, json="benchmarks/results/ablation-cifar10.json")
QUICK = dict(dataset="digits", dm_iterations="10", dsa_iterations=3, eval_epochs=10, seeds=2, score_every=5,
             batch_real=32, dsa_curve_iterations=2, dsa_curve_loops="2,2")


def paired_difference(a: list[float], b: list[float]) -> dict:
    """Mean and std (over seeds) of the paired differences a - b, in points."""
    d = [100 * (x - y) for x, y in zip(a, b)]
    return {"mean": statistics.fmean(d), "std": statistics.stdev(d) if len(d) > 1 else 0.0, "per_seed": d}


def decompose(acc: dict) -> dict:
    """The decomposition of one (method, IPC) block; ``acc[(fyi, dmode, emode)]`` = per-seed accuracies."""
    out: dict = {}
    have = lambda *k: all(x in acc for x in k)  # noqa: E731
    for a in MODES:
        if have((True, a, a), (False, a, a)):
            out[f"flip_gain_at_{a}_dsa"] = paired_difference(acc[(True, a, a)], acc[(False, a, a)])
    for f in (False, True):
        tag, base = ("fyi_on" if f else "fyi_off"), acc.get((f, "single", "single"))
        if have((f, "fyi", "fyi"), (f, "single", "single")):
            out[f"aug_gain_{tag}"] = paired_difference(acc[(f, "fyi", "fyi")], acc[(f, "single", "single")])
        if have((f, "fyi", "single"), (f, "single", "single")):
            out[f"aug_gain_{tag}_distillation_only"] = paired_difference(acc[(f, "fyi", "single")], base)
        if have((f, "single", "fyi"), (f, "single", "single")):
            out[f"aug_gain_{tag}_evaluation_only"] = paired_difference(acc[(f, "single", "fyi")], base)
    if have((True, "fyi", "fyi"), (False, "fyi", "fyi"), (True, "single", "single"), (False, "single", "single")):
        on_f, off_f = acc[(True, "fyi", "fyi")], acc[(False, "fyi", "fyi")]
        on_s, off_s = acc[(True, "single", "single")], acc[(False, "single", "single")]
        inter = [(a - b) - (c - d) for a, b, c, d in zip(on_f, off_f, on_s, off_s)]
        out["interaction"] = paired_difference(inter, [0.0] * len(inter))
        out["paper_style_total"] = paired_difference(on_f, off_s)
    return out


def cell_path(work: Path, batch_real: int, method: str, ipc: int, its: int, f: bool, dmode: str, tag: str = "") -> Path:
    """Where a cell's set lives: ``<method>[-fyi]_ipc<N>_<its>it_b<batch>_d<mode><tag>.safetensors``."""
    return Path(work) / f"{method}{'-fyi' if f else ''}_ipc{ipc}_{its}it_b{batch_real}_d{dmode}{tag}.safetensors"


def evaluation_key(set_path: Path, emode: str, epochs: int, seeds: list[int], source: str) -> str:
    """One evaluation per (set, evaluation DSA mode): ``<set>_e<mode>_<hash of the evaluation budget>``."""
    return set_path.stem + f"_e{emode}_" + H.cache_key([epochs, seeds, emode, source], 10, sort_keys=False,
                                                       separators=(", ", ": "))


def cell_config(args, method: str, ipc: int, its: int, f: bool, dmode: str, *, score_every=None, options=None,
                precision: str = "fp32"):
    """A cell's distillation config: the same seed, real batch and logging in every cell (fp32 unless asked)."""
    import fyi_apps as fyi

    return fyi.DistillConfig(method=method, dataset=args.dataset, ipc=ipc, fyi="flip" if f else None,
                             iterations=its, batch_real=args.batch_real, seed=args.seed, dsa_mode=dmode,
                             checkpoint_every=min(25, max(1, its // 10)), score_every=score_every or args.score_every,
                             options=dict(options or {}), precision=precision)


def add_cell_arguments(p, json_name: str) -> None:
    """The options of a benchmark on the ablation's cells (this one, ``benchmarks/precision.py``)."""
    p.add_argument("--fyi", default="off,on", help="which FYI settings this process computes")
    p.add_argument("--dm-iterations", help="DM iterations: N, or IPC:N pairs")
    p.add_argument("--dsa-iterations", type=int, help="DSA (the method) iterations at IPC 1")
    p.add_argument("--score-every", type=int, help="log D(S, flip S) every N distillation iterations")
    p.add_argument("--work", default="benchmarks/results/ablation", help="folder for sets and cached evaluations")
    p.add_argument("--json", help=f"result file (default benchmarks/results/{json_name}; quick: in WORK)")
    p.add_argument("--report-only", action="store_true", help="assemble the cached cells; compute nothing")
    H.add_common_arguments(p, "quick", "dataset", "device", "batch_real", "eval_epochs", seeds={},
                           threads={"default": 1}, seed={"help": "distillation seed (the same in every cell)"},
                           ipcs={"help": "DM IPCs (DSA always runs at IPC 1 when listed in --methods)"})


def open_cells(args, full: dict, quick: dict, quick_json: str):
    """The preset applied, torch's threads set, the work folder made and the dataset loaded.

    Returns ``(dataset, work folder, DM iterations by IPC, methods, FYI settings, evaluation seeds)``.
    """
    import torch

    import fyi_apps as fyi

    args = H.apply_preset(args, full, quick)
    args.work = H.quick_path(args.work, args.quick)
    args.json = args.json or str(Path(args.work) / quick_json)
    torch.set_num_threads(args.threads)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    ipcs = H.int_list(args.ipcs, "--ipcs")
    fyis = [{"off": False, "on": True}[v] for v in H.names(args.fyi)]
    return (fyi.load_dataset(args.dataset), work, H.per_ipc(args.dm_iterations, ipcs, "--dm-iterations"),
            H.names(args.methods), fyis, list(range(args.seeds)))


@H.reports_errors("ablation")
def main(argv=None) -> int:
    p = H.parser(__doc__)
    p.add_argument("--methods", default="dm,dsa")
    p.add_argument("--dsa-modes", default="single,fyi", help="which distillation DSA modes this process computes")
    p.add_argument("--dsa-curve-iterations", type=int,
                   help="DSA (the method) at IPC 10, FYI off/on, single DSA, for the Fig. 5/6 curves only (not "
                        "evaluated); 0 skips it")
    p.add_argument("--dsa-curve-loops", default=None,
                   help="OUTER,INNER loops of the DSA IPC-10 curve runs (default: the reference's 10,50 at IPC 10; "
                        "an outer iteration then costs minutes on a CPU)")
    p.add_argument("--curves-only", action="store_true",
                   help="compute only the DSA IPC-10 curve runs (no cells), e.g. in a process of its own")
    add_cell_arguments(p, "ablation-cifar10.json")
    args = p.parse_args(argv)
    ds, work, dm_its, methods, fyis, seeds = open_cells(args, FULL, QUICK, "ablation-quick.json")
    ipcs = list(dm_its)
    dmodes = H.names(args.dsa_modes)

    import fyi_apps as fyi

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
        return cell_path(work, args.batch_real, method, ipc, its, f, dmode, tag)

    cache = H.RecordCache(work, suffix=".eval.json", what="cached evaluation")

    def eval_key(sp: Path, emode: str) -> str:
        return evaluation_key(sp, emode, args.eval_epochs, seeds, ds.source)

    curve_options, curve_tag = {}, ""
    if args.dsa_curve_loops:
        outer, inner = H.int_pair(args.dsa_curve_loops, "--dsa-curve-loops")
        curve_options, curve_tag = {"outer_loop": outer, "inner_loop": inner}, f"_loops{outer}-{inner}"
        budget["dsa_curve_loops"] = [outer, inner]

    def distilled(method, ipc, its, f, dmode, score_every=None, options=None, tag=""):
        cfg = cell_config(args, method, ipc, its, f, dmode, score_every=score_every, options=options)
        return H.distilled(set_path(method, ipc, its, f, dmode, tag), cfg, ds, args.device)

    cells: dict = {}
    for method, ipc, its, pairs in blocks:
        for f in (False, True):
            for dmode, emode in pairs:
                sp = set_path(method, ipc, its, f, dmode)
                key = eval_key(sp, emode)
                name = f"{method}{'+fyi' if f else ''} ipc{ipc} distill-dsa={dmode} eval-dsa={emode}"
                rec = cache.get(key)
                if rec is not None:
                    cells[name] = rec
                    continue
                if args.report_only or args.curves_only or f not in fyis or dmode not in dmodes:
                    continue
                ecfg = fyi.EvalConfig(epochs=args.eval_epochs, dsa_mode=emode)
                rec = {"method": method, "ipc": ipc, "fyi": f, "distill_dsa": dmode, "eval_dsa": emode,
                       "iterations": its, "eval_seeds": seeds, "set": str(sp),
                       **H.evaluation_record(distilled(method, ipc, its, f, dmode), ds, ecfg, seeds, args.device)}
                cache.put(rec, key)
                cells[name] = rec
                print(f"{name}: {100 * rec['mean']:.2f} +- {100 * rec['std']:.2f}", flush=True)

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
                # Table 1 compares DM (single DSA, FYI off; the DM paper) with DM+FYI (the FYI code's DSA)
                paper = H.table1(method, f, ipc, ds.info.name) if (dmode, emode) == ((MODES[f],) * 2) else None
                rows.append([f"{method} ipc{ipc}", "on" if f else "off", dmode, emode,
                             f"{100 * c['mean']:.2f} +- {100 * c['std']:.2f}", f"{c['unequalness_dm']:.4g}",
                             "-" if paper is None else f"{paper:.1f}"])
        decomp[f"{method} ipc{ipc}"] = decompose(acc)
    headers = ["block", "FYI", "distill DSA", "eval DSA", "test acc % (3 seeds)", "D(S, flip S)", "paper"]
    drows = [[blk, k, f"{v['mean']:+.2f} +- {v['std']:.2f}"] for blk, d in decomp.items() for k, v in d.items()]
    print()
    md = H.show_table(rows, headers)
    print()
    md_decomposition = H.show_table(drows, ["block", "effect (points, paired over eval seeds)", "mean +- std"])
    curves = _curves(work, [(*b, "") for b in blocks] + curve_blocks, set_path, Path(args.json).parent)
    H.write_result(args.json, {"command": H.command_line("ablation", argv), "budget": budget, "cells": cells,
                               "decomposition": decomp, "curves": curves, "markdown": md,
                               "markdown_decomposition": md_decomposition})
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
