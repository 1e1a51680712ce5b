"""The ``fyi cl`` command: its arguments (:func:`add_cl_arguments`) and what it runs (:func:`run_cl_command`).

Importing this module imports nothing heavy (``fyi --help`` stays fast);
Avalanche is loaded when the command runs.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ... import validate as V
from ...augment import MODES as DSA_MODES
from ...errors import FyiError
from .choices import ORDER_RULES, STREAM_AUG_NAMES

#: what the options default to when neither the user nor the protocol's preset sets them
CLI_DEFAULTS = {"benchmark": "split-cifar10", "ipc": 10, "seeds": 3, "epochs": 100, "lr": 0.01,
                "memory": "random,herding,dm,dm+fyi", "arch": "convnet", "strategy": "naive", "train_epochs": 3,
                "batch_size": 128, "stream_aug": "none"}
#: preset fields that have no option of their own (a protocol's preset sets them)
PRESET_ONLY = ("momentum", "weight_decay", "holdout", "drop_last", "eval_batch_size")


def _csv(text: str) -> list[str]:
    return [t.strip() for t in str(text).split(",") if t.strip()]


def add_cl_arguments(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--benchmark", help="split-cifar10 (default), split-fashion-mnist, split-digits, "
                                        "split-cifar100[-5|-10|-20]")
    sp.add_argument("--memory", "--buffer", "--buffers", dest="memory", default=None,
                    help="replay memories, comma-separated: random, herding, dm, dm+fyi, dsa, dsa+fyi, dc, dc+fyi "
                         "(distilled online per experience), file:PATH or LABEL:PATH (a synthetic-set file distilled "
                         "offline, e.g. dm:sets/dm_ipc10.safetensors), or native (er-ace's own buffer); default "
                         "random,herding,dm,dm+fyi (er-ace-avalanche: native)")
    sp.add_argument("--ipc", type=V.positive_int, help="memory images per class (default 10; dm-paper 20)")
    sp.add_argument("--protocol", default="gdumb",
                    help="gdumb: fresh network on the memory at each step; dm-paper: gdumb with the DM paper's "
                         "settings (Split CIFAR-100 in 5 and 10 steps, IPC 20, 1000 epochs, 5 numpy class orders); "
                         "replay: an Avalanche strategy (--strategy) trains on the stream and replays the memory; "
                         "er-ace-avalanche: Avalanche's ER-ACE baseline on Split CIFAR-10 (its reference settings, "
                         "5 seeds)")
    sp.add_argument("--seeds", type=V.positive_int, help="number of class orders (seed, seed+1, ...; default 3, dm-paper 5)")
    sp.add_argument("--experiences", type=V.int_list_arg(min=1),
                    help="number of experiences, or several (5,10) run one after the other "
                         "(default: the benchmark's; dm-paper 5,10)")
    sp.add_argument("--class-order", choices=list(ORDER_RULES),
                    help="class orders from a seeded torch permutation (fyi, default), "
                         "np.random.seed(k).permutation (numpy, the DM paper's; dm-paper's default) or 0..n-1 "
                         "(fixed, er-ace-avalanche's)")
    sp.add_argument("--arch", help="network trained on the memory (and used for distillation; default convnet, "
                                   "er-ace-avalanche slimresnet18:incremental=True)")
    sp.add_argument("--iterations", help="online distillation iterations per experience: N, or per method "
                                         "(default dm=300,dsa=10,dc=10)")
    sp.add_argument("--batch-real", help="distillation: real images per class per iteration: N, or per method "
                                         "(default dm=64,dsa=64,dc=64)")
    sp.add_argument("--lr-img", type=V.positive_float, help="distillation: learning rate of the synthetic images")
    sp.add_argument("--distill-option", action="append", default=[], metavar="KEY=VALUE",
                    help="distillation method options, replacing the default outer_loop=5, inner_loop=10 "
                         "of DSA/DC (repeatable)")
    sp.add_argument("--herding-epochs", type=V.non_negative_int, default=1,
                    help="gdumb: epochs of the per-experience feature network for herding (replay uses the learner)")
    sp.add_argument("--epochs", type=V.positive_int, help="gdumb: training epochs on the memory at each step "
                                               "(default 100; dm-paper 1000)")
    sp.add_argument("--no-dsa", action="store_true", help="gdumb: train on the memory without DSA augmentation")
    sp.add_argument("--dsa-mode", default="single", choices=DSA_MODES,
                    help="gdumb: DSA as in the original papers (single: one random operation), as in the FYI code "
                         "(fyi: a random flip plus one operation) or all operations")
    sp.add_argument("--strategy",
                    help="replay: naive, ewc, lwf (each + ReplayPlugin with the memory) or er-ace "
                         "(Avalanche's ER_ACE with the memory as its storage policy)")
    sp.add_argument("--train-epochs", type=V.positive_int, help="replay: epochs per experience (default 3)")
    sp.add_argument("--stream-aug", choices=list(STREAM_AUG_NAMES),
                    help="replay: augmentation of every training minibatch, stream and replayed images: a random "
                         "horizontal flip per image (flip), one DSA operation (dsa) or the FYI code's flip + one "
                         "operation (dsa-fyi), or Avalanche's default CIFAR transform (crop-flip: random crop with 4 px "
                         "padding + flip; er-ace-avalanche's); default none")
    sp.add_argument("--lr", type=V.positive_float, help="learning rate of the trained network (default 0.01)")
    sp.add_argument("--batch-size", type=V.positive_int, help="replay: minibatch size (default 128)")
    sp.add_argument("--batch-size-mem", type=V.positive_int,
                    help="replay: memory images per minibatch (default: --batch-size; er-ace: at most twice "
                         "one experience's memory)")
    sp.add_argument("--train-per-class", type=V.positive_int,
                    help="a reduced benchmark: this many training images per class (a fixed random subset, the "
                         "same for every class order and memory; default: all)")
    sp.add_argument("--bf16", action="store_true", help="bf16 autocast")
    sp.add_argument("--fresh", action="store_true",
                    help="recompute everything (default: reuse finished runs and distillations under OUT/cl/)")
    sp.add_argument("-o", "--output", help="output stem (default OUT/cl/<benchmark>-<n>_<protocol>_ipc<N>)")


def per_method_int(text: str | None, flag: str):
    """``500`` (every method) or ``dm=1000,dsa=50`` (per method); each a positive integer."""
    if text is None:
        return None
    methods = ("dm", "dsa", "dc")
    if "=" not in text:
        return V.integer(text, flag, min=1, strings=True)
    out = {}
    for item in _csv(text):
        k, eq, v = item.partition("=")
        k = k.strip().lower()
        if not eq or k not in methods:
            raise FyiError(f"{flag} takes N or METHOD=N,... with METHOD one of {', '.join(methods)}; got {text!r}")
        out[k] = V.integer(v, f"{flag} {k}", min=1, strings=True)
    return out


def _experiences(args, protocol) -> list[int | None]:
    from .benchmarks import resolve_benchmark

    if args.experiences:
        return list(args.experiences)
    key, _, n = resolve_benchmark(args.benchmark)
    if key != str(args.benchmark).strip().lower():  # the name carries the count (split-cifar100-20)
        return [n]
    return list(protocol.experiences) if protocol.experiences else [None]


def configs_from_args(args) -> list:
    """The :class:`~.experiment.CLConfig` of each step count the command runs."""
    per_method = {name: per_method_int(getattr(args, name), "--" + name.replace("_", "-"))
                  for name in ("iterations", "batch_real")}  # checked before the heavy imports
    from ...distill.cli import parse_options
    from ...deprecated import renamed_keys
    from .experiment import CLConfig
    from .registry import PROTOCOLS

    protocol = PROTOCOLS.get(args.protocol)
    preset = renamed_keys(protocol.defaults, CLConfig)  # a preset may use an old field name

    def pick(name):
        value = getattr(args, name, None)
        return value if value is not None else preset.get(name, CLI_DEFAULTS.get(name))

    args.benchmark = pick("benchmark")
    n_seeds = args.seeds if args.seeds is not None else len(preset.get("seeds", ())) or CLI_DEFAULTS["seeds"]
    memories = _csv(args.memory if args.memory is not None else ",".join(preset["memories"]) if "memories" in preset
                    else CLI_DEFAULTS["memory"])
    if not memories:
        raise FyiError("--memory needs at least one memory (random, herding, dm, dm+fyi, dsa, dsa+fyi, LABEL:PATH ...)")
    options = parse_options(args.distill_option, "--distill-option")
    configs = []
    from .benchmarks import resolve_benchmark

    for n_exp in _experiences(args, protocol):
        key, _, n = resolve_benchmark(args.benchmark, n_exp)
        cfg = CLConfig(benchmark=key, memories=list(memories), ipc=pick("ipc"), protocol=PROTOCOLS.canonical(args.protocol),
                       seeds=list(range(args.seed, args.seed + n_seeds)), experiences=n, arch=pick("arch"),
                       lr_img=args.lr_img, herding_epochs=args.herding_epochs, epochs=pick("epochs"),
                       dsa=False if args.no_dsa else preset.get("dsa", True), strategy=pick("strategy"),
                       train_epochs=pick("train_epochs"), lr=pick("lr"), batch_size=pick("batch_size"), bf16=args.bf16,
                       order_rule=args.class_order or preset.get("order_rule", "fyi"),
                       batch_size_mem=pick("batch_size_mem"),
                       train_per_class=getattr(args, "train_per_class", None),
                       dsa_mode=getattr(args, "dsa_mode", "single"),
                       stream_aug=pick("stream_aug"), **{k: preset[k] for k in PRESET_ONLY if k in preset})
        if options:
            cfg.distill_options = options
        for name, value in per_method.items():
            if isinstance(value, int):
                setattr(cfg, name, {m: value for m in ("dm", "dsa", "dc")})
            elif value:
                setattr(cfg, name, {**getattr(cfg, name), **value})
        if not args.fresh:
            V.output_dir(Path(args.out) / "cl", "--out folder")
            cfg.distill_cache = str(Path(args.out) / "cl" / "distill-cache")
        configs.append(cfg)
    return configs


def run_cl_command(args) -> None:
    from .experiment import results_table, run_experiment

    configs = configs_from_args(args)
    stems = []
    for cfg in configs:  # every output target checked before any compute
        n_exp = cfg.experiences
        if args.output:
            stem = args.output if len(configs) == 1 else f"{args.output}_{n_exp}steps"
        else:
            stem = str(Path(args.out) / "cl" / f"{cfg.benchmark}-{n_exp}_{cfg.protocol}_ipc{cfg.ipc}")
        V.output_file(stem + ".json", "results file")
        stems.append(stem)
    for cfg, stem in zip(configs, stems):
        n_exp = cfg.experiences
        payload = run_experiment(cfg, out=stem, root=args.data_root, device=args.device, progress=not args.quiet,
                                 command=" ".join(["fyi", *sys.argv[1:]]),
                                 resume_dir=None if args.fresh else Path(args.out) / "cl" / "runs")
        what = f"{cfg.protocol} protocol" + (f" ({cfg.strategy})" if cfg.protocol == "replay" else "")
        print(f"{cfg.benchmark} ({payload['source']}), {n_exp} experiences, {what}, IPC {cfg.ipc}, "
              f"{len(cfg.seeds)} class order(s)")
        print(results_table(payload["aggregate"]))
        for kind, path in payload["files"].items():
            print(f"{kind}: {path}")
