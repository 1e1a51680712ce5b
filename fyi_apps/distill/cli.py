"""``fyi distill``: arguments and the command (kept beside the methods it drives).

The flags are :class:`~.config.DistillConfig`'s fields (:func:`fyi_apps.options.add_arguments`);
a new field is a new flag.  Only what is not part of the config is declared here.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import validate as V
from ..errors import FyiError
from ..options import add_arguments, from_namespace, key_values
from .config import DistillConfig, resolve_config


#: ``["k=v", ...]`` -> ``{k: v}`` with JSON values where they parse (numbers, true/false); ``flag`` names the option
parse_options = key_values


def add_distill_arguments(sp: argparse.ArgumentParser) -> None:
    """``fyi distill``'s flags: one per :class:`~.config.DistillConfig` field (``--seed`` is global), then the run's own."""
    add_arguments(sp, DistillConfig, exclude=("seed",))
    sp.add_argument("--experts", "--buffers", dest="experts", metavar="DIR",
                    help="MTT/FTD: folder of expert trajectories (`fyi experts`; --buffers is the old name)")
    sp.add_argument("-o", "--output", help="synthetic-set file (default OUT/distill/<method>[-fyi]_<dataset>_ipc<N>_seed<S>.safetensors)")
    sp.add_argument("--resume", action="store_true", help="continue from the checkpoint next to the output file")
    sp.add_argument("--no-grid", action="store_true", help="do not write the PNG grid of the result")


def run_distill_command(args) -> None:
    from ..data import load_dataset
    from ..distributed import distributed_session
    from ..synset import export_grid
    from .base import Distiller, default_output
    from .checkpoint import check_start, checkpoint_path

    options = parse_options(args.option)
    if args.experts:
        if options.get("experts", str(args.experts)) != str(args.experts):
            raise FyiError("expert folder given twice (--experts and --option experts=...) with different values; "
                           "give it once")
        options["experts"] = str(args.experts)
    cfg = from_namespace(DistillConfig, args, dataset=args.dataset.lower(), options=options)
    cfg = resolve_config(cfg)  # once: unknown method / bad option fail before loading data
    out = Path(args.output) if args.output else default_output(cfg, args.out)
    V.output_file(out, "synthetic-set file")  # an unwritable target fails now, not after the last iteration
    if args.resume and not check_start(checkpoint_path(out), resume=True):  # resumed: named from now on
        print(f"fyi: warning: --resume found no checkpoint {checkpoint_path(out)} (a finished run removes it); "
              "starting from iteration 0", file=sys.stderr)
    ds = load_dataset(args.dataset, root=args.data_root, extend_flip=args.extend_flip)
    with distributed_session(args.device) as device:  # torchrun: each process distils a share of the classes
        d = Distiller(cfg, ds, device=device)
        synset = d.run(out, resume=args.resume, progress=not args.quiet)
        if not d.ctx.shard.is_main:  # rank 0 wrote the set and reports it
            return
    print(f"{cfg.method}{' + FYI (' + d.cfg.fyi + ')' if d.cfg.fyi else ''} on {ds.info.name}, ipc {cfg.ipc}: "
          f"{len(synset.labels)} stored images, final loss {synset.extra['final_loss']:.6g}, precision "
          f"{d.ctx.precision} -> {out}")
    if not args.no_grid:
        png = out.with_name(out.name.replace(".safetensors", "") + ".png")
        export_grid(synset, png)
        print(f"grid: {png}")
