"""The paper's budget in one command: one method, one IPC, FYI on or off, published settings.

Distillation uses the method's published settings (the package's presets):
DM 20,000 iterations with 256 real images per class and lr_img 1.0; DC/DSA
1,000 iterations with the reference's (outer, inner) loops by IPC; IDC the
reference's per-dataset block; MTT/FTD FTD's hyper-parameter table (they need
``--buffers``, a folder of expert trajectories made by ``fyi buffers``).
Evaluation is the paper's protocol: ConvNet-3 trained from scratch for 1,000
epochs (SGD 0.01 or the set's learned lr, momentum 0.9, weight decay 5e-4, lr
x0.1 at half, batch 256, DSA), 5 seeds, test accuracy mean +- std.

DSA mode (``--dsa-mode auto``, the default): the paper's base rows are the
original methods' numbers, made with the original DSA (one random operation per
call, ``single``), while the FYI rows come from the FYI code, which always
applies a random flip plus one other operation (``fyi``) in distillation and
evaluation; ``auto`` picks ``single`` without FYI and ``fyi`` with it, so each
run reproduces how its published number was made.  Pass ``single`` or ``fyi``
to hold the augmentation fixed.

Before it starts it times a few distillation iterations (after a warm-up) and
a few evaluation epochs on the chosen device and prints the time per iteration
and an estimate of the total; ``--estimate-only`` stops there and
``--max-minutes M`` refuses a run whose estimate exceeds M minutes, or stops
one (leaving its checkpoint) as soon as its projected end passes M minutes.
Rerunning the same command continues: the distillation from its checkpoint,
the evaluation from the seeds already done.  Exit codes: 0 done (or estimate
only), 2 bad input, 3 refused or stopped by ``--max-minutes``.

    python -m benchmarks.paper --method dm --ipc 10 --fyi --estimate-only
    python -m benchmarks.paper --method dm --ipc 10 --fyi --device cuda
    python -m benchmarks.paper --method mtt --ipc 10 --buffers fyi-runs/buffers/cifar10 --fyi
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import time
from pathlib import Path

from benchmarks import harness as H
from fyi_apps.errors import FyiError

METHODS = ("dm", "dc", "dsa", "idc", "mtt", "ftd")
EXIT_BUDGET = 3


def build_parser() -> argparse.ArgumentParser:
    p = H.parser(__doc__, prog="python -m benchmarks.paper", first_paragraph=True, formatter=argparse.HelpFormatter,
                 epilog="See the module docstring (python -m pydoc benchmarks.paper) for details.")
    p.add_argument("--method", required=True, choices=METHODS)
    p.add_argument("--ipc", type=int, required=True, help="images per class")
    p.add_argument("--fyi", action=argparse.BooleanOptionalAction, default=False, help="FYI on (--fyi) or off")
    p.add_argument("--dataset", default="cifar10", help="dataset name (cifar10 reads ../shared/data/cifar10-jpeg.tar.gz)")
    H.add_common_arguments(p, "data_root", "device")
    p.add_argument("--buffers", help="MTT/FTD: folder of expert trajectories (`fyi buffers`)")
    p.add_argument("--dsa-mode", default="auto", choices=["auto", "single", "fyi"],
                   help="DSA in distillation and evaluation (auto: single without FYI, fyi with it)")
    p.add_argument("--iterations", type=int, help="override the published iterations (tests, smoke runs)")
    p.add_argument("--eval-epochs", type=int, default=1000, help="evaluation epochs (paper: 1000)")
    H.add_common_arguments(p, "seed", seeds={"default": 5, "help": "evaluation seeds (paper: 5)"})
    p.add_argument("--timing-iterations", type=int, default=3, help="iterations timed after one warm-up")
    p.add_argument("--timing-epochs", type=int, default=5, help="evaluation epochs timed after one warm-up epoch")
    p.add_argument("--estimate-only", action="store_true", help="print the timing and the estimate, then stop")
    p.add_argument("--max-minutes", type=float, help="refuse, or stop with a checkpoint, past this many minutes")
    p.add_argument("--checkpoint-every", type=int, default=100)
    p.add_argument("--score-every", type=int, default=0, help="log D(S, flip S) every N iterations (paper Fig. 5)")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast in distillation and evaluation")
    H.add_common_arguments(p, threads={"help": "torch threads (default: torch's)"},
                           out={"default": "fyi-runs/paper", "help": "folder for the set, its log and the result JSON"})
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def _check(args) -> None:
    for name in ("ipc", "eval_epochs", "seeds", "timing_iterations", "timing_epochs", "checkpoint_every"):
        if getattr(args, name) < 1:
            raise FyiError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}; pass a positive number")
    if args.iterations is not None and args.iterations < 1:
        raise FyiError(f"--iterations must be at least 1, got {args.iterations}; pass a positive number or leave it out")
    if args.max_minutes is not None and args.max_minutes <= 0:
        raise FyiError(f"--max-minutes must be positive, got {args.max_minutes}; pass minutes or leave it out")
    if args.method in ("mtt", "ftd") and not args.buffers:
        raise FyiError(f"{args.method} needs expert trajectories; make them with `fyi buffers --dataset "
                       f"{args.dataset}{' --flat' if args.method == 'ftd' else ''} -o FOLDER` and pass --buffers FOLDER")


def device_name(device) -> str:
    import torch

    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"{device.type} ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def _checkpoint_iteration(path: Path) -> int:
    from fyi_apps.records import load_sealed_torch

    if not path.exists():
        return 0
    try:
        return int(load_sealed_torch(path, weights_only=False)["iteration"])
    except Exception:  # noqa: BLE001 - the Distiller reports an unreadable checkpoint with its fix
        return 0


def time_run(cfg, ds, device, ecfg, args) -> dict:
    """Seconds per distillation iteration (after a warm-up) and per evaluation epoch, plus test time per seed."""
    import fyi_apps as fyi

    warm, n = 1, args.timing_iterations
    t = fyi.Distiller(dataclasses.replace(cfg, iterations=warm + n, score_every=0), ds, device=device)
    s = t.run(progress=False)
    per_iter = sum(r["seconds"] for r in t.log[warm:]) / n
    fyi.evaluate(s, ds, cfg=dataclasses.replace(ecfg, epochs=1), seeds=[0], device=device)  # warm-up
    t0 = time.perf_counter()
    res = fyi.evaluate(s, ds, cfg=dataclasses.replace(ecfg, epochs=args.timing_epochs), seeds=[0], device=device)
    wall = time.perf_counter() - t0
    return {"seconds_per_iteration": per_iter, "timed_iterations": n, "warmup_iterations": warm,
            "seconds_per_eval_epoch": res.seconds_per_run / args.timing_epochs, "timed_epochs": args.timing_epochs,
            "test_seconds": max(wall - res.seconds_per_run, 0.0)}


def estimate(timing: dict, iterations_left: int, epochs: int, seeds_left: int, setup_seconds: float = 0.0) -> dict:
    """Seconds still to come (distillation, evaluation) and the run's total including ``setup_seconds`` spent."""
    distill = timing["seconds_per_iteration"] * iterations_left
    per_seed = timing["seconds_per_eval_epoch"] * epochs + timing["test_seconds"]
    return {"setup_seconds": setup_seconds, "distill_seconds": distill, "eval_seconds": per_seed * seeds_left,
            "eval_seconds_per_seed": per_seed, "total_seconds": setup_seconds + distill + per_seed * seeds_left}


def _minutes(s: float) -> str:
    return f"{s / 60:.1f} min" if s < 5400 else f"{s / 3600:.1f} h"


@H.reports_errors("paper")
def main(argv=None) -> int:
    return run(build_parser().parse_args(argv), argv)


def run(args, argv=None) -> int:
    import torch

    import fyi_apps as fyi
    from fyi_apps.runtime import package_versions, resolve_device, write_json

    _check(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    device = resolve_device(args.device)
    progress = not args.quiet
    mode = args.dsa_mode if args.dsa_mode != "auto" else ("fyi" if args.fyi else "single")
    ds = fyi.load_dataset(args.dataset, root=args.data_root)
    cfg = fyi.DistillConfig(method=args.method, dataset=ds.info.name, ipc=args.ipc, fyi="flip" if args.fyi else None,
                            iterations=args.iterations, seed=args.seed, dsa_mode=mode, bf16=args.bf16,
                            checkpoint_every=args.checkpoint_every, score_every=args.score_every,
                            options={"experts": str(args.buffers)} if args.buffers else {})
    d = fyi.Distiller(cfg, ds, device=device)  # resolves the presets; bad options fail here
    rc = d.cfg
    ecfg = fyi.EvalConfig(epochs=args.eval_epochs, dsa_mode=mode, bf16=args.bf16)
    label = args.method + ("+fyi" if args.fyi else "")
    out = Path(args.out)
    stem = f"{label.replace('+', '-')}_{ds.info.name}_ipc{args.ipc}_seed{args.seed}_it{rc.iterations}_dsa-{mode}"
    set_path, result_path = out / f"{stem}.safetensors", out / f"{stem}.eval{args.eval_epochs}.json"
    seeds = list(range(args.seeds))
    done = json.loads(result_path.read_text()).get("per_seed", {}) if result_path.exists() else {}
    done = {int(k): v for k, v in done.items() if int(k) in seeds}
    left_it = 0 if set_path.exists() else rc.iterations - _checkpoint_iteration(d.checkpoint_path(set_path))
    settings = {"method": args.method, "fyi": args.fyi, "ipc": args.ipc, "dataset": ds.info.name, "source": ds.source,
                "iterations": rc.iterations, "batch_real": rc.batch_real, "lr_img": rc.lr_img, "dsa": rc.dsa,
                "dsa_mode": mode, "options": rc.options, "eval": dataclasses.asdict(ecfg),
                "distill_seed": args.seed, "eval_seeds": seeds}
    print(f"paper budget: {label} on {ds.info.name}, IPC {args.ipc}: {rc.iterations} iterations, "
          f"{rc.batch_real} real images per class, lr_img {rc.lr_img:g}, DSA {mode if rc.dsa else 'off'}, "
          f"options {json.dumps({k: v for k, v in rc.options.items() if k != 'experts'})}; evaluation "
          f"{args.eval_epochs} epochs x {len(seeds)} seeds", flush=True)

    timing = time_run(cfg, ds, device, ecfg, args)
    est = estimate(timing, left_it, args.eval_epochs, len(seeds) - len(done), time.perf_counter() - t_start)
    print(f"timing on {device_name(device)}: {timing['seconds_per_iteration']:.4g} s per {args.method} iteration "
          f"(mean of {timing['timed_iterations']} after {timing['warmup_iterations']} warm-up), "
          f"{timing['seconds_per_eval_epoch']:.4g} s per evaluation epoch + {timing['test_seconds']:.3g} s test per seed")
    print(f"estimate: distillation {left_it} iterations = {_minutes(est['distill_seconds'])}, evaluation "
          f"{len(seeds) - len(done)} seeds x {args.eval_epochs} epochs = {_minutes(est['eval_seconds'])}, "
          f"total {_minutes(est['total_seconds'])} ({est['total_seconds']:.0f} s, with "
          f"{est['setup_seconds']:.0f} s of loading and timing)", flush=True)
    record = {"command": H.command_line("paper", argv),
              "device": device_name(device), "settings": settings, "timing": timing, "estimate": est,
              "paper_table1": H.table1(args.method, args.fyi, args.ipc, ds.info.name),
              "versions": package_versions()}
    if args.estimate_only:
        write_json(out / f"{stem}.estimate.json", {**record, "status": "estimate"}, what="estimate")
        return 0
    budget_s = args.max_minutes * 60 if args.max_minutes else None
    if budget_s is not None and est["total_seconds"] > budget_s:
        print(f"refused: the estimate ({_minutes(est['total_seconds'])}) exceeds --max-minutes {args.max_minutes:g}; "
              "raise --max-minutes, lower --iterations/--eval-epochs/--seeds or use a faster device")
        return EXIT_BUDGET

    def over_budget(seconds_left: float) -> bool:
        return budget_s is not None and time.perf_counter() - t_start + seconds_left > budget_s

    # ---------------------------------------------------------------- distillation (resumable)
    t0 = time.perf_counter()
    if set_path.exists():
        synset = fyi.load_synset(set_path)
        ours = {k: v for k, v in rc.identity().items() if k != "options"}
        theirs = {k: synset.config.get(k) for k in ours}
        if theirs != ours:
            raise FyiError(f"{set_path} was distilled with other settings "
                           f"({', '.join(k for k in ours if theirs[k] != ours[k])}); use another --out or delete it")
    else:
        # with a budget: run in chunks (each leaves a checkpoint) and look at the clock between them
        chunk = max(args.checkpoint_every, rc.iterations // 20) if budget_s is not None else None
        while (synset := d.run(set_path, resume=True, progress=progress, stop_after=chunk)) is None:
            it = _checkpoint_iteration(d.checkpoint_path(set_path))
            rate = (time.perf_counter() - t0) / max(it - (rc.iterations - left_it), 1)
            if over_budget(rate * (rc.iterations - it) + est["eval_seconds"]):
                print(f"stopped at iteration {it} of {rc.iterations}: the projected end passes --max-minutes "
                      f"{args.max_minutes:g}; rerun the same command to continue from the checkpoint")
                return EXIT_BUDGET
    distill_s = time.perf_counter() - t0

    # ---------------------------------------------------------------- evaluation (resumable by seed)
    t0 = time.perf_counter()
    for s in seeds:
        if s in done:
            continue
        if done and over_budget(est["eval_seconds_per_seed"]):
            print(f"stopped after {len(done)} of {len(seeds)} evaluation seeds: the next one passes --max-minutes "
                  f"{args.max_minutes:g}; rerun the same command to continue")
            return EXIT_BUDGET
        r = fyi.evaluate(synset, ds, cfg=ecfg, seeds=[s], device=device, progress=progress)
        done[s] = {"acc": r.accs[0], "seconds": r.seconds_per_run, "lr": r.lr}
        write_json(result_path, {**record, "status": "evaluating", "per_seed": done}, what="paper result")
        print(f"  seed {s}: {100 * r.accs[0]:.2f} %", flush=True)
    eval_s = time.perf_counter() - t0

    accs = [done[s]["acc"] for s in seeds]
    mean = sum(accs) / len(accs)
    std = (sum((a - mean) ** 2 for a in accs) / len(accs)) ** 0.5
    images, labels = synset.decoded()
    score = fyi.unequalness(images, labels, synset.num_classes, distance="dm", num_nets=3, seed=0,
                            device=device)["score"]
    paper = record["paper_table1"]
    result = {"mean": mean, "std": std, "accs": accs, "unequalness_dm": score, "set": str(set_path),
              "paper": paper, "difference_to_paper": None if paper is None else 100 * mean - paper}
    measured = {"distill_seconds": distill_s, "eval_seconds": eval_s, "total_seconds": time.perf_counter() - t_start,
                "distill_seconds_recorded": synset.extra.get("seconds")}
    write_json(result_path, {**record, "status": "done", "per_seed": done, "result": result, "measured": measured},
               what="paper result")
    ours = f"{100 * mean:.2f} +- {100 * std:.2f}"
    paper_txt = f"{paper:.1f}" if paper is not None else "-"
    print(f"\n{'run':<12} {'IPC':>4}  {'ours (%)':<16} paper Table 1 (%)\n{label:<12} {args.ipc:>4}  {ours:<16} {paper_txt}")
    print(f"D(S, flip S) = {score:.4g}; measured {_minutes(measured['total_seconds'])} "
          f"(estimate {_minutes(est['total_seconds'])}); result: {result_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
