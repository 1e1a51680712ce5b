"""``fyi distill``: arguments and the command (kept beside the methods it drives)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from .. import validate as V
from ..errors import FyiError


def _option_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_options(items, flag: str = "--option") -> dict:
    """``["k=v", ...]`` -> ``{k: v}`` with JSON values where they parse (numbers, true/false)."""
    options = {}
    for item in items:
        if "=" not in item:
            raise FyiError(f"{flag} takes KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        options[k.strip()] = _option_value(v.strip())
    return options


def add_distill_arguments(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--dataset", required=True, help="dataset name (see `fyi data`)")
    sp.add_argument("--method", required=True, help="dc, dsa, dm, idc, mtt or ftd")
    sp.add_argument("--ipc", type=V.positive_int, required=True, help="images per class")
    sp.add_argument("--fyi", nargs="?", const="flip", default=None,
                    help="turn FYI on (horizontal flip, the paper); or a view for ablation: flip, vflip, rot15, scale")
    sp.add_argument("--iterations", type=V.positive_int, help="outer iterations (default: the method's preset)")
    sp.add_argument("--lr-img", type=V.positive_float, help="learning rate of the synthetic images")
    sp.add_argument("--batch-real", type=V.positive_int, help="real images per class per iteration")
    sp.add_argument("--init", default="real", choices=["real", "noise"])
    sp.add_argument("--arch", default="convnet",
                    help="network used for matching; space:NAME (e.g. space:nb201;cells=1) or space:a|b|c draws a "
                         "new architecture from that space for every network (seeded, recorded in the output)")
    sp.add_argument("--no-dsa", action="store_true", help="switch DSA off (DM/DSA/MTT use it by default)")
    sp.add_argument("--dsa-mode", default="single", choices=["single", "fyi", "all"])
    sp.add_argument("--extend-flip", action="store_true", help="distil from the flip-extended training set")
    sp.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                    help="method option, e.g. outer_loop=10, lr_net=0.01, fyi_inner=false (repeatable; an unknown "
                         "key is refused with the method's options listed)")
    sp.add_argument("--experts", "--buffers", dest="buffers", metavar="DIR",
                    help="MTT/FTD: folder of expert trajectories (`fyi experts`; --buffers is the old name)")
    sp.add_argument("-o", "--output", help="synthetic-set file (default OUT/distill/<method>[-fyi]_<dataset>_ipc<N>_seed<S>.safetensors)")
    sp.add_argument("--resume", action="store_true", help="continue from the checkpoint next to the output file")
    sp.add_argument("--checkpoint-every", type=V.positive_int, default=100)
    sp.add_argument("--score-every", type=V.non_negative_int, default=0,
                    help="log the unequalness score of S every N iterations")
    sp.add_argument("--eval-every", type=V.non_negative_int, default=0, help="evaluate S every N iterations (slow)")
    sp.add_argument("--eval-epochs", type=V.positive_int, default=300, help="epochs of the periodic evaluation")
    sp.add_argument("--bf16", action="store_true", help="bf16 autocast for every network pass (unsafe for some "
                                                         "methods; prefer --precision)")
    sp.add_argument("--precision", default="fp32", choices=["auto", "fp32", "bf16"],
                    help="bf16 for the real-image passes only (DM's real embeddings, the real gradients of "
                         "DC/DSA/IDC); auto: bf16 where the device runs it natively (AMX/AVX512-BF16 CPUs, "
                         "bf16 GPUs), else fp32")
    sp.add_argument("--channels-last", action="store_true")
    sp.add_argument("--no-grid", action="store_true", help="do not write the PNG grid of the result")


def run_distill_command(args) -> None:
    from ..data import load_dataset
    from ..synset import export_grid
    from .base import DistillConfig, Distiller, default_output

    options = parse_options(args.option)
    if args.buffers:
        if "buffers" in options and options["buffers"] != str(args.buffers):
            raise FyiError("expert folder given twice (--experts and --option buffers=...) with different values; "
                           "give it once")
        options["buffers"] = str(args.buffers)
    cfg = DistillConfig(
        method=args.method.lower(), dataset=args.dataset.lower(), ipc=args.ipc, fyi=args.fyi,
        iterations=args.iterations, lr_img=args.lr_img, batch_real=args.batch_real, init=args.init,
        arch=args.arch, dsa=False if args.no_dsa else None, dsa_mode=args.dsa_mode, seed=args.seed,
        extend_flip=args.extend_flip, checkpoint_every=args.checkpoint_every, eval_every=args.eval_every,
        eval_epochs=args.eval_epochs, score_every=args.score_every, bf16=args.bf16, precision=args.precision,
        channels_last=args.channels_last, options=options,
    )
    from .base import resolve_config

    cfg = resolve_config(cfg)  # once: unknown method / bad option fail before loading data
    out = Path(args.output) if args.output else default_output(cfg, args.out)
    V.output_file(out, "synthetic-set file")  # an unwritable target fails now, not after the last iteration
    ds = load_dataset(args.dataset, root=args.data_root, extend_flip=args.extend_flip)
    d = Distiller(cfg, ds, device=args.device)
    synset = d.run(out, resume=args.resume, progress=not args.quiet)
    print(f"{cfg.method}{' + FYI (' + d.cfg.fyi + ')' if d.cfg.fyi else ''} on {ds.info.name}, ipc {cfg.ipc}: "
          f"{len(synset.labels)} stored images, final loss {synset.extra['final_loss']:.6g} -> {out}")
    if not args.no_grid:
        png = out.with_name(out.name.replace(".safetensors", "") + ".png")
        export_grid(synset, png)
        print(f"grid: {png}")
