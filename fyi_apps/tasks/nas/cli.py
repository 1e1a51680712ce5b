"""The command line of ``fyi nas`` (and the training options ``fyi xarch`` shares)."""
from __future__ import annotations

from pathlib import Path

from ...options import add_arguments, from_namespace
from .config import NasConfig, curve_list, topk_list  # noqa: F401 - curve_list, topk_list: re-exported
from .experiment import run_ranking
from .report import candidate_rows, summary_rows, write_report
from .runner import distributed_session, rank_world


#: the training and parallelism options `fyi nas` and `fyi xarch` share (NasConfig fields; the training ones are
#: EvalConfig's)
COMMON_FIELDS = ("lr", "batch_size", "dsa", "dsa_mode", "bf16", "channels_last", "test_size", "workers", "threads")


def add_common_training_arguments(sp) -> None:
    """Protocol and parallelism options shared by `fyi nas` and `fyi xarch`."""
    add_arguments(sp, NasConfig, only=COMMON_FIELDS)
    sp.add_argument("--cache", default=None, help="folder of per-run records (default OUT/<name>-cache); "
                                                  "rerunning the command resumes from it")
    sp.add_argument("--name", default=None, help="base name of the outputs in OUT (default: the command name)")


def add_nas_arguments(sp) -> None:
    """``fyi nas``'s flags: one per :class:`NasConfig` field (``--seed``, ``--data-root`` are global), then the report's."""
    add_arguments(sp, NasConfig, exclude=("candidates", "seed", "data_root", *COMMON_FIELDS))
    sp.add_argument("--label-points", default="rank", choices=["rank", "name", "none"],
                    help="text beside each scatter point: the candidate's ground-truth rank, its name (NB201 cells "
                         "as six letters: 0 none, s skip, 1/3 conv, p pool) or nothing")
    add_common_training_arguments(sp)


def run_nas_command(args) -> None:
    import sys

    from ...report import table

    name = args.name or "nas"
    cfg = from_namespace(NasConfig, args)
    with distributed_session(args.device, args.threads) as device:
        cache = args.cache or str(Path(args.out) / f"{name}-cache")
        report = run_ranking(cfg, cache_dir=cache, device=device, progress=not args.quiet)
        if rank_world()[0] != 0:
            return
        rows, heads = candidate_rows(report)
        print(table(rows, heads))
        print()
        rows, heads = summary_rows(report)
        print(table(rows, heads))
        paths = write_report(report, args.out, name=name, command=" ".join(["fyi", *sys.argv[1:]]),
                             point_labels=args.label_points)
        print(f"report: {paths['json']}, {paths['md']}, {paths['png']}")
