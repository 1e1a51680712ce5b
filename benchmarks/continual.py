"""Benchmark: synthetic sets as replay memories for class-incremental learning (fyi-apps issue 5).

Split CIFAR-10 (the JPEG copy when the pickles are absent), 5 experiences of 2
classes, 10 images per class in memory.  Buffers: random (class-balanced),
herding (Avalanche's HerdingSelectionStrategy), and online DM, DM+FYI, DSA,
DSA+FYI (each experience's new classes distilled from that experience's data
alone).  Protocols: ``gdumb`` (the DM paper's: a fresh ConvNet trained on the
memory only at every step, tested on all seen classes) and ``replay`` (Avalanche
``Naive`` + ``ReplayPlugin``).  Every run is repeated over class orders (seeds)
and reported as mean +- std of the final average accuracy and forgetting, with
a plot of accuracy against the number of classes.

Full run (budget for this 2-core CPU machine; see ``--estimate``)::

    python benchmarks/continual.py --threads 1

Budget (all options): gdumb training 100 epochs per step (batch 256, DSA);
online DM 300 iterations per experience with 64 real images per class; DSA 10
outer iterations with (outer, inner) loops (5, 10) and 64 real images per
class; herding features from a ConvNet trained 1 epoch on the experience.
``--estimate`` measured 3.7 h for it on this machine while other jobs were
running (``--threads 1``; two intra-op threads were 2x slower under that load).

Each (buffer, class order) run and each distillation is cached under
``OUT/runs`` and ``OUT/distill-cache``: rerun the same command to continue an
interrupted benchmark.  ``--quick`` runs the whole pipeline on digits in about
two minutes.  ``--estimate`` times the unit costs (one distillation iteration,
one memory-training epoch, ...) on this machine and prints the expected wall
time of the chosen budget without running it.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fyi_apps.errors import FyiError  # noqa: E402

ALL_BUFFERS = "random,herding,dm,dm+fyi,dsa,dsa+fyi"

FULL = dict(benchmark="split-cifar10", ipc=10, seeds=3, buffers=ALL_BUFFERS, protocols="gdumb", arch="convnet",
            epochs=100, dm_iterations=300, dsa_iterations=10, dm_batch_real=64, dsa_batch_real=64,
            dsa_loops="5,10", herding_epochs=1, train_epochs=3, batch_size=128)
QUICK = dict(benchmark="split-digits", ipc=3, seeds=2, buffers=ALL_BUFFERS, protocols="gdumb,replay",
             arch="ConvNetW32", epochs=80, dm_iterations=15, dsa_iterations=2, dm_batch_real=32, dsa_batch_real=16,
             dsa_loops="1,2", herding_epochs=1, train_epochs=30, batch_size=32)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="digits, tiny budgets, both protocols (~2 min)")
    p.add_argument("--estimate", action="store_true", help="time the unit costs and print the expected wall time")
    p.add_argument("--benchmark", help=f"default {FULL['benchmark']}")
    p.add_argument("--buffers", help=f"comma-separated (default {ALL_BUFFERS})")
    p.add_argument("--protocols", help="gdumb, replay or gdumb,replay (default gdumb)")
    p.add_argument("--ipc", type=int)
    p.add_argument("--seeds", type=int, help="class orders (seed, seed+1, ...)")
    p.add_argument("--seed", type=int, default=0, help="first class-order seed")
    p.add_argument("--arch")
    p.add_argument("--epochs", type=int, help="gdumb: training epochs on the memory at every step")
    p.add_argument("--dm-iterations", type=int, help="online DM / DM+FYI iterations per experience")
    p.add_argument("--dsa-iterations", type=int, help="online DSA / DSA+FYI (and DC) outer iterations per experience")
    p.add_argument("--dm-batch-real", type=int, help="DM real images per class per iteration")
    p.add_argument("--dsa-batch-real", type=int, help="DSA/DC real images per class per matching step")
    p.add_argument("--dsa-loops", help="DSA/DC outer_loop,inner_loop (the reference uses 10,50 at IPC 10)")
    p.add_argument("--herding-epochs", type=int, help="gdumb: epochs of herding's per-experience feature network")
    p.add_argument("--strategy", default="naive", choices=["naive", "ewc", "lwf"], help="replay protocol strategy")
    p.add_argument("--train-epochs", type=int, help="replay: epochs per experience")
    p.add_argument("--batch-size", type=int, help="replay: minibatch size (memory batch the same)")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast for memory training and distillation")
    p.add_argument("--threads", type=int, help="torch intra-op threads")
    p.add_argument("--device", default="auto")
    p.add_argument("--data-root")
    p.add_argument("--out", help="output folder (default benchmarks/results/continual-<benchmark>[-quick])")
    p.add_argument("--fresh", action="store_true", help="ignore cached runs and distillations")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    preset = QUICK if args.quick else FULL
    for k, v in preset.items():
        if getattr(args, k, None) is None:
            setattr(args, k, v)
    args.buffer_list = [b.strip() for b in args.buffers.split(",") if b.strip()]
    args.protocol_list = [x.strip() for x in args.protocols.split(",") if x.strip()]
    bad = [x for x in args.protocol_list if x not in ("gdumb", "replay")]
    if bad or not args.protocol_list:
        raise FyiError(f"--protocols takes gdumb, replay or gdumb,replay; got {args.protocols!r}")
    try:
        outer, inner = (int(v) for v in args.dsa_loops.split(","))
    except ValueError:
        raise FyiError(f"--dsa-loops takes OUTER,INNER (e.g. 5,10); got {args.dsa_loops!r}") from None
    args.loops = (outer, inner)
    if args.seeds < 1:
        raise FyiError(f"--seeds must be at least 1, got {args.seeds}")
    if args.out is None:
        args.out = str(ROOT / "benchmarks" / "results" / f"continual-{args.benchmark}{'-quick' if args.quick else ''}")
    return args


def make_config(args, protocol: str):
    from fyi_apps.tasks.continual import CLConfig

    return CLConfig(
        benchmark=args.benchmark, buffers=list(args.buffer_list), ipc=args.ipc, protocol=protocol,
        seeds=list(range(args.seed, args.seed + args.seeds)), arch=args.arch,
        iterations={"dm": args.dm_iterations, "dsa": args.dsa_iterations, "dc": args.dsa_iterations},
        batch_real={"dm": args.dm_batch_real, "dsa": args.dsa_batch_real, "dc": args.dsa_batch_real},
        distill_options={"outer_loop": args.loops[0], "inner_loop": args.loops[1]},
        herding_epochs=args.herding_epochs, epochs=args.epochs, strategy=args.strategy,
        train_epochs=args.train_epochs, batch_size=args.batch_size, bf16=args.bf16,
        distill_cache=None if args.fresh else str(Path(args.out) / "distill-cache"),
    )


# --------------------------------------------------------------------------- estimate
def estimate(args) -> dict:
    """Time the unit costs on this machine and extrapolate the whole benchmark."""
    import torch

    from fyi_apps.data import load_dataset
    from fyi_apps.distill import DistillConfig, Distiller
    from fyi_apps.evaluate import EvalConfig, test_accuracy, train_network
    from fyi_apps.networks import create_model
    from fyi_apps.runtime import make_generator, resolve_device
    from fyi_apps.tasks.continual import dataset_from_tensors, resolve_benchmark

    key, ds_name, n_exp = resolve_benchmark(args.benchmark)
    device = resolve_device(args.device)
    ds = load_dataset(ds_name, root=args.data_root)
    info = ds.info
    k = info.num_classes // n_exp
    classes = list(range(k))
    x = ds.normalize(ds.train.images[torch.isin(ds.train.labels, torch.tensor(classes))])
    y = ds.train.labels[torch.isin(ds.train.labels, torch.tensor(classes))]
    sub = dataset_from_tensors(x, y, info, classes)
    unit = {}

    def distill_time(method, fyi, its, batch_real, options):
        cfg = DistillConfig(method=method, dataset=info.name, ipc=args.ipc, fyi=fyi, iterations=its,
                            batch_real=batch_real, arch=args.arch, bf16=args.bf16, options=options,
                            checkpoint_every=10**9)
        syn = Distiller(cfg, sub, device=device).run(None, progress=False)
        return syn.extra["seconds"] / its

    opts = {"outer_loop": args.loops[0], "inner_loop": args.loops[1]}
    for b in args.buffer_list:
        method, _, view = b.partition("+")
        if method in ("dm", "dsa", "dc"):
            its = 3 if method == "dm" else 1
            br = args.dm_batch_real if method == "dm" else args.dsa_batch_real
            unit[b] = distill_time(method, "flip" if view else None, its, br, opts if method != "dm" else {})
            print(f"  {b}: {unit[b]:.2f} s per distillation iteration ({k} classes)")
    # memory training: one epoch on the final memory (ipc * all classes images) with DSA
    n_mem = args.ipc * info.num_classes
    net = create_model(args.arch, channels=info.channels, num_classes=info.num_classes, image_size=info.image_size,
                       seed=0)
    xm = ds.normalize(ds.train.images[:n_mem])
    ym = ds.train.labels[:n_mem]
    reps = 3
    t0 = time.perf_counter()
    train_network(net, xm, ym, EvalConfig(epochs=reps, bf16=args.bf16), lr=0.01, generator=make_generator(0),
                  device=device)
    per_image_epoch = (time.perf_counter() - t0) / (reps * n_mem)
    print(f"  memory training: {1e3 * per_image_epoch:.2f} ms per image-epoch (DSA)")
    # one plain epoch over part of an experience (herding features, replay training)
    n_part = min(2000, x.shape[0])
    t0 = time.perf_counter()
    y_part = torch.tensor([classes.index(int(v)) for v in y[:n_part]])
    train_network(create_model(args.arch, channels=info.channels, num_classes=k, image_size=info.image_size, seed=0),
                  x[:n_part], y_part, EvalConfig(epochs=1, dsa=False, batch_size=128, bf16=args.bf16), lr=0.01,
                  generator=make_generator(0), device=device)
    per_image_plain = (time.perf_counter() - t0) / n_part
    print(f"  plain training: {1e3 * per_image_plain:.2f} ms per image")
    t0 = time.perf_counter()
    test_accuracy(net, x[:n_part], y[:n_part], device=device, bf16=args.bf16)
    per_test_image = (time.perf_counter() - t0) / n_part
    print(f"  testing: {1e3 * per_test_image:.2f} ms per image")
    n_test_exp = int(torch.isin(ds.test.labels, torch.tensor(classes)).sum())
    tests_per_run = sum((i + 1) * n_test_exp for i in range(n_exp)) * per_test_image  # seen experiences per step
    n_exp_train = x.shape[0]
    images_seen = sum(args.ipc * k * (i + 1) for i in range(n_exp))  # memory sizes over the steps
    gdumb_train = args.epochs * images_seen * per_image_epoch
    per_run = {}
    for b in args.buffer_list:
        method, _, _ = b.partition("+")
        t = 0.0
        if b in unit:
            its = args.dm_iterations if method == "dm" else args.dsa_iterations
            t += n_exp * its * unit[b]
        if "gdumb" in args.protocol_list:
            t += gdumb_train + tests_per_run
            t += n_exp * args.herding_epochs * n_exp_train * per_image_plain if b == "herding" else 0
        if "replay" in args.protocol_list:
            steps_mem = sum(min(args.ipc * k * i, args.batch_size) for i in range(n_exp))  # memory rows per batch
            t += args.train_epochs * (n_exp * n_exp_train + steps_mem * n_exp_train / args.batch_size) * per_image_plain
            t += tests_per_run
        per_run[b] = t
    total = args.seeds * sum(per_run.values())
    return {"per_run_seconds": per_run, "total_seconds": total, "unit": unit,
            "memory_ms_per_image_epoch": 1e3 * per_image_epoch, "plain_ms_per_image": 1e3 * per_image_plain}


# --------------------------------------------------------------------------- main
def main(argv=None) -> int:
    try:
        args = parse_args(argv)
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        if args.estimate:
            print(f"estimating {args.benchmark}, buffers {','.join(args.buffer_list)}, protocols "
                  f"{','.join(args.protocol_list)}, {args.seeds} class orders ...")
            est = estimate(args)
            for b, t in est["per_run_seconds"].items():
                print(f"  {b:10s} {t / 60:7.1f} min per class order")
            print(f"expected wall time: {est['total_seconds'] / 3600:.2f} h "
                  "(one process; distillations are shared between protocols when both run)")
            return 0
        run(args)
    except FyiError as e:
        print(f"continual.py: error: {e}", file=sys.stderr)
        return 2
    return 0


def run(args) -> None:
    from fyi_apps.report import table
    from fyi_apps.runtime import write_json
    from fyi_apps.tasks.continual import results_table, run_experiment

    out = Path(args.out)
    command = " ".join(["python benchmarks/continual.py", *args.argv])
    t0 = time.perf_counter()
    md = [f"Command: `{command}`", ""]
    summary = {"command": command, "protocols": {}}
    for protocol in args.protocol_list:
        cfg = make_config(args, protocol)
        stem = out / f"{args.benchmark}_{protocol}_ipc{args.ipc}"
        payload = run_experiment(cfg, out=stem, root=args.data_root, device=args.device,
                                 progress=not args.no_progress, command=command,
                                 resume_dir=None if args.fresh else out / "runs")
        print(f"\n{args.benchmark} ({payload['source']}), {payload['n_experiences']} experiences, "
              f"{protocol} protocol, IPC {args.ipc}, {len(cfg.seeds)} class orders")
        print(results_table(payload["aggregate"]))
        md += [f"**{protocol}** protocol ({payload['n_experiences']} experiences, IPC {args.ipc}, "
               f"mean +- std over {len(cfg.seeds)} class orders; plot `{Path(payload['files']['png']).name}`):", "",
               results_table(payload["aggregate"], markdown=True), ""]
        curves = [[k] + [f"{100 * m:.1f}" if m is not None else "-" for m in a["curve_mean"]]
                  for k, a in payload["aggregate"].items()]
        first = next(iter(payload["aggregate"].values()))
        md += ["Accuracy (%) on all seen classes after each experience:", "",
               table(curves, ["buffer"] + [f"{c} classes" for c in first["classes_seen"]], markdown=True), ""]
        summary["protocols"][protocol] = {"files": payload["files"], "aggregate": payload["aggregate"],
                                          "config": payload["config"], "versions": payload["versions"]}
    minutes = (time.perf_counter() - t0) / 60
    md.append(f"Wall time of this invocation: {minutes:.1f} min (cached runs are not re-timed).")
    write_json(out / "summary.json", summary)
    from fyi_apps.runtime import atomic_path

    with atomic_path(out / "results.md") as tmp:
        tmp.write_text("\n".join(md) + "\n")
    print(f"\nmarkdown tables: {out / 'results.md'}; summary: {out / 'summary.json'} ({minutes:.1f} min)")


if __name__ == "__main__":
    sys.exit(main())
