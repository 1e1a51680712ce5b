"""``fyi experts`` (alias ``fyi buffers``): train the expert trajectories MTT and FTD match.

The trajectories are written to a folder (resumable: rerun the same command to
continue or to add experts) that ``fyi distill --method mtt|ftd --experts DIR``
reads; see :mod:`fyi_apps.distill.experts`.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import validate as V
from .common import check_archs, load, progress


def cmd_experts(args) -> None:
    import dataclasses

    from ..distill.experts import ExpertConfig, default_expert_dir, train_experts
    from ..report import table

    cfg = ExpertConfig(
        dataset="", experts=args.experts, epochs=args.epochs, arch=args.arch, lr_teacher=args.lr_teacher,
        momentum=args.momentum, weight_decay=args.weight_decay, batch_size=args.batch_size, dsa=not args.no_dsa,
        dsa_mode=args.dsa_mode, zca=args.zca, zca_eps=args.zca_eps, flat=args.flat, rho=args.rho, alpha=args.alpha,
        adaptive=not args.no_adaptive, train_per_class=args.train_per_class, dtype=args.dtype, bf16=args.bf16,
        extend_flip=args.extend_flip, test_every=args.test_every, seed=args.seed,
    )
    cfg.check()  # bad numbers: fail before loading data
    ds = load(args, args.dataset, extend_flip=args.extend_flip)
    cfg.dataset = ds.info.name
    out = Path(args.output) if args.output else default_expert_dir(
        dataclasses.replace(cfg, dataset=V.safe_name(cfg.dataset)), args.out)
    V.output_dir(out, "expert folder")
    check_archs([cfg.arch], ds.info)
    b = train_experts(cfg, ds, out, device=args.device, progress=progress(args),
                      command=" ".join(["fyi", *sys.argv[1:]]))
    rows = []
    for e in b.experts:
        acc = e["test_acc"].get(str(b.epochs))
        rows.append([e["index"], f"{100 * acc:.2f}" if acc is not None else "-", f"{e['train_loss'][-1]:.4f}",
                     f"{e['seconds']:.0f}"])
    print(table(rows, ["expert", "test acc %", "final train loss", "seconds"]))
    summ = b.summary()
    print(f"{summ['experts']} experts x {summ['epochs']} epochs ({summ['num_params']} parameters each"
          f"{', flat (GSAM)' if summ['flat'] else ''}{', ZCA' if summ['zca'] else ''}) in {out}")
    print(f"use them with: fyi distill --method {'ftd' if cfg.flat else 'mtt'} --dataset {ds.info.name} --ipc N "
          f"--experts {out}")


def add_experts_arguments(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--dataset", required=True)
    sp.add_argument("--experts", type=V.positive_int, default=100, help="number of experts (reference: 100); more can be added later")
    sp.add_argument("--epochs", type=V.positive_int, default=50, help="epochs per expert (reference: 50)")
    sp.add_argument("--arch", default="convnet", help="architecture (must match `fyi distill --arch`)")
    sp.add_argument("--lr-teacher", type=V.positive_float, default=0.01, help="SGD learning rate of the experts")
    sp.add_argument("--momentum", type=V.non_negative_float, default=0.0)
    sp.add_argument("--weight-decay", type=V.non_negative_float, default=0.0)
    sp.add_argument("--batch-size", type=V.positive_int, default=256)
    sp.add_argument("--no-dsa", action="store_true", help="train the experts without DSA augmentation")
    sp.add_argument("--dsa-mode", default="single", choices=["single", "fyi", "all"])
    sp.add_argument("--zca", action="store_true", help="ZCA-whiten the inputs (published CIFAR settings)")
    sp.add_argument("--zca-eps", type=V.positive_float, default=0.1)
    sp.add_argument("--flat", action="store_true", help="FTD's flat experts: train with GSAM")
    sp.add_argument("--rho", type=V.non_negative_float, default=0.01, help="GSAM perturbation radius (FTD: 0.01)")
    sp.add_argument("--alpha", type=V.non_negative_float, default=0.3, help="GSAM surrogate-gap weight (FTD: 0.3)")
    sp.add_argument("--no-adaptive", action="store_true", help="non-adaptive GSAM perturbation")
    sp.add_argument("--train-per-class", type=V.positive_int, help="train on this many random images per class (CPU budgets)")
    sp.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"],
                    help="storage precision of the trajectories")
    sp.add_argument("--bf16", action="store_true", help="bf16 autocast while training the experts")
    sp.add_argument("--test-every", type=V.non_negative_int, default=0, help="also record test accuracy every N epochs")
    sp.add_argument("--extend-flip", action="store_true")
    sp.add_argument("-o", "--output", help="folder (default OUT/experts/<dataset>_<arch>[_zca][_flat]_seed<S>)")
