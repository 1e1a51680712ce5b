"""The command line of ``fyi nas`` (and the training options ``fyi xarch`` shares)."""
from __future__ import annotations

from pathlib import Path

from .experiment import NasConfig, check_config, run_ranking
from .report import candidate_rows, summary_rows, write_report
from .runner import distributed_session, rank_world
from .spaces import list_spaces, split_names
from .stats import topk_counts


def add_common_training_arguments(sp) -> None:
    """Protocol and parallelism options shared by `fyi nas` and `fyi xarch`."""
    from ... import validate as V

    sp.add_argument("--lr", type=V.positive_float, default=None, help="learning rate (default: a set's learned lr, else 0.01)")
    sp.add_argument("--batch-size", type=V.positive_int, default=256)
    sp.add_argument("--no-dsa", action="store_true", help="train without DSA augmentation")
    sp.add_argument("--dsa-mode", default="single", choices=["single", "fyi", "all"])
    sp.add_argument("--bf16", action="store_true", help="bf16 autocast (CPUs with AVX-512 BF16, or CUDA)")
    sp.add_argument("--channels-last", action="store_true")
    sp.add_argument("--test-size", type=V.positive_int, default=None,
                    help="test on a fixed class-balanced subset of this many test images (default: all)")
    sp.add_argument("--workers", type=V.positive_int, default=1, help="parallel worker processes on this machine (spawned)")
    sp.add_argument("--threads", type=V.positive_int, default=None, help="torch threads per worker (default: cores / workers)")
    sp.add_argument("--cache", default=None, help="folder of per-run records (default OUT/<name>-cache); "
                                                  "rerunning the command resumes from it")
    sp.add_argument("--name", default=None, help="base name of the outputs in OUT (default: the command name)")


def add_nas_arguments(sp) -> None:
    from ... import validate as V

    sp.add_argument("--dataset", required=True)
    sp.add_argument("--proxy", action="append", default=None, metavar="SYNSET|random|herding|early|params|flops|...",
                    help="a proxy: a synthetic set, a random or herding real subset, early (full data for one proxy "
                         "run's compute), params / flops (no training), or a zero-cost proxy (synflow, snip, "
                         "grad_norm, grasp, fisher, jacob_cov, naswot: one minibatch, no training); repeat for "
                         "several (default: random)")
    sp.add_argument("--ipc", type=V.positive_int, default=None,
                    help="images per class of random/herding proxies (default: the first synthetic proxy's IPC)")
    sp.add_argument("--space", default="dc720",
                    help=f"candidate space: {', '.join(list_spaces())}, or a comma-separated list of models")
    sp.add_argument("--sample", type=V.non_negative_int, default=None,
                    help="candidates drawn from the space (0: all of them; default: 24 from a named space, "
                         "every candidate of an explicit list)")
    sp.add_argument("--include", default="", help="candidates always added, e.g. vgg11,resnet18")
    sp.add_argument("--max-mmacs", type=V.positive_float, default=None,
                    help="sample only candidates of at most this many million MACs per image (a compute cap)")
    sp.add_argument("--proxy-epochs", type=V.positive_int, default=300)
    sp.add_argument("--curve", default="", metavar="E1,E2,...",
                    help="learning curve: also test every trained proxy after these proxy epochs of the same run "
                         "(e.g. 5,10,25,50,100,200; early stopping at the same image-passes)")
    sp.add_argument("--truth", default="full",
                    help="ground truth: full (train on the whole training set), real:N (N random images per class, "
                         "a cheaper stated budget) or nb201 (NAS-Bench-201's 200-epoch accuracies; --space nb201)")
    sp.add_argument("--nb201", default=None, metavar="CSV",
                    help="the NAS-Bench-201 accuracy table (default $FYI_NB201, else nas-bench-201-accuracies.csv "
                         "in the data roots)")
    sp.add_argument("--nb201-cells", type=V.positive_int, default=None,
                    help="cells per stage of nb201 candidates (the benchmark's 5; 1 is DC-Bench's cheaper network)")
    sp.add_argument("--nb201-width", type=V.positive_int, default=None, help="channels of nb201 candidates' first stage (16)")
    sp.add_argument("--connected-only", action="store_true",
                    help="nb201: leave out cells whose output is disconnected from the input (they score 10 %%)")
    sp.add_argument("--stratified", action="store_true",
                    help="nb201: draw --sample cells evenly across the NAS-Bench-201 accuracy range")
    sp.add_argument("--ensemble", action="append", default=None, metavar="A+B",
                    help="also rank by the mean rank of several proxies (their labels or --proxy texts joined by "
                         "'+', e.g. params+synflow); 'vote' = synflow+jacob_cov+snip; repeat for several")
    sp.add_argument("--full-epochs", type=V.positive_int, default=30, help="ground-truth training epochs")
    sp.add_argument("--seeds", type=V.positive_int, default=1, help="training seeds per candidate and set")
    sp.add_argument("--topk", default="5,10,20",
                    help="top-k sizes (by ground truth) for the rank statistics; counts or percentages (10%%,20%%)")
    sp.add_argument("--herding-epochs", type=V.non_negative_int, default=1,
                    help="epochs of the feature network herding selects with")
    sp.add_argument("--label-points", default="rank", choices=["rank", "name", "none"],
                    help="text beside each scatter point: the candidate's ground-truth rank, its name (NB201 cells "
                         "as six letters: 0 none, s skip, 1/3 conv, p pool) or nothing")
    add_common_training_arguments(sp)


def curve_list(text: str) -> list[int]:
    """``"5,10,25"`` -> ``[5, 10, 25]`` (proxy epochs of the learning curve; empty text: no curve)."""
    from ...errors import FyiError

    out = []
    for t in (t.strip() for t in str(text or "").split(",")):
        if t:
            try:
                out.append(int(t))
            except ValueError:
                raise FyiError(f"--curve takes proxy epochs separated by commas (5,10,25), got {t!r}") from None
    return sorted(set(out))


def topk_list(text: str) -> list:
    """``"5,10%,20%"`` -> ``[5, "10%", "20%"]`` (checked now; percentages resolve per ranking)."""
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    topk_counts(items, 100)  # refuses anything that is neither a count nor a percentage
    return [t if t.endswith("%") else int(t) for t in items]


def run_nas_command(args) -> None:
    import sys

    from ...report import table

    name = args.name or "nas"
    cfg = NasConfig(
        dataset=args.dataset, proxies=args.proxy or ["random"], ipc=args.ipc, space=args.space,
        sample=args.sample, include=split_names(args.include), max_mmacs=args.max_mmacs,
        proxy_epochs=args.proxy_epochs, curve=curve_list(args.curve), ensembles=list(args.ensemble or []),
        truth=args.truth, full_epochs=args.full_epochs, seeds=args.seeds, seed=args.seed,
        topk=topk_list(args.topk),
        test_size=args.test_size,
        nb201=args.nb201, nb201_cells=args.nb201_cells, nb201_width=args.nb201_width,
        connected_only=args.connected_only, stratified=args.stratified, lr=args.lr, batch_size=args.batch_size,
        dsa=not args.no_dsa, dsa_mode=args.dsa_mode, bf16=args.bf16, channels_last=args.channels_last,
        herding_epochs=args.herding_epochs, workers=args.workers, threads=args.threads, data_root=args.data_root,
    )
    check_config(cfg)
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
