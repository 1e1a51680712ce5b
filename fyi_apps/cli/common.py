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
from ..errors import FyiError  # noqa: F401 - commands raise it

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


def existing(path: str, what: str = "file") -> Path:
    return V.existing_file(path, what)


def eval_config(args):
    from ..evaluate import EvalConfig

    return EvalConfig(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, dsa=not args.no_dsa,
                      dsa_mode=args.dsa_mode, bf16=args.bf16, channels_last=args.channels_last)


def seed_list(args) -> list[int]:
    return list(range(args.seed, args.seed + args.seeds))


def check_archs(archs, info) -> None:
    from ..networks import create_model

    for a in archs:  # fail fast, before any training, on an unknown or unfit architecture
        create_model(a, channels=info.channels, num_classes=info.num_classes, image_size=info.image_size, seed=0)


def add_eval_options(sp: argparse.ArgumentParser) -> None:
    """The paper's evaluation protocol as options (``fyi eval``)."""
    sp.add_argument("--arch", default="convnet", help="architecture(s), comma-separated (e.g. convnet,vgg11,resnet18,timm:resnet18)")
    sp.add_argument("--epochs", type=V.positive_int, default=1000, help="training epochs (paper: 1000)")
    sp.add_argument("--seeds", type=V.positive_int, default=3, help="number of evaluation seeds (seed, seed+1, ...)")
    sp.add_argument("--lr", type=V.positive_float, default=None, help="learning rate (default: the set's learned lr, else 0.01)")
    sp.add_argument("--batch-size", type=V.positive_int, default=256)
    sp.add_argument("--no-dsa", action="store_true", help="train without DSA augmentation")
    sp.add_argument("--dsa-mode", default="single", choices=["single", "fyi", "all"],
                    help="DSA op choice: single (original), fyi (official FYI code: flip + one op), all")
    sp.add_argument("--bf16", action="store_true", help="bf16 autocast (faster on CPUs with AVX-512 BF16)")
    sp.add_argument("--channels-last", action="store_true")
