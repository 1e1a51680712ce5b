"""ER-ACE with distilled memories of the same size (fyi-apps issue 24): memories x {crop-flip, none} x seeds.

Avalanche's ER-ACE baseline on Split CIFAR-10 (``fyi cl --protocol er-ace-avalanche``: continual-learning-
baselines' ``er_ace.py`` settings, target ACC 0.45 +- 0.03) with its memory of 1,000 images replaced by our
storage policy holding 100 images per class of

* ``native``: ER-ACE's own class-balanced reservoir buffer (the reference);
* ``random``, ``herding``: real images of each experience's classes;
* ``dm``, ``dm+fyi``: DM sets distilled offline, per class from that class's whole training set (class-
  incremental learning sees each class in one experience only, so this is a per-experience distillation done
  ahead of time), ConvNet-3, IPC 100, ``--dm-iterations`` iterations with ``--batch-real`` real images per
  class, seed 0; one set serves every seed;
* ``dm uint8``, ``dm+fyi uint8``: the same sets through 8-bit pixels (what an image export stores:
  :meth:`fyi_apps.SyntheticSet.quantized`), under the reference transform only.

Each memory runs with the reference's training transform (``crop-flip``: random crop, 4 px padding, horizontal
flip on every stream and memory image) and without it (``none``).  Memory cost is given in bytes: a set file
holds float32 (4 bytes a value), an image export or a buffer of dataset images uint8 (1 byte).

    python -m benchmarks.er_ace --threads 1          # distils the two sets first (checkpointed), then the runs
    python -m benchmarks.er_ace --report-only        # the table and plot from the runs finished so far
    python -m benchmarks.er_ace --quick              # the whole pipeline on digits in about a minute

Every finished run is kept under ``OUT/cl/runs`` (the baseline's folder: its 5 native runs are reused), the
sets under ``OUT/sets`` (checkpointed every 25 iterations): rerun the same command to continue; two processes
may share the folder (each distils one set, then they share the runs).  Seeds run in order (every memory's seed 0 first), so a partial run gives a whole
first column.  Outputs: ``OUT/er-ace-memories.{json,md,png}``.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from benchmarks import harness as H

AUGS = ("crop-flip", "none")
#: the reference numbers (continual-learning-baselines' target_results.csv; the ER-ACE paper)
AVALANCHE_ACC, AVALANCHE_TOL, PAPER_ACC = 0.45, 0.03, 0.52
FULL = dict(dataset="cifar10", seeds=3, dm_iterations=200, batch_real=128, ipc=100)
QUICK = dict(dataset="digits", seeds=1, dm_iterations=3, batch_real=16, ipc=3)


def parse_args(argv=None):
    p = H.parser(__doc__, first_paragraph=True)
    H.add_common_arguments(p, "quick", "device", "data_root", "threads", "no_progress",
                           seeds={"help": f"seeds 0..N-1 (default {FULL['seeds']})"},
                           batch_real={"help": f"DM real images per class per iteration (default {FULL['batch_real']})"},
                           out={"default": None, "help": "output folder (default benchmarks/results/cl-er-ace-avalanche)"})
    p.add_argument("--dm-iterations", type=int, default=None,
                   help=f"DM iterations of the distilled memories (default {FULL['dm_iterations']})")
    p.add_argument("--augs", default=",".join(AUGS), help="stream augmentations to run: crop-flip, none")
    p.add_argument("--report-only", action="store_true", help="table and plot from the finished runs only")
    args = H.apply_preset(p.parse_args(argv), FULL, QUICK)
    args.augs = H.names(args.augs)
    bad = [a for a in args.augs if a not in AUGS]
    if bad:
        p.error(f"--augs takes {', '.join(AUGS)}; got {', '.join(bad)}")
    args.out = Path(args.out or H.quick_path(H.RESULTS / "cl-er-ace-avalanche", args.quick))
    args.argv = sys.argv[1:] if argv is None else list(argv)
    return args


def set_path(args, fyi: bool, uint8: bool = False) -> Path:
    name = f"dm{'-fyi' if fyi else ''}_{args.dataset}_ipc{args.ipc}_{args.dm_iterations}it_b{args.batch_real}"
    return args.out / "sets" / f"{name}{'_uint8' if uint8 else ''}.fyi.safetensors"


VIEWS = {"dm": None, "dm+fyi": "flip"}  # memory label -> FYI view


def set_paths(args) -> dict[str, Path]:
    """Label -> file of every distilled memory: ``dm``, ``dm+fyi`` and their ``uint8`` copies."""
    return {f"{label}{tag}": set_path(args, view is not None, uint8=bool(tag))
            for label, view in VIEWS.items() for tag in ("", " uint8")}


def distil_sets(args, dataset, wait: bool = True) -> dict[str, Path] | None:
    """The DM and DM+FYI memories and their 8-bit copies (distilled once, resumed from a checkpoint).

    Two processes on one folder distil one set each: a set another live process
    has claimed is waited for (``wait=False``: None is returned instead), not
    distilled twice.
    """
    import fyi_apps as fyi
    from fyi_apps.runtime import claim, release_claim

    waiting = list(VIEWS)
    while waiting:
        deferred = []
        for label in waiting:
            path = set_path(args, VIEWS[label] is not None)
            if not path.exists():
                if not claim(path.with_name(path.name + ".claim")):
                    deferred.append(label)  # another process distils it
                    continue
                try:
                    cfg = fyi.DistillConfig("dm", dataset.info.name, args.ipc, fyi=VIEWS[label],
                                            iterations=args.dm_iterations, batch_real=args.batch_real, seed=0,
                                            checkpoint_every=25)
                    H.distilled(path, cfg, dataset, device=args.device, progress=not args.no_progress)
                finally:
                    release_claim(path.with_name(path.name + ".claim"))
        if deferred and not wait:
            return None
        if deferred:
            time.sleep(10.0)
        waiting = deferred
    paths = set_paths(args)
    for label in VIEWS:
        if not paths[f"{label} uint8"].exists():
            fyi.save_synset(paths[f"{label} uint8"], fyi.load_synset(paths[label]).quantized())
    return paths


REAL = ("native", "random", "herding")


def memories(args, sets: dict[str, Path] | None, aug: str) -> list[str]:
    """The memories of one augmentation's runs (``sets`` None: the real-image ones only)."""
    out = list(REAL)
    if sets is None:
        return out
    out += [f"{k}:{sets[k]}" for k in ("dm", "dm+fyi")]
    if aug == "crop-flip":  # the export question under the reference's own transform
        out += [f"{k.replace(' ', '-')}:{sets[k]}" for k in ("dm uint8", "dm+fyi uint8")]
    return out


def config(args, aug: str, mems: list[str], n_seeds: int):
    """The er-ace-avalanche preset's CLConfig (as ``fyi cl --protocol er-ace-avalanche`` builds it)."""
    from fyi_apps.tasks.continual import protocol_config

    quick = dict(benchmark="split-digits", ipc=args.ipc, arch="convnet", batch_size=16, batch_size_mem=16)
    return protocol_config("er-ace-avalanche", memories=mems, seeds=list(range(n_seeds)), stream_aug=aug,
                           distill_cache=str(args.out / "cl" / "distill-cache"), **(quick if args.quick else {}))


def memory_bytes(args, dataset, sets: dict[str, Path]) -> dict[str, dict]:
    """Bytes each memory holds: values x 4 for float32 set files, values x 1 for uint8 images."""
    import fyi_apps as fyi

    info = dataset.info
    values = args.ipc * info.num_classes * info.channels * info.image_size ** 2
    out = {k: {"images": args.ipc * info.num_classes, "dtype": "uint8", "bytes": values}
           for k in ("native", "random", "herding")}
    for label, path in sets.items():
        s = fyi.load_synset(path)
        u8 = label.endswith("uint8")
        out[label.replace(" ", "-")] = {"images": len(s), "dtype": "uint8" if u8 else str(s.images.dtype).split(".")[-1],
                                        "bytes": s.images.numel() * (1 if u8 else s.images.element_size()),
                                        "file_bytes": Path(path).stat().st_size}
    return out


def run_all(args, dataset, sets) -> dict[str, dict]:
    """Seed by seed (every memory's seed 0 first), each augmentation; returns {aug: payload}."""
    from fyi_apps.tasks.continual import run_experiment

    command = H.command_line("er_ace", args.argv)
    payloads = {}
    for n in range(1, args.seeds + 1):
        for aug in args.augs:
            cfg = config(args, aug, memories(args, sets, aug), n)
            last = n == args.seeds and sets is not None
            payloads[aug] = run_experiment(
                cfg, out=args.out / "cl" / f"er-ace-memories_{aug}_{n}seeds" if last else None,
                root=args.data_root, device=args.device, progress=not args.no_progress, command=command,
                resume_dir=args.out / "cl" / "runs")
            which = "every memory" if sets is not None else "the real-image memories"
            print(f"[{time.strftime('%H:%M:%S')}] {aug}: {n} seed(s) of {which} done", flush=True)
    return payloads


def finished(args, sets) -> dict[str, dict]:
    """{aug: {memory: [finished runs]}} read from the run folder (for --report-only and partial reports)."""
    from fyi_apps.tasks.continual import finished_runs, memory_label

    out = {}
    for aug in args.augs:
        cfg = config(args, aug, memories(args, sets, aug), args.seeds)
        runs = finished_runs(cfg, args.out / "cl" / "runs")
        out[aug] = {memory_label(kind): [runs[kind, s] for s in cfg.seeds if (kind, s) in runs]
                    for kind in cfg.memories}
    return out


def summarise(runs_by_aug: dict[str, dict], nbytes: dict[str, dict]) -> list[dict]:
    import statistics

    rows = []
    for aug, by_mem in runs_by_aug.items():
        for mem, runs in by_mem.items():
            accs = [r["summary"]["final_acc"] for r in runs]
            forg = [r["summary"].get("final_forgetting") for r in runs]
            forg = [f for f in forg if f is not None]
            rows.append({"memory": mem, "aug": aug, "n": len(accs), "seeds": [r.get("seed") for r in runs],
                         "acc": accs, "acc_mean": statistics.fmean(accs) if accs else None,
                         "acc_std": statistics.stdev(accs) if len(accs) > 1 else 0.0 if accs else None,
                         "forgetting_mean": statistics.fmean(forg) if forg else None,
                         **{k: v for k, v in nbytes.get(mem, {}).items()}})
    return rows


def _size(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def _fmt(m, s, n):
    return "-" if m is None else f"{m:.3f} +- {s:.3f} ({n})"


def markdown(rows: list[dict], augs: list[str], command: str) -> str:
    from fyi_apps.report import table

    mems = list(dict.fromkeys(r["memory"] for r in rows))
    by = {(r["memory"], r["aug"]): r for r in rows}
    body = []
    for m in mems:
        first = next(r for r in rows if r["memory"] == m)
        cells = [_fmt(by[m, a]["acc_mean"], by[m, a]["acc_std"], by[m, a]["n"]) if (m, a) in by else "-" for a in augs]
        size = f"{_size(first['bytes'])} ({first['dtype']})" if first.get("bytes") else "-"
        body.append([m, *cells, size])
    n_images = next((r["images"] for r in rows if r.get("images")), None)
    head = [f"memory ({n_images:,} images)" if n_images else "memory", *[f"ACC, {a} (seeds)" for a in augs],
            "memory bytes"]
    return "\n".join([
        f"Command: `{command}`", "",
        f"Final average accuracy over the whole test stream, mean +- std over seeds (n). Reference: Avalanche "
        f"{AVALANCHE_ACC} +- {AVALANCHE_TOL} (crop-flip, its default transform), ER-ACE paper {PAPER_ACC}.", "",
        table(body, head, markdown=True), ""])


def plot(rows: list[dict], augs: list[str], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fyi_apps.plots import save_figure

    mems = list(dict.fromkeys(r["memory"] for r in rows))
    by = {(r["memory"], r["aug"]): r for r in rows}
    fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(mems), 3.6))
    width = 0.8 / len(augs)
    for i, aug in enumerate(augs):
        xs = [j + (i - (len(augs) - 1) / 2) * width for j in range(len(mems))]
        ys = [by[m, aug]["acc_mean"] if (m, aug) in by and by[m, aug]["acc_mean"] is not None else 0 for m in mems]
        es = [by[m, aug]["acc_std"] if (m, aug) in by and by[m, aug]["acc_std"] is not None else 0 for m in mems]
        ax.bar(xs, ys, width, yerr=es, capsize=3, label=f"stream aug: {aug}")
    ax.axhspan(AVALANCHE_ACC - AVALANCHE_TOL, AVALANCHE_ACC + AVALANCHE_TOL, color="grey", alpha=0.2,
               label=f"Avalanche ER-ACE {AVALANCHE_ACC} +- {AVALANCHE_TOL}")
    ax.axhline(PAPER_ACC, color="black", ls="--", lw=0.8, label=f"ER-ACE paper {PAPER_ACC}")
    ax.set_xticks(range(len(mems)), mems, rotation=20, ha="right")
    ax.set_ylabel("final average accuracy")
    ax.set_title("ER-ACE on Split CIFAR-10, memories of 100 images per class")
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return save_figure(fig, path, dpi=120)


@H.reports_errors("er_ace")
def main(argv=None) -> int:
    import fyi_apps as fyi

    args = parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    dataset = fyi.load_dataset(args.dataset, root=args.data_root)
    if args.report_only:
        sets = set_paths(args)
    else:
        sets = distil_sets(args, dataset, wait=False)
        if sets is None:  # another process distils a set: run the real-image memories meanwhile
            run_all(args, dataset, None)
            sets = distil_sets(args, dataset)
        run_all(args, dataset, sets)
    nbytes = memory_bytes(args, dataset, {k: p for k, p in sets.items() if Path(p).exists()})
    rows = summarise(finished(args, sets), nbytes)
    command = H.command_line("er_ace", args.argv)
    md = markdown(rows, args.augs, command)
    png = plot(rows, args.augs, args.out / "er-ace-memories.png")
    from fyi_apps.runtime import atomic_path

    with atomic_path(args.out / "er-ace-memories.md") as tmp:
        tmp.write_text(md)
    H.write_result(args.out / "er-ace-memories.json", {
        "command": command, "rows": rows, "augs": args.augs, "dm_iterations": args.dm_iterations,
        "batch_real": args.batch_real, "ipc": args.ipc, "distill_seed": 0,
        "reference": {"avalanche": AVALANCHE_ACC, "tolerance": AVALANCHE_TOL, "paper": PAPER_ACC},
        "sets": {k: str(p) for k, p in sets.items()}, "plot": str(png)})
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
