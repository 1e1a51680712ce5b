"""Benchmark: synthetic sets as NAS proxies, and the cross-architecture matrix (fyi-apps issue 6).

Ranks candidates sampled from the DC search space plus VGG-11 and ResNet-18 by
their accuracy after training on each proxy (random real subset, DM, DM+FYI,
...) and compares with a ground truth (the full training set, or a stated
larger real subset); then evaluates the given synthetic sets on ConvNet,
VGG-11 and ResNet-18.  Everything is cached per training run under
``OUT/cache`` (rerun the same command to resume).

Full run on CIFAR-10 (the DM / DM+FYI IPC-10 sets come from ``benchmarks/fidelity.py``;
the README gives the exact commands)::

    python -m benchmarks.nas --proxy random --proxy DM.safetensors --proxy DMFYI.safetensors \\
        --xarch DM.safetensors --xarch DMFYI.safetensors

The full preset is a CPU budget: 20 candidates of at most 100 M MACs per image
from the DC space plus VGG-11 and ResNet-18, ground truth 100 real images per
class x 15 epochs, proxies 40 epochs, 2,000 test images, cross-architecture
matrix 100 epochs x 1 seed (about 1.8 core-hours here).

``--estimate`` times one short epoch of every candidate and prints the
expected wall time of the chosen budget without training anything else.
``--quick`` runs the whole pipeline on digits (tiny DM / DM+FYI sets distilled
on the spot) in about two minutes.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from benchmarks import harness as H

QUICK = dict(dataset="digits", ipc=5, sample=5, include="vgg11", proxy_epochs=20, truth="full",
             full_epochs=2, test_size=None, xarch_epochs=10, xarch_seeds=1, xarch_archs="convnet,vgg11,mlp",
             dm_iterations=30, workers=2)
# NAS-Bench-201 against the benchmark's own 200-epoch full-data accuracies (fyi-apps issue 12): 100 cells
# drawn with seed 0 from the 15,625, DC-Bench's cheaper network (one cell per stage, C=16), proxies at IPC 10
NB201 = dict(dataset="cifar10", ipc=10, space="nb201", sample=100, include="", proxy_epochs=10, batch_size=25,
             truth="nb201",
             full_epochs=200, test_size=1000, nb201_cells=1, xarch_epochs=100, xarch_seeds=1,
             xarch_archs="convnet", dm_iterations=None, workers=2, topk="10%,20%")
# the same 100 cells, trained proxies recorded along one 200-epoch run (fyi-apps issue 22): rank correlation
# against compute; channels-last training (same arithmetic, about 1.2x faster on a CPU for these small cells)
NB201_CURVES = dict(NB201, proxy_epochs=200, curve="5,10,25,50,100,200", channels_last=True)
# the zero-cost proxies' external check (fyi-apps issue 22): 1,000 NB201 cells drawn with seed 0, the benchmark's own
# network (N = 5 cells per stage, C = 16), every zero-cost proxy and the parameter count, no training
ZERO_COST = ("synflow", "snip", "grad_norm", "grasp", "fisher", "jacob_cov", "naswot")
NB201_ZEROCOST = dict(NB201, sample=1000, nb201_cells=None, proxy_epochs=1, test_size=None, topk="10%,20%",
                      proxies=[*ZERO_COST, "params", "flops"])
#: published Spearman rho on NAS-Bench-201 CIFAR-10 (Abdelfattah et al., ICLR 2021, released notebook: |rho| against
#: the cifar10-valid 200-epoch accuracies, all 15,625 cells; the parameter count: NASWOT's DataFrame against the
#: CIFAR-10 test accuracies)
PUBLISHED_RHO = {"synflow": 0.737, "jacob_cov": 0.731, "snip": 0.596, "grad_norm": 0.594, "grasp": 0.514,
                 "fisher": 0.36, "parameter count": 0.752}
NB201_QUICK = dict(NB201, dataset="cifar10", ipc=1, sample=8, proxy_epochs=2, test_size=100, nb201_width=8, workers=1,
                   topk="50%")
FULL = dict(dataset="cifar10", ipc=10, sample=20, include="vgg11,resnet18", max_mmacs=100.0, proxy_epochs=40,
            truth="real:100", full_epochs=15, test_size=2000, xarch_epochs=100, xarch_seeds=1,
            xarch_archs="convnet,vgg11,resnet18", dm_iterations=None, workers=2)


def parse_args(argv=None):
    p = H.parser(__doc__, first_paragraph=True)
    H.add_common_arguments(p, quick={
        "help": "digits, tiny budgets, DM sets distilled on the spot (a few minutes; checks the pipeline only)"})
    p.add_argument("--estimate", action="store_true", help="time every candidate briefly and print the expected wall time")
    H.add_common_arguments(p, "dataset", "data_root")
    p.add_argument("--proxy", action="append", default=None, metavar="SYNSET|random|herding",
                   help="proxy training set (repeat); default: random (+ the DM sets in --quick)")
    p.add_argument("--ipc", type=int, default=None, help="images per class of random/herding proxies")
    p.add_argument("--preset", default="dc", choices=["dc", "nb201", "nb201-curves", "zerocost"],
                   help="dc: DC-space ConvNets vs a real-data ground truth; nb201: NAS-Bench-201 cells vs the "
                        "benchmark's 200-epoch accuracies")
    p.add_argument("--space", default=None)
    p.add_argument("--nb201", default=None, metavar="CSV", help="NAS-Bench-201 accuracy table (default: data roots)")
    p.add_argument("--nb201-cells", type=int, default=None)
    p.add_argument("--nb201-width", type=int, default=None)
    p.add_argument("--connected-only", action="store_true")
    p.add_argument("--stratified", action="store_true")
    p.add_argument("--sample", type=int, default=None, help="candidates drawn from the space")
    p.add_argument("--include", default=None, help="always-included candidates (default vgg11,resnet18)")
    p.add_argument("--max-mmacs", type=float, default=None,
                   help="sample only candidates of at most this many million MACs per image (default: no cap)")
    p.add_argument("--proxy-epochs", type=int, default=None)
    p.add_argument("--space-sets", action="store_true",
                   help="also distil DM and DM+FYI with networks drawn from the NB201 space (space:nb201;cells=1; "
                        "IPC 10, 2,000 iterations, 64 real images per class: the ConvNet sets' budget), resumable, "
                        "and add them as proxies")
    p.add_argument("--ensemble", action="append", default=None, metavar="A+B",
                   help="mean-rank ensemble of proxies (labels or --proxy texts joined by '+'; 'vote'); repeat")
    p.add_argument("--curve", default=None, help="proxy epochs of the learning curve, e.g. 5,10,25,50,100,200")
    p.add_argument("--channels-last", action="store_true", default=None)
    p.add_argument("--truth", default=None, help="ground truth: full or real:N (N images per class)")
    p.add_argument("--full-epochs", type=int, default=None, help="ground-truth epochs")
    H.add_common_arguments(p, seeds={"default": 1, "help": "training seeds per candidate and set"})
    p.add_argument("--batch-size", type=int, default=None, help="training batch size (default 256; nb201 preset 25)")
    p.add_argument("--topk", default=None, help="top-k by ground truth: counts or percentages (default 5,10,20)")
    p.add_argument("--test-size", type=int, default=-1, help="test images (class-balanced subset; 0 = all)")
    p.add_argument("--no-dsa", action="store_true")
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes (default 2: one per core of this machine, 1 torch thread each)")
    p.add_argument("--threads", type=int, default=None, help="torch threads per worker (default cores / workers)")
    p.add_argument("--xarch", action="append", default=None, metavar="SYNSET",
                   help="synthetic set for the cross-architecture matrix (repeat)")
    p.add_argument("--xarch-archs", default=None)
    p.add_argument("--xarch-epochs", type=int, default=None)
    p.add_argument("--xarch-seeds", type=int, default=None)
    H.add_common_arguments(p, "device", "no_progress", seed={"help": "base random seed"},
                           out={"help": "output folder (default benchmarks/results/nas-<dataset>[-quick])"})
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.preset == "zerocost":
        preset = dict(NB201_ZEROCOST, sample=20, nb201_width=8) if args.quick else NB201_ZEROCOST
        if args.proxy is None:
            args.proxy = list(preset["proxies"])
    elif args.preset.startswith("nb201"):
        preset = NB201_QUICK if args.quick else NB201_CURVES if args.preset == "nb201-curves" else NB201
    else:
        preset = dict(QUICK if args.quick else FULL, space="dc720", topk="5,10,20")
    preset = {"batch_size": 256, "curve": "", "channels_last": False, "nb201_cells": None, "nb201_width": None,
              **{k: v for k, v in preset.items() if k != "proxies"}}
    if args.test_size in (-1, 0):  # -1: the preset's; 0: all
        args.test_size = preset["test_size"] if args.test_size == -1 else None
    H.apply_preset(args, {k: v for k, v in preset.items() if k != "test_size"})
    args.dm_iterations = preset["dm_iterations"]
    if args.out is None:
        tag = {"nb201": "-nb201", "nb201-curves": "-nb201-curves", "zerocost": "-zerocost"}.get(args.preset, "")
        args.out = H.quick_path(H.RESULTS / f"nas{tag}-{args.dataset}", args.quick)
    return args


def space_sets(args, ds) -> list[str]:
    """DM and DM+FYI sets distilled with a random NB201 cell (cells = 1) per iteration (fyi-apps issue 23).

    The budget of the ConvNet-distilled sets they are compared with (``benchmarks/ablation.py``'s IPC-10 sets):
    2,000 iterations, 64 real images per class, single DSA, seed 0; checkpointed every 25 iterations, so an
    interrupted run resumes.
    """
    import fyi_apps as fyi

    folder = H.RESULTS / "nas-sets"
    ipc, its = (1, 4) if args.quick else (10, 2000)
    paths = []
    for fyi_view in (None, "flip"):
        path = folder / f"space-dm{'-fyi' if fyi_view else ''}_nb201c1_ipc{ipc}_{its}it_b64.safetensors"
        if not path.exists():
            cfg = fyi.DistillConfig("dm", ds.info.name, ipc, fyi=fyi_view, iterations=its, batch_real=64,
                                    arch="space:nb201;cells=1", seed=args.seed, checkpoint_every=25,
                                    precision="fp32")  # as the ablation's sets (and the checkpoints on disk)
            fyi.Distiller(cfg, ds, device=args.device).run(path, resume=True, progress=not args.no_progress)
        paths.append(str(path))
    return paths


def quick_sets(args, ds, out: Path) -> list[str]:
    """Tiny DM and DM+FYI sets on digits, so that --quick exercises synthetic proxies and the matrix."""
    import torch

    from fyi_apps.distill import distill
    from fyi_apps.tasks.nas import default_threads

    torch.set_num_threads(args.threads or default_threads(args.workers))  # a shared machine: no oversubscription
    paths = []
    for fyi in (None, "flip"):
        path = out / f"dm{'_fyi' if fyi else ''}_{ds.info.name}_ipc{args.ipc}.fyi.safetensors"
        if not path.exists():
            distill("dm", ds, args.ipc, fyi=fyi, output=path, iterations=args.dm_iterations, seed=args.seed,
                    device=args.device, progress=not args.no_progress)
        paths.append(str(path))
    return paths


def estimate(args, cfg, ds) -> dict:
    """Seconds per training image (with DSA) and per test image of every candidate, and the expected total."""
    import torch

    from fyi_apps.evaluate import EvalConfig, train_network
    from fyi_apps.training import test_accuracy
    from fyi_apps.networks import create_model
    from fyi_apps.report import table
    from fyi_apps.runtime import make_generator, resolve_device
    from fyi_apps.tasks import nas

    device = resolve_device(args.device)
    torch.set_num_threads(args.threads or nas.default_threads(args.workers))  # what each worker will have
    cands, proxies, truth = nas.plan(cfg, ds)
    info = ds.info
    n = min(256, len(ds.train))
    x, y = ds.train.images[:n], ds.train.labels[:n]
    n_test = cfg.test_size or len(ds.test)
    proxy_imgs = sum(p.num_images * (p.epochs or cfg.proxy_epochs) for p in proxies if p.trains)
    truth_imgs = truth.num_images * cfg.full_epochs if truth.trains else 0
    ecfg = EvalConfig(epochs=1, dsa=cfg.dsa, bf16=cfg.bf16, batch_size=cfg.batch_size)
    rows, total, per = [], 0.0, {}
    for c in cands:
        net = create_model(c, channels=info.channels, num_classes=info.num_classes, image_size=info.image_size, seed=0)
        train_network(net, x[:32], y[:32], ecfg, lr=0.01, generator=make_generator(0), device=device,
                      mean=info.mean, std=info.std)  # warm-up
        t0 = time.perf_counter()
        train_network(net, x, y, ecfg, lr=0.01, generator=make_generator(0), device=device, mean=info.mean, std=info.std)
        s_train = (time.perf_counter() - t0) / n
        t0 = time.perf_counter()
        test_accuracy(net, ds.test.images[:n], ds.test.labels[:n], device=device, mean=info.mean, std=info.std)
        s_test = (time.perf_counter() - t0) / n
        runs = sum(p.trains for p in proxies) + truth.trains
        sec = args.seeds * (s_train * (proxy_imgs + truth_imgs) + s_test * n_test * runs)
        per[c] = {"train_ms_per_image": 1e3 * s_train, "test_ms_per_image": 1e3 * s_test, "seconds": sec}
        total += sec
        rows.append([c, f"{1e3 * s_train:.2f}", f"{1e3 * s_test:.2f}", f"{sec / 60:.1f}"])
        print(f"  {c}: {1e3 * s_train:.2f} ms/train image, {sec / 60:.1f} min", flush=True)
    print(table(rows, ["candidate", "train ms/img", "test ms/img", "minutes"]))
    xa = 0.0
    if args.xarch:
        for a in nas.split_names(args.xarch_archs):
            if a not in per:
                net = create_model(a, channels=info.channels, num_classes=info.num_classes, image_size=info.image_size)
                t0 = time.perf_counter()
                train_network(net, x, y, ecfg, lr=0.01, generator=make_generator(0), device=device, mean=info.mean,
                              std=info.std)
                s_train = (time.perf_counter() - t0) / n
            else:
                s_train = per[a]["train_ms_per_image"] / 1e3
            xa += len(args.xarch) * args.xarch_seeds * s_train * args.ipc * info.num_classes * args.xarch_epochs
    workers = max(1, args.workers)
    print(f"estimated compute: ranking {total / 3600:.2f} h, cross-architecture matrix {xa / 3600:.2f} h "
          f"(one worker with {torch.get_num_threads()} thread(s), at the current load); "
          f"wall time with {workers} workers: about {(total + xa) / workers / 3600:.2f} h")
    return {"candidates": per, "ranking_seconds": total, "xarch_seconds": xa,
            "wall_hours": (total + xa) / workers / 3600, "threads": torch.get_num_threads(), "workers": workers}


def published_comparison(report, out: Path, command: str) -> Path:
    """Our Spearman rho beside the published one for each zero-cost proxy (``zerocost-vs-published.md``)."""
    from fyi_apps.report import table
    from fyi_apps.runtime import atomic_path

    rows = []
    for label, st in report.stats.items():
        pub = PUBLISHED_RHO.get(label)
        ci = st.spearman_ci
        gap = None if pub is None or st.spearman is None else abs(st.spearman) - pub
        conn = next((p.get("stats_connected") for p in report["proxies"] if p["label"] == label), None)
        rows.append([label, f"{st.spearman:.3f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else ""),
                     f"{conn['spearman']:.3f}" if conn and conn.get("spearman") is not None else "-",
                     f"{st.kendall:.3f}", "-" if pub is None else f"{pub:.3f}", "-" if gap is None else f"{gap:+.3f}",
                     f"{st.seconds:.2f}" if st.seconds is not None else "-"])
    md = (f"Zero-cost proxies on {len(report.candidates)} NAS-Bench-201 cells (CIFAR-10, N = 5, C = 16), against the "
          "benchmark's 200-epoch CIFAR-10 test accuracies; published: Abdelfattah et al. (ICLR 2021), |rho| against "
          "cifar10-valid over all 15,625 cells (parameter count: NASWOT's DataFrame, CIFAR-10 test).\n\n"
          + table(rows, ["proxy", "rho [95% CI]", "rho (connected cells)", "tau", "published |rho|",
                         "|rho| - published", "s / cell"], markdown=True) + f"\n\nCommand: `{command}`\n")
    path = out / "zerocost-vs-published.md"
    with atomic_path(path) as tmp:
        tmp.write_text(md)
    print(md)
    return path


@H.reports_errors("nas benchmark")
def main(argv=None) -> int:
    return run(parse_args(argv))


def run(args) -> int:
    from fyi_apps.data import load_dataset
    from fyi_apps.evaluate import EvalConfig
    from fyi_apps.report import table
    from fyi_apps.runtime import package_versions, write_json
    from fyi_apps.tasks import nas, xarch

    t0 = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ds = load_dataset(args.dataset, root=args.data_root)
    proxies = list(args.proxy or ["random"])
    xsets = list(args.xarch or [])
    if args.quick and not args.proxy and args.preset == "dc":
        dm_paths = quick_sets(args, ds, out)
        proxies += dm_paths
        xsets = xsets or dm_paths
    if args.space_sets:
        proxies += space_sets(args, ds)
    args.xarch = xsets
    cfg = nas.NasConfig(
        dataset=args.dataset, proxies=proxies, ipc=args.ipc, space=args.space, sample=args.sample or None,
        include=nas.split_names(args.include), max_mmacs=args.max_mmacs, proxy_epochs=args.proxy_epochs,
        truth=args.truth,
        full_epochs=args.full_epochs, seeds=args.seeds, seed=args.seed, topk=nas.topk_list(args.topk),
        test_size=args.test_size, dsa=not args.no_dsa, bf16=args.bf16, workers=args.workers, threads=args.threads,
        curve=nas.curve_list(args.curve), channels_last=bool(args.channels_last), ensembles=list(args.ensemble or []),
        batch_size=args.batch_size, data_root=args.data_root, nb201=args.nb201, nb201_cells=args.nb201_cells, nb201_width=args.nb201_width,
        connected_only=args.connected_only, stratified=args.stratified,
    )
    command = H.command_line("nas", args.argv)
    if args.estimate:
        est = estimate(args, cfg, ds)
        write_json(out / "estimate.json", {**est, "command": command, "config": vars(args), "versions": package_versions()})
        return 0

    progress = not args.no_progress
    report = nas.run_ranking(cfg, cache_dir=out / "cache", dataset=ds, device=args.device, progress=progress)
    paths = nas.write_report(report, out, name="nas", command=command)
    if args.preset == "zerocost":
        paths["published"] = published_comparison(report, out, command)
    crow, chead = nas.candidate_rows(report)
    srow, shead = nas.summary_rows(report)
    print(table(crow, chead))
    print()
    print(table(srow, shead))

    xrep = None
    if xsets:
        ecfg = EvalConfig(epochs=args.xarch_epochs, dsa=not args.no_dsa, bf16=args.bf16)
        xrep = xarch.run_xarch(xsets, archs=nas.split_names(args.xarch_archs), cfg=ecfg,
                               seeds=list(range(args.seed, args.seed + args.xarch_seeds)), cache_dir=out / "cache",
                               workers=args.workers, threads=args.threads, test_size=args.test_size,
                               data_root=args.data_root, device=args.device, progress=progress, loaded=ds)
        xarch.write_xarch(xrep, out, name="xarch", command=command)
        rows, headers = xarch.matrix_rows(xrep)
        print()
        print(table(rows, headers))

    summary = {
        "command": command, "seed": args.seed, "versions": package_versions(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "wall_seconds": time.perf_counter() - t0,
        "budget": {k: getattr(args, k) for k in ("preset", "space", "batch_size", "nb201_cells", "nb201_width", "connected_only",
                                                 "stratified", "dataset", "ipc", "sample", "include", "max_mmacs",
                                                 "proxy_epochs", "truth",
                                                 "full_epochs", "seeds", "test_size", "xarch_epochs", "xarch_seeds",
                                                 "xarch_archs", "workers", "bf16", "no_dsa")},
        "ranking": [{"proxy": p["label"], "spearman": p["stats"]["spearman"], "kendall": p["stats"]["kendall"],
                     "connected": {m: p["stats_connected"][m] for m in ("n", "spearman", "kendall")}
                     if "stats_connected" in p else None, "proxy_seconds": p["cost"]["proxy_seconds"],
                     "top": {k: {m: v[m] for m in ("spearman", "kendall", "overlap")} for k, v in p["stats"]["top"].items()},
                     "best": p["stats"]["best"], "compute_saved": p["cost"]["saved"]} for p in report["proxies"]],
        "xarch": None if xrep is None else [{"set": r["label"], **{a: r["cells"][a].get("mean") for a in xrep["archs"]}}
                                            for r in xrep["rows"]],
        "files": {"nas": str(paths["json"]), "plot": str(paths["png"]), "table": str(paths["md"]),
                  "xarch": str(out / "xarch.json") if xrep else None},
    }
    H.write_result(out / "benchmark.json", summary)
    print(f"\nwall time {summary['wall_seconds'] / 60:.1f} min; results in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
