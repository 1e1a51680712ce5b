"""Trajectory matching with FYI on a CPU budget: expert buffers, MTT, MTT+FYI, FTD, FTD+FYI vs random subsets.

1. Expert trajectories on CIFAR-10 (JPEG copy): ``--experts`` SGD experts for MTT
   and as many flat (GSAM) experts for FTD, ``--epochs`` each, optionally on a
   class-balanced subset of the training set (``--train-per-class``) and with ZCA
   whitening (the published CIFAR setting).
2. Short distillations of MTT, MTT+FYI, FTD, FTD+FYI at each IPC with the
   published hyper-parameters (FTD's table) except the budget: ``--iterations``,
   ``--syn-steps`` (the published 50/30 unrolled steps cost minutes per iteration
   on 2 cores) and ``max_start_epoch`` clipped to the stored epochs.
3. The evaluation protocol (``--eval-epochs``, ``--seeds``; the learned lr) on each
   set and on random real subsets of the same size.

Per distillation it reports seconds per iteration and the peak memory of an
iteration (resident set size above the size before the run, sampled every 20 ms
after returning freed heap pages to the system; small peaks can still hide in
memory the allocator keeps; on CUDA ``torch.cuda.max_memory_allocated``).  Everything is resumable: the
experts continue expert by expert, distillations from their checkpoints and
each finished result is a record in ``OUT/results/`` (keyed by the settings),
so rerunning the same command after a crash continues where it stopped, and
processes that split ``--methods`` share their results.

    python -m benchmarks.trajectory --quick            # 1-2 minutes, checks the pipeline end to end
    python -m benchmarks.trajectory                    # full CPU benchmark (see the README for its time)
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

import torch

from benchmarks import harness as H

QUICK = dict(experts=1, epochs=3, train_per_class=30, arch="convnet:width=16", zca=False, iterations="2,2",
             syn_steps="4,3", eval_epochs=3, seeds=1, threads=1)
FULL = dict(experts=4, epochs=8, train_per_class=500, arch="convnet", zca=True, iterations="100,20",
            syn_steps="20,10", eval_epochs=300, seeds=2, threads=0)


def _trim() -> None:
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


class PeakMemory:
    """Peak memory while the block runs, above the level at its start (MB)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.peak_mb = 0.0

    @staticmethod
    def _rss_mb() -> float:
        try:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
        except OSError:  # not Linux: the process-wide peak is the best there is
            import resource

            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base = torch.cuda.memory_allocated(self.device) / 2**20
            return self
        _trim()  # hand freed heap pages back first, so that the peak shows in the resident size
        self.base = self._rss_mb()
        self._peak = self.base
        self._stop = threading.Event()

        def sample():
            while not self._stop.is_set():
                self._peak = max(self._peak, self._rss_mb())
                self._stop.wait(0.02)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            self.peak_mb = torch.cuda.max_memory_allocated(self.device) / 2**20 - self.base
        else:
            self._stop.set()
            self._thread.join()
            self.peak_mb = max(self._peak, self._rss_mb()) - self.base
        return False


def build_parser():
    p = H.parser(__doc__, first_paragraph=True)
    H.add_common_arguments(p, quick={"help": "tiny budget (1-2 minutes) to check the pipeline"},
                           dataset={"default": "cifar10"})
    H.add_common_arguments(p, "data_root", out={"default": "fyi-runs/bench-trajectory",
                                                 "help": "folder for experts, sets and results"})
    p.add_argument("--json", default=None, help="results file (default OUT/trajectory.json)")
    p.add_argument("--experts", type=int, help=f"experts per kind (full {FULL['experts']}, quick {QUICK['experts']})")
    p.add_argument("--epochs", type=int, help=f"epochs per expert (full {FULL['epochs']})")
    p.add_argument("--train-per-class", type=int, help="experts train on this many images per class (0: all; "
                   f"full {FULL['train_per_class']})")
    p.add_argument("--expert-bf16", action="store_true", help="bf16 autocast while training experts")
    p.add_argument("--arch", help=f"network of experts and students (full {FULL['arch']})")
    zca = p.add_mutually_exclusive_group()
    zca.add_argument("--zca", dest="zca", action="store_true", default=None, help="ZCA whitening (full: on)")
    zca.add_argument("--no-zca", dest="zca", action="store_false")
    p.add_argument("--methods", default="mtt,mtt+fyi,ftd,ftd+fyi")
    p.add_argument("--iterations", help=f"per IPC: N, one per IPC or IPC:N pairs (full {FULL['iterations']})")
    p.add_argument("--syn-steps", help=f"unrolled steps per IPC (0: published; full {FULL['syn_steps']})")
    p.add_argument("--no-checkpoint-unroll", action="store_true",
                   help="keep every unrolled step's activations (faster, memory grows with syn_steps)")
    p.add_argument("--ema-horizon", type=float, default=0.0,
                   help="FTD: set ema_decay = 1 - 1/(F * iterations), an EMA horizon of the fraction F of the run "
                        "(0: FTD's 0.9995, a horizon of 2,000 iterations, for runs of thousands)")
    H.add_common_arguments(p, "ipcs", seeds={"help": f"evaluation seeds (full {FULL['seeds']})"}, seed={"help": "random seed"},
                           eval_epochs={"help": f"evaluation epochs (full {FULL['eval_epochs']}; paper 1000)"})
    H.add_common_arguments(p, "device", threads={
        "help": "torch threads (0: torch's default; quick: 1, which is faster for tiny networks and on a busy machine)"})
    p.add_argument("--quiet", action="store_true")
    return p


@H.reports_errors("trajectory")
def main(argv=None) -> int:
    args = H.apply_preset(build_parser().parse_args(argv), FULL, QUICK)
    if args.threads:
        torch.set_num_threads(args.threads)

    import fyi_apps as fyi
    from fyi_apps.baselines import random_subset
    from fyi_apps.distill import ExpertConfig, resolve_config, train_experts
    from fyi_apps.report import pct
    from fyi_apps.runtime import package_versions, resolve_device, write_json

    device = resolve_device(args.device)
    out = Path(args.out) / ("quick" if args.quick else "full")
    json_path = Path(args.json) if args.json else out / "trajectory.json"
    ipcs = H.int_list(args.ipcs, "--ipcs")
    iters, steps = H.per_ipc(args.iterations, ipcs, "--iterations"), H.per_ipc(args.syn_steps, ipcs, "--syn-steps")
    methods = H.names(args.methods)
    progress = not args.quiet
    seeds = list(range(args.seed, args.seed + args.seeds))
    ecfg = fyi.EvalConfig(epochs=args.eval_epochs)

    # one record per result, named by the result and a hash of the settings that define it (--methods and --ipcs
    # only choose which to make): processes splitting --methods share them, a rerun resumes
    cache = H.RecordCache(out / "results", what="trajectory result")
    settings = _args_record(args)
    tag = "_" + H.cache_key(settings, 10)
    try:  # a results file written before the records were: its results with these settings become records
        prev = json.loads(json_path.read_text())
    except (OSError, ValueError):
        prev = {}
    for k, v in (prev.get("results", {}) if prev.get("args") == settings else {}).items():
        cache.get(k + tag) or cache.put(v, k + tag)
    record = {"benchmark": "trajectory", "command": H.command_line("trajectory", argv), "args": settings,
              "seeds": seeds, "versions": package_versions(), "device": str(device),
              "threads": torch.get_num_threads()}

    def results() -> dict:
        return {k[: -len(tag)]: cache.get(k) for k in sorted(cache.keys()) if k.endswith(tag)}

    def save():
        record.update(results=results(), time=time.strftime("%Y-%m-%dT%H:%M:%S"))
        write_json(json_path, record)

    t_load = time.perf_counter()
    ds = fyi.load_dataset(args.dataset, root=args.data_root)
    print(f"{ds.info.name}: {ds.source} ({time.perf_counter() - t_load:.0f} s to load)", flush=True)

    # ---------------------------------------------------------------- 1. experts
    experts = {}
    for flat in (False, True):
        if not any(m.startswith("ftd" if flat else "mtt") for m in methods):
            continue
        xcfg = ExpertConfig(dataset=ds.info.name, experts=args.experts, epochs=args.epochs, arch=args.arch,
                            zca=bool(args.zca), flat=flat, train_per_class=args.train_per_class or None,
                            bf16=args.expert_bf16, seed=args.seed)
        folder = out / ("buffers-flat" if flat else "buffers-sgd")
        t0 = time.perf_counter()
        b = train_experts(xcfg, ds, folder, device=device, progress=progress, command=record["command"])
        s = b.summary()
        s["seconds_per_expert_epoch"] = s["mean_seconds"] / b.epochs
        s["wall_seconds_this_call"] = time.perf_counter() - t0
        experts["flat" if flat else "sgd"] = (folder, b)
        record.setdefault("buffers", {})["flat" if flat else "sgd"] = s
        print(f"{'flat (GSAM)' if flat else 'SGD'} experts: {s['experts']} x {s['epochs']} epochs, test acc "
              f"{100 * (s['mean_test_acc'] or 0):.2f} %, {s['seconds_per_expert_epoch']:.1f} s per expert-epoch", flush=True)
        save()

    # ---------------------------------------------------------------- 2.+3. distil and evaluate
    for ipc in ipcs:
        n_it, n_steps = iters[ipc], steps[ipc]

        def random_result(ipc=ipc) -> dict:  # a different subset for every seed
            accs = [a for s in seeds for a in fyi.evaluate(random_subset(ds, ipc, seed=s), ds, arch=args.arch,
                                                           cfg=ecfg, seeds=[s], device=device).accs]
            return {"set": "random", "ipc": ipc, "accs": accs, "mean": sum(accs) / len(accs), "std": _std(accs),
                    "lr": 0.01}

        cache.fetch(f"random-ipc{ipc}{tag}", random_result)
        save()
        for m in methods:
            key = f"{m}-ipc{ipc}"
            if cache.get(key + tag) is not None:
                continue
            method, fyi_view = m.split("+")[0], ("flip" if m.endswith("+fyi") else None)
            folder, b = experts["flat" if method == "ftd" else "sgd"]
            opts = {"experts": str(folder), "checkpoint_unroll": not args.no_checkpoint_unroll}
            base = resolve_config(fyi.DistillConfig(method=method, dataset=ds.info.name, ipc=ipc))
            if n_steps:
                opts["syn_steps"] = n_steps
            ee = int(base.options["expert_epochs"])
            ee = min(ee, b.epochs)
            opts["expert_epochs"] = ee
            opts["max_start_epoch"] = max(1, min(int(base.options["max_start_epoch"]), b.epochs - ee + 1))
            if method == "ftd" and args.ema_horizon:
                opts["ema_decay"] = 1.0 - 1.0 / max(1.0, args.ema_horizon * n_it)
            cfg = fyi.DistillConfig(method=method, dataset=ds.info.name, ipc=ipc, fyi=fyi_view, iterations=n_it,
                                    arch=args.arch, seed=args.seed, checkpoint_every=max(1, min(10, n_it)), options=opts)
            target = out / "sets" / f"{key}.safetensors"
            d = fyi.Distiller(cfg, ds, device=device)
            peak = None
            if target.exists():  # finished before a crash, not yet evaluated: keep it
                log = json.loads(target.with_name(f"{key}.log.json").read_text())["log"]
            else:
                with PeakMemory(device) as mem:
                    d.run(target, resume=True, progress=progress)
                log, peak = d.log[d.start_iteration:] or d.log, mem.peak_mb
            sec = [r["seconds"] for r in log]
            synset = fyi.load_synset(target)
            ev = fyi.evaluate(synset, ds, arch=args.arch, cfg=ecfg, seeds=seeds, device=device)
            cache.put({
                "set": m, "ipc": ipc, "iterations": n_it, "syn_steps": d.cfg.options["syn_steps"],
                "expert_epochs": ee, "max_start_epoch": opts["max_start_epoch"], "lr_img": d.cfg.lr_img,
                "lr_lr": d.cfg.options["lr_lr"], "lr_teacher": d.cfg.options["lr_teacher"],
                "checkpoint_unroll": opts["checkpoint_unroll"], "ema_decay": d.cfg.options.get("ema_decay"),
                "seconds_per_iteration": sum(sec) / len(sec), "peak_mb_per_iteration": peak,
                "first_loss": log[0]["loss"], "final_loss": synset.extra.get("final_loss"), "learned_lr": synset.lr,
                "accs": ev.accs, "mean": ev.mean, "std": ev.std, "eval_lr": ev.lr, "file": str(target),
            }, key + tag)
            save()
            print(f"{key}: {100 * ev.mean:.2f} % ({sum(sec) / len(sec):.1f} s/it"
                  + (f", +{peak:.0f} MB" if peak is not None else "") + ")", flush=True)

    # ---------------------------------------------------------------- table
    rows, done = [], results()
    for ipc in ipcs:
        for m in ["random", *methods]:
            r = done.get(f"{m}-ipc{ipc}")
            if r is None:
                continue
            if m == "random":
                rows.append([m, ipc, "-", "-", "-", "-", "-", "0.01", pct(r["mean"], r["std"])])
            else:
                rows.append([m.upper().replace("+FYI", " + FYI"), ipc, r["iterations"], r["syn_steps"],
                             f"{r['seconds_per_iteration']:.1f}",
                             "-" if r["peak_mb_per_iteration"] is None else f"{r['peak_mb_per_iteration']:.0f}",
                             f"{r['first_loss']:.3f} -> {r['final_loss']:.3f}", f"{r['learned_lr']:.4g}",
                             pct(r["mean"], r["std"])])
    md = record["table_markdown"] = H.show_table(
        rows, ["set", "IPC", "iterations", "syn_steps", "s/it", "peak MB/it", "loss", "lr", "test acc %"])
    save()
    (out / "trajectory.md").write_text(md + "\n")
    print(f"results written to {json_path}")
    return 0


def _std(xs):
    m = sum(xs) / len(xs)
    return (sum((x - m) ** 2 for x in xs) / len(xs)) ** 0.5


def _args_record(args) -> dict:
    """The settings that define a result; --methods and --ipcs only choose which results to make."""
    keep = ("quick", "dataset", "experts", "epochs", "train_per_class", "expert_bf16", "arch", "zca",
            "iterations", "syn_steps", "no_checkpoint_unroll", "eval_epochs", "seeds", "seed")
    record = {k: getattr(args, k) for k in keep}
    if args.ema_horizon:  # only when set, so results made before the option existed still match
        record["ema_horizon"] = args.ema_horizon
    return record


if __name__ == "__main__":
    sys.exit(main())
