"""What several ``fyi`` commands share: the global options, the evaluation options, results files, loading.

The global options (``--device``, ``--seed``, ``--data-root``, ``--out``,
``--quiet``) are accepted before and after the command name; a command's own
arguments live in its module (:mod:`fyi_apps.cli`'s table says which).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .. import validate as V
from ..errors import FyiError

GLOBAL_DEFAULTS = {"device": "auto", "seed": 0, "data_root": None, "out": "fyi-runs", "quiet": False}


def global_options() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("global options")
    g.add_argument("--device", default=argparse.SUPPRESS, help="auto (default), cpu or cuda")
    g.add_argument("--seed", type=V.non_negative_int, default=argparse.SUPPRESS, help="base random seed (default 0)")
    g.add_argument("--data-root", default=argparse.SUPPRESS,
                   help="folder holding the dataset files (default: $FYI_DATA, ./data, ../shared/data)")
    g.add_argument("--out", default=argparse.SUPPRESS, help="folder for results (default ./fyi-runs)")
    g.add_argument("--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress bars")
    return p


def csv_list(text: str) -> list[str]:
    return [t.strip() for t in str(text).split(",") if t.strip()]


def progress(args) -> bool:
    return not args.quiet


def result_path(args, name: str, path: str | None = None) -> Path:
    """Where a command's JSON goes (``--json`` or OUT/<name>.json), checked writable before any compute."""
    target = Path(path) if path else Path(args.out) / f"{V.safe_name(name)}.json"
    return V.output_file(target, "results file")


def write_result(args, name: str, payload: dict, path: str | None = None) -> Path:
    from ..runtime import package_versions, write_json

    payload = {**payload, "command": " ".join(["fyi", *sys.argv[1:]]), "seed": args.seed,
               "versions": package_versions(), "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
    target = result_path(args, name, path)
    write_json(target, payload, what="results file")
    print(f"results written to {target}")
    return target


def load(args, name: str, extend_flip: bool = False):
    from ..data import load_dataset

    return load_dataset(name, root=args.data_root, extend_flip=extend_flip)


def refuse_unread(given: dict[str, object], why: str) -> None:
    """Refuse the flags of ``given`` (flag -> value, None when not given) the run would not read: one line."""
    named = [f"{flag} {value}" for flag, value in given.items() if value is not None]
    if named:
        raise FyiError(f"{', '.join(named)} {'does' if len(named) == 1 else 'do'} not apply: {why}; drop "
                       f"{'it' if len(named) == 1 else 'them'}")


def existing(path: str, what: str = "file") -> Path:
    return V.existing_file(path, what)


def eval_config(args):
    """The :class:`~fyi_apps.evaluate.EvalConfig` of the parsed evaluation options (the others at their defaults)."""
    from ..evaluate import EvalConfig
    from ..options import from_namespace

    return from_namespace(EvalConfig, args)


def seed_list(args) -> list[int]:
    return list(range(args.seed, args.seed + args.seeds))


def check_archs(archs, info) -> None:
    from ..networks import create_model

    for a in archs:  # fail fast, before any training, on an unknown or unfit architecture
        create_model(a, channels=info.channels, num_classes=info.num_classes, image_size=info.image_size, seed=0)


#: the EvalConfig fields `fyi eval` offers as flags (the others keep the paper's values)
EVAL_FIELDS = ("epochs", "lr", "batch_size", "dsa", "dsa_mode", "bf16", "channels_last")


def add_eval_options(sp: argparse.ArgumentParser) -> None:
    """The paper's evaluation protocol as options (``fyi eval``): :data:`EVAL_FIELDS` of ``EvalConfig``."""
    from ..evaluate import EvalConfig  # here, not at the top: `fyi --help` imports no torch
    from ..options import add_arguments

    sp.add_argument("--arch", default="convnet", help="architecture(s), comma-separated (e.g. convnet,vgg11,resnet18,timm:resnet18)")
    sp.add_argument("--seeds", type=V.positive_int, default=3, help="number of evaluation seeds (seed, seed+1, ...)")
    add_arguments(sp, EvalConfig, only=EVAL_FIELDS)
