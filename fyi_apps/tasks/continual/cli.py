"""The ``fyi cl`` command: its arguments (:func:`add_cl_arguments`) and what it runs (:func:`run_cl_command`).

Importing this module imports nothing heavy (``fyi --help`` stays fast);
Avalanche is loaded when the command runs.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import sys
from pathlib import Path

from ... import validate as V
from ...errors import FyiError
from ...options import add_arguments, default_of, flag_of, from_namespace, key_values
from .config import NO_FLAG, CLConfig

#: ``["k=v", ...]`` -> ``{k: v}`` (``--distill-option``)
parse_options = key_values
#: the methods ``--iterations`` and ``--batch-real`` can name (``dm=300,dsa=10``)
ONLINE = ("dm", "dsa", "dc")


def _csv(text: str) -> list[str]:
    return [t.strip() for t in str(text).split(",") if t.strip()]


def add_cl_arguments(sp: argparse.ArgumentParser) -> None:
    """``fyi cl``'s flags: one per :class:`~.config.CLConfig` field (but those a preset or ``--fresh`` sets)."""
    add_arguments(sp, CLConfig, exclude=NO_FLAG)
    sp.add_argument("--fresh", action="store_true",
                    help="recompute everything (default: reuse finished runs and distillations under OUT/cl/)")
    sp.add_argument("-o", "--output", help="output stem (default OUT/cl/<benchmark>-<n>_<protocol>_ipc<N>)")


def per_method_int(text: str | None, flag: str):
    """``500`` (every method) or ``dm=1000,dsa=50`` (per method); each a positive integer."""
    if text is None:
        return None
    methods = ONLINE
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


def _experiences(args, protocol, benchmark: str) -> list[int | None]:
    from .benchmarks import resolve_benchmark

    if getattr(args, "experiences", None):
        return list(args.experiences)
    key, _, n = resolve_benchmark(benchmark)
    if key != str(benchmark).strip().lower():  # the name carries the count (split-cifar100-20)
        return [n]
    return list(protocol.experiences) if protocol.experiences else [None]


def configs_from_args(args) -> list:
    """The :class:`~.config.CLConfig` of each step count the command runs.

    An option not given takes the protocol's preset, else the field's default
    (:func:`fyi_apps.options.from_namespace` with ``defaults=preset``).
    """
    per_method = {name: per_method_int(getattr(args, name, None), "--" + name.replace("_", "-"))
                  for name in ("iterations", "batch_real")}  # checked before the heavy imports
    from ...deprecated import renamed_keys
    from .registry import PROTOCOLS

    protocol = PROTOCOLS.get(args.protocol)
    preset = copy.deepcopy(renamed_keys(protocol.defaults, CLConfig))  # a preset may use an old field name

    def preset_or_default(name):
        return preset[name] if name in preset else default_of(CLConfig, name)

    benchmark = args.benchmark if getattr(args, "benchmark", None) is not None else preset_or_default("benchmark")
    n_seeds = args.seeds if getattr(args, "seeds", None) is not None else len(preset_or_default("seeds"))
    memories = _csv(args.memory if getattr(args, "memory", None) is not None else ",".join(preset_or_default("memories")))
    if not memories:
        raise FyiError("--memory needs at least one memory (random, herding, dm, dm+fyi, dsa, dsa+fyi, LABEL:PATH ...)")
    options = parse_options(getattr(args, "distill_option", None) or [], "--distill-option")
    fixed = {"memories": memories, "protocol": PROTOCOLS.canonical(args.protocol),
             "seeds": list(range(args.seed, args.seed + n_seeds)),
             "distill_options": options or preset_or_default("distill_options")}
    for name, value in per_method.items():  # N for every method, or METHOD=N over the preset's / default's
        base = preset_or_default(name)
        if isinstance(value, int):
            fixed[name] = {m: value for m in ONLINE}
        elif value:
            fixed[name] = {**(base if isinstance(base, dict) else {m: base for m in ONLINE}), **value}
        else:
            fixed[name] = base
    if not args.fresh:
        V.output_dir(Path(args.out) / "cl", "--out folder")
        fixed["distill_cache"] = str(Path(args.out) / "cl" / "distill-cache")
    configs = []
    from .benchmarks import resolve_benchmark

    for n_exp in _experiences(args, protocol, benchmark):
        key, _, n = resolve_benchmark(benchmark, n_exp)
        configs.append(from_namespace(CLConfig, args, defaults=preset, benchmark=key, experiences=n,
                                      **copy.deepcopy(fixed)))
    protocol().check(configs[0])  # its own refusals first (the other protocol's augmentation)
    refuse_unread(configs[0], protocol, preset_or_default)
    return configs


def refuse_unread(cfg: CLConfig, protocol, preset_or_default) -> None:
    """Refuse an option the run would not read (set away from its preset or default): never ignored silently.

    The other protocol's training options (:attr:`~.protocols.CLProtocol.ignores`), online-distillation options
    without a distilled memory, ``--herding-epochs`` without a herding memory with its own feature network.
    """
    from .memory import parse_memory_spec

    kinds = {parse_memory_spec(m).kind for m in cfg.memories}
    other = "gdumb" if protocol.uses_learner else "replay"  # the protocol that reads what this one ignores
    unread = {name: f"the {protocol.name} protocol does not read it; drop it or use --protocol {other}"
              for name in protocol.ignores}
    if not kinds & set(ONLINE):
        unread.update(dict.fromkeys(("iterations", "batch_real", "lr_img", "distill_options"),
                                    "no memory is distilled online (dm, dsa, dc, +fyi); drop it"))
    if "herding" not in kinds or protocol.uses_learner:
        unread["herding_epochs"] = ("herding takes the learner's features" if "herding" in kinds
                                    else "no memory is herding") + "; drop it"
    fields = {f.name: f for f in dataclasses.fields(CLConfig)}
    for name, why in unread.items():
        value, base = getattr(cfg, name), preset_or_default(name)
        if value != base:
            if isinstance(value, dict):  # the entries given (METHOD=N over the preset's)
                value = ",".join(f"{k}={v}" for k, v in value.items() if not isinstance(base, dict) or base.get(k) != v)
            shown = "" if isinstance(value, bool) else f" {value}"
            raise FyiError(f"{flag_of(fields[name])}{shown} does not apply to this run: {why}")


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
