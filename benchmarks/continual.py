"""Continual-learning benchmark: replay memories x CL protocols x class orders, one table and one plot.

Memories (10 images per class by default):

* ``random``, ``herding``: real images;
* ``dm``, ``dm+fyi``: distilled online, per experience, from that experience's
  data (300 DM iterations, 64 real images per class: the CPU budget);
* ``dm-2000it``, ``dm+fyi-2000it``: distilled offline, per class, from each
  class's whole training set: the IPC-10 CIFAR-10 sets of the ablation
  benchmark (2,000 iterations, ``benchmarks/results/ablation/*.safetensors``).
  Each class's DM images depend only on that class's data, and in
  class-incremental learning each class's data is seen in one experience only,
  so the set gives every class its memory, for every class order.

Protocols: ``gdumb`` (a fresh ConvNet trained on the memory only at every
step, the DM paper's), ``naive`` (Avalanche ``Naive`` + ``ReplayPlugin`` with
our storage policy) and ``er-ace`` (Avalanche ``ER_ACE`` with the memory as its
storage policy); any registered strategy name works.  The stream strategies
make one pass over each experience (online continual learning), minibatches of
32 stream images plus 32 replayed ones.

The CPU budget: a reduced Split CIFAR-10 with 1,000 training images per class
(``--train-per-class``, one fixed random subset for every memory and class
order; ``--train-per-class 0`` for all 5,000), so that one pass at batch 32
makes about as many SGD steps per experience (63) as one pass over the full
data at batch 128 (78).  Online memories come from this subset; the offline
2,000-iteration sets were distilled from each class's full training data.  Every run is repeated
over class orders; results are final average accuracy and forgetting
(Avalanche's metric names), mean +- std over the orders.

Full run (do not start it while other benchmarks use the CPU)::

    python -m benchmarks.continual --threads 1

``--quick`` runs the whole pipeline on digits (online and offline memories,
the three protocols, two orders) in a few minutes.  Each (memory, protocol,
class order) run and each distillation is cached under ``OUT/runs`` and
``OUT/distill-cache``: rerunning the same command only recomputes what is
missing.  ``--estimate`` times the unit costs on this machine and prints the
expected wall time.  Outputs in ``OUT``: per protocol ``<benchmark>_<protocol>_ipc<N>.{json,csv,png}``;
across protocols ``results.md`` (one table memories x protocols),
``summary.json`` and ``strategies.png``.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from benchmarks import harness as H
from fyi_apps.augment import MODES
from fyi_apps.errors import FyiError

ABLATION = H.RESULTS / "ablation"
OFFLINE = (f"dm-2000it:{ABLATION / 'dm_ipc10_2000it_b64_dsingle.safetensors'},"
           f"dm+fyi-2000it:{ABLATION / 'dm-fyi_ipc10_2000it_b64_dsingle.safetensors'}")

FULL = dict(benchmark="split-cifar10", ipc=10, seeds=3, memories="random,herding,dm,dm+fyi," + OFFLINE,
            protocols="gdumb,naive,er-ace", arch="convnet", epochs=100, dm_iterations=300, dsa_iterations=10,
            dm_batch_real=64, dsa_batch_real=64, dsa_loops="5,10", herding_epochs=1, train_epochs=1,
            batch_size=32, train_per_class=1000)
QUICK = dict(benchmark="split-digits", ipc=3, seeds=2, memories="random,herding,dm,dm+fyi,dm-offline:QUICKSET",
             protocols="gdumb,naive,er-ace", arch="ConvNetW32", epochs=80, dm_iterations=15, dsa_iterations=2,
             dm_batch_real=32, dsa_batch_real=16, dsa_loops="1,2", herding_epochs=1, train_epochs=30, batch_size=32,
             train_per_class=0)
QUICK_SET_ITERATIONS = 20


def parse_args(argv=None):
    from fyi_apps.tasks.continual import STREAM_AUG_NAMES

    p = H.parser(__doc__, first_paragraph=True)
    H.add_common_arguments(p, quick={"help": "digits, tiny budgets, all protocols (a few minutes)"})
    p.add_argument("--estimate", action="store_true", help="time the unit costs and print the expected wall time")
    p.add_argument("--benchmark", help=f"default {FULL['benchmark']}")
    p.add_argument("--memories", "--buffers", dest="memories",
                   help="comma-separated memory specs (random, herding, dm, dm+fyi, dsa, LABEL:PATH, ...); "
                        "default random,herding,dm,dm+fyi and the two 2,000-iteration ablation sets")
    p.add_argument("--protocols", help="gdumb, replay, dm-paper or strategy names (naive, er-ace, ewc, lwf); "
                                       "default gdumb,naive,er-ace")
    p.add_argument("--ipc", type=int)
    H.add_common_arguments(p, seeds={"help": "class orders (seed, seed+1, ...)"}, seed={"help": "first class-order seed"})
    p.add_argument("--arch")
    p.add_argument("--epochs", type=int, help="gdumb: training epochs on the memory at every step")
    p.add_argument("--dm-iterations", type=int, help="online DM / DM+FYI iterations per experience")
    p.add_argument("--dsa-iterations", type=int, help="online DSA / DSA+FYI (and DC) outer iterations per experience")
    p.add_argument("--dm-batch-real", type=int, help="DM real images per class per iteration")
    p.add_argument("--dsa-batch-real", type=int, help="DSA/DC real images per class per matching step")
    p.add_argument("--dsa-loops", help="DSA/DC outer_loop,inner_loop (the reference uses 10,50 at IPC 10)")
    p.add_argument("--herding-epochs", type=int, help="gdumb: epochs of herding's per-experience feature network")
    p.add_argument("--strategy", default="naive", help="the strategy of the 'replay' protocol name")
    p.add_argument("--train-epochs", type=int, help="stream strategies: epochs per experience")
    p.add_argument("--batch-size", type=int, help="stream strategies: minibatch size")
    p.add_argument("--train-per-class", type=int,
                   help="a reduced benchmark: training images per class (a fixed random subset; 0: all)")
    p.add_argument("--dsa-mode", default="single", choices=MODES,
                   help="gdumb: DSA while training on the memory (fyi: the FYI code's flip + one operation)")
    p.add_argument("--stream-aug", default="none", choices=STREAM_AUG_NAMES,
                   help="stream strategies: augmentation of every training minibatch (flip: a random horizontal "
                        "flip per image)")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast for memory training and distillation")
    H.add_common_arguments(p, "threads", "device", "data_root",
                           out={"help": "output folder (default benchmarks/results/continual-<benchmark>[-quick])"})
    p.add_argument("--distill-cache", help="folder of cached online distillations (default OUT/distill-cache; "
                                           "point another --out at the main benchmark's to reuse its memories)")
    p.add_argument("--fresh", action="store_true", help="ignore cached runs and distillations")
    H.add_common_arguments(p, "no_progress")
    args = H.apply_preset(p.parse_args(argv), FULL, QUICK)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.out is None:
        args.out = H.quick_path(H.RESULTS / f"continual-{args.benchmark}", args.quick)
    args.memory_list = H.names(args.memories)
    args.protocol_list = [x.lower() for x in H.names(args.protocols)]
    if not args.protocol_list or not args.memory_list:
        raise FyiError("--protocols and --memories need at least one name each")
    args.loops = H.int_pair(args.dsa_loops, "--dsa-loops")
    if args.seeds < 1:
        raise FyiError(f"--seeds must be at least 1, got {args.seeds}")
    return args


def protocol_of(name: str, default_strategy: str = "naive") -> tuple[str, str]:
    """A benchmark protocol name -> (CLConfig.protocol, CLConfig.strategy): strategy names mean stream replay."""
    from fyi_apps.tasks.continual import PROTOCOLS, STRATEGIES

    if name in STRATEGIES:
        return "replay", STRATEGIES.canonical(name)
    if name in PROTOCOLS:
        return PROTOCOLS.canonical(name), default_strategy
    raise FyiError(f"unknown protocol {name!r}; use one of {', '.join(PROTOCOLS.names() + STRATEGIES.names())}")


def make_config(args, name: str):
    from fyi_apps.tasks.continual import CLConfig

    protocol, strategy = protocol_of(name, args.strategy)
    return CLConfig(
        benchmark=args.benchmark, memories=list(args.memory_list), ipc=args.ipc, protocol=protocol,
        seeds=list(range(args.seed, args.seed + args.seeds)), arch=args.arch,
        iterations={"dm": args.dm_iterations, "dsa": args.dsa_iterations, "dc": args.dsa_iterations},
        batch_real={"dm": args.dm_batch_real, "dsa": args.dsa_batch_real, "dc": args.dsa_batch_real},
        distill_options={"outer_loop": args.loops[0], "inner_loop": args.loops[1]},
        herding_epochs=args.herding_epochs, epochs=args.epochs, strategy=strategy,
        train_epochs=args.train_epochs, batch_size=args.batch_size, bf16=args.bf16,
        train_per_class=args.train_per_class or None,
        dsa_mode="single" if protocol == "replay" else args.dsa_mode,  # each protocol gets its own augmentation
        stream_aug=args.stream_aug if protocol == "replay" else "none",
        distill_cache=None if args.fresh else str(args.distill_cache or Path(args.out) / "distill-cache"),
    )


def check_memory_files(args) -> None:
    """Offline memories: the files must exist before anything runs (``--quick`` makes its own)."""
    from fyi_apps.tasks.continual import parse_memory_spec

    if args.quick:
        args.memory_list = [m.replace("QUICKSET", str(quick_set(args))) for m in args.memory_list]
    for m in args.memory_list:
        spec = parse_memory_spec(m)
        if spec.is_file and not Path(spec.path).is_file():
            raise FyiError(f"memory {spec.label}: synthetic-set file {spec.path} does not exist; make it first "
                           "(python -m benchmarks.ablation ...) or leave it out of --memories")


def quick_set(args) -> Path:
    """A DM set of the whole digits training set (IPC ``args.ipc``), distilled once: the offline memory of --quick."""
    import fyi_apps as fyi

    path = Path(args.out) / "sets" / f"dm_digits_ipc{args.ipc}_{QUICK_SET_ITERATIONS}it.safetensors"
    if not path.exists() or args.fresh:
        fyi.distill(method="dm", dataset="digits", ipc=args.ipc, iterations=QUICK_SET_ITERATIONS, batch_real=32,
                    arch=args.arch, seed=args.seed, output=path, device=args.device, progress=False)
    return path


# --------------------------------------------------------------------------- estimate
def estimate(args) -> dict:
    """Time the unit costs on this machine (one distillation iteration, one training epoch) and extrapolate."""
    import torch

    from fyi_apps.data import load_dataset
    from fyi_apps.distill import DistillConfig, Distiller
    from fyi_apps.evaluate import EvalConfig, train_network
    from fyi_apps.networks import create_model
    from fyi_apps.runtime import make_generator, resolve_device
    from fyi_apps.tasks.continual import dataset_from_tensors, parse_memory_spec, resolve_benchmark

    key, ds_name, n_exp = resolve_benchmark(args.benchmark)
    device = resolve_device(args.device)
    ds = load_dataset(ds_name, root=args.data_root)
    if args.train_per_class:
        ds = ds.reduced(args.train_per_class)
    info = ds.info
    k = info.num_classes // n_exp
    mask = ds.train.labels < k
    x, y = ds.normalize(ds.train.images[mask]), ds.train.labels[mask]
    sub = dataset_from_tensors(x, y, info, list(range(k)))
    distill_s = {}
    for m in args.memory_list:
        spec = parse_memory_spec(m)
        if spec.kind in ("dm", "dsa", "dc"):
            its = 3 if spec.kind == "dm" else 1
            opts = {} if spec.kind == "dm" else {"outer_loop": args.loops[0], "inner_loop": args.loops[1]}
            cfg = DistillConfig(method=spec.kind, dataset=info.name, ipc=args.ipc, fyi="flip" if spec.variant else None,
                                iterations=its, batch_real=args.dm_batch_real if spec.kind == "dm" else args.dsa_batch_real,
                                arch=args.arch, bf16=args.bf16, options=opts, checkpoint_every=10**9)
            syn = Distiller(cfg, sub, device=device).run(None, progress=False)
            full_its = args.dm_iterations if spec.kind == "dm" else args.dsa_iterations
            distill_s[spec.label] = n_exp * full_its * syn.extra["seconds"] / its
    net = create_model(args.arch, channels=info.channels, num_classes=info.num_classes, image_size=info.image_size,
                       seed=0)
    n_mem = args.ipc * info.num_classes
    t0 = time.perf_counter()
    train_network(net, ds.normalize(ds.train.images[:n_mem]), ds.train.labels[:n_mem], EvalConfig(epochs=2),
                  lr=0.01, generator=make_generator(0), device=device)
    dsa_image_epoch = (time.perf_counter() - t0) / (2 * n_mem)
    n_part = min(2000, x.shape[0])
    t0 = time.perf_counter()
    train_network(create_model(args.arch, channels=info.channels, num_classes=k, image_size=info.image_size, seed=0),
                  x[:n_part], y[:n_part], EvalConfig(epochs=1, dsa=False, batch_size=128), lr=0.01,
                  generator=make_generator(0), device=device)
    plain_image = (time.perf_counter() - t0) / n_part
    memory_images = sum(args.ipc * k * (i + 1) for i in range(n_exp))
    per_protocol = {}
    for name in args.protocol_list:
        protocol, _ = protocol_of(name, args.strategy)
        if protocol in ("gdumb", "dm-paper"):
            t = args.epochs * memory_images * dsa_image_epoch
        else:  # every experience's images plus as many memory images, train_epochs times
            t = args.train_epochs * n_exp * 2 * x.shape[0] * plain_image
        per_protocol[name] = t * len(args.memory_list) * args.seeds
    total = sum(per_protocol.values()) + args.seeds * sum(distill_s.values())  # distillations shared by protocols
    return {"per_protocol_seconds": per_protocol, "distill_seconds_per_order": distill_s, "total_seconds": total}


# --------------------------------------------------------------------------- outputs across protocols
def cross_table(results: dict, markdown: bool = True) -> str:
    """Rows: memories; per protocol: final accuracy and forgetting (% mean +- std over class orders)."""
    from fyi_apps.report import pct, table

    memories = list(dict.fromkeys(m for agg in results.values() for m in agg))
    headers = ["memory"] + [f"{p} {what}" for p in results for what in ("acc %", "forgetting %")]
    rows = []
    for m in memories:
        row = [m]
        for agg in results.values():
            a = agg.get(m)
            for key in ("final_acc", "forgetting"):
                row.append(pct(a[key], a[key + "_std"]) if a and a[key] is not None else "-")
        rows.append(row)
    return table(rows, headers, markdown=markdown)


def cross_plot(results: dict, path: Path, title: str) -> Path:
    """Grouped bars: final accuracy and forgetting per memory, one bar per protocol, error bars = std."""
    from fyi_apps.plots import new_figure, save_figure

    memories = list(dict.fromkeys(m for agg in results.values() for m in agg))
    fig = new_figure(4.0 + 1.2 * len(memories), 3.6)
    width = 0.8 / max(len(results), 1)
    for col, (key, label) in enumerate((("final_acc", "final average accuracy (%)"),
                                        ("forgetting", "forgetting (%)"))):
        ax = fig.add_subplot(1, 2, col + 1)
        for j, (proto, agg) in enumerate(results.items()):
            xs = [i + (j - (len(results) - 1) / 2) * width for i in range(len(memories))]
            ys = [100 * (agg[m][key] or 0.0) if m in agg else 0.0 for m in memories]
            es = [100 * (agg[m][key + "_std"] or 0.0) if m in agg else 0.0 for m in memories]
            ax.bar(xs, ys, width=width, yerr=es, capsize=2, label=proto)
        ax.set_xticks(range(len(memories)))
        ax.set_xticklabels(memories, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
        if col == 0:
            ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)


# --------------------------------------------------------------------------- main
@H.reports_errors("continual")
def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    for name in args.protocol_list:  # fail on a bad name before any work
        protocol_of(name, args.strategy)
    if args.estimate:
        print(f"estimating {args.benchmark}: memories {','.join(args.memory_list)}, protocols "
              f"{','.join(args.protocol_list)}, {args.seeds} class orders ...")
        est = estimate(args)
        for p, t in est["per_protocol_seconds"].items():
            print(f"  {p:10s} {t / 3600:6.2f} h (training, all memories and orders)")
        for m, t in est["distill_seconds_per_order"].items():
            print(f"  {m:10s} {t / 60:6.1f} min of online distillation per class order")
        print(f"expected wall time: {est['total_seconds'] / 3600:.2f} h (one process)")
        return 0
    check_memory_files(args)
    run(args)
    return 0


def run(args) -> None:
    from fyi_apps.report import table
    from fyi_apps.runtime import atomic_path, write_json
    from fyi_apps.tasks.continual import results_table, run_experiment

    out = Path(args.out)
    command = H.command_line("continual", args.argv)
    t0 = time.perf_counter()
    summary = {"command": command, "protocols": {}}
    results, sections = {}, []
    for name in args.protocol_list:
        cfg = make_config(args, name)
        payload = run_experiment(cfg, out=out / f"{args.benchmark}_{name}_ipc{args.ipc}", root=args.data_root,
                                 device=args.device, progress=not args.no_progress, command=command,
                                 resume_dir=None if args.fresh else out / "runs")
        results[name] = payload["aggregate"]
        print(f"\n{args.benchmark} ({payload['source']}), {payload['n_experiences']} experiences, {name}, "
              f"IPC {args.ipc}, {len(cfg.seeds)} class orders")
        print(results_table(payload["aggregate"]))
        first = next(iter(payload["aggregate"].values()))
        curves = [[k] + [f"{100 * m:.1f}" if m is not None else "-" for m in a["curve_mean"]]
                  for k, a in payload["aggregate"].items()]
        sections += [f"**{name}** ({payload['n_experiences']} experiences; plot `{Path(payload['files']['png']).name}`):",
                     "", results_table(payload["aggregate"], markdown=True), "",
                     "Accuracy (%) on all seen classes after each experience:", "",
                     table(curves, ["memory"] + [f"{c} classes" for c in first["classes_seen"]], markdown=True), ""]
        summary["protocols"][name] = {"files": payload["files"], "aggregate": payload["aggregate"],
                                      "config": payload["config"], "versions": payload["versions"]}
    title = f"{args.benchmark}, IPC {args.ipc}, mean +- std over {args.seeds} class orders"
    if args.stream_aug != "none":
        title += f", stream minibatches augmented ({args.stream_aug})"
    if args.dsa_mode != "single":
        title += f", GDumb DSA mode {args.dsa_mode}"
    png = cross_plot(results, out / "strategies.png", title)
    minutes = (time.perf_counter() - t0) / 60
    md = [f"Command: `{command}`", "",
          f"Final average accuracy and forgetting (Avalanche's metrics, %), {title} (plot `{png.name}`):", "",
          cross_table(results), "", *sections,
          f"Wall time of this invocation: {minutes:.1f} min (cached runs are not re-timed)."]
    summary.update(cross_table=cross_table(results), plot=str(png))
    write_json(out / "summary.json", summary)
    with atomic_path(out / "results.md") as tmp:
        tmp.write_text("\n".join(md) + "\n")
    print(f"\n{cross_table(results, markdown=False)}\n\nmarkdown: {out / 'results.md'}; summary: "
          f"{out / 'summary.json'}; plot: {png} ({minutes:.1f} min)")


if __name__ == "__main__":
    sys.exit(main())
