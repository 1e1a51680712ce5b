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
    from ..distributed import distributed_session, rank_world
    from ..options import from_namespace
    from ..report import table

    cfg = from_namespace(ExpertConfig, args)  # bad numbers: fail before loading data
    ds = load(args, args.dataset, extend_flip=args.extend_flip)
    cfg = dataclasses.replace(cfg, dataset=ds.info.name)
    out = Path(args.output) if args.output else default_expert_dir(
        dataclasses.replace(cfg, dataset=V.safe_name(cfg.dataset)), args.out)
    V.output_dir(out, "expert folder")
    check_archs([cfg.arch], ds.info)
    with distributed_session(args.device) as device:  # torchrun: the experts are dealt to the ranks, one folder
        b = train_experts(cfg, ds, out, device=device, progress=progress(args) and rank_world()[0] == 0,
                          command=" ".join(["fyi", *sys.argv[1:]]))
        if rank_world()[0] != 0:
            return
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
    """``fyi experts``'s flags: one per ``ExpertConfig`` field (``--seed`` is global), then the output folder."""
    from ..distill.expert_config import ExpertConfig
    from ..options import add_arguments

    add_arguments(sp, ExpertConfig, exclude=("seed",))
    sp.add_argument("-o", "--output", help="folder (default OUT/experts/<dataset>_<arch>[_zca][_flat]_seed<S>)")
