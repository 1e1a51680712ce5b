"""``fyi score``: the unequalness score D(R, flip R) of a set, or of real subsets by size (paper Fig. 3)."""
from __future__ import annotations

import argparse
from pathlib import Path

from .. import validate as V
from ..errors import FyiError
from .common import csv_list, existing, load, refuse_unread, result_path, write_result


def cmd_score(args) -> None:
    from ..report import table
    from ..distill.score import unequalness, unequalness_curve
    from ..synset import load_synset

    from ..distill.fyi import FYIView

    distances = csv_list(args.distance)
    for d in distances:
        V.choice(d, "--distance", ("dm", "dc"))
    FYIView(args.view)  # an unknown view fails before any network is built
    if args.synset:
        refuse_unread({"--dataset": args.dataset, "--sizes": args.sizes and ",".join(map(str, args.sizes)),
                       "--repeats": args.repeats},
                      "a set is scored whole (--dataset, --sizes and --repeats draw the real-subset curve)")
        s = load_synset(existing(args.synset, "synthetic-set file"))
        result_path(args, f"score-{Path(args.synset).stem}", args.json)
        images, labels = s.decoded()
        rows, payload = [], {"synset": args.synset, "scores": {}}
        for d in distances:
            r = unequalness(images, labels, s.num_classes, distance=d, arch=args.arch, num_nets=args.nets,
                            seed=args.seed, view=args.view, device=args.device)
            rows.append([Path(args.synset).name, d, f"{r['score']:.6g}", f"{r['std_over_nets']:.3g}", args.nets])
            payload["scores"][d] = r
        print(table(rows, ["set", "distance", "D(S, flip S)", "std over nets", "nets"]))
        write_result(args, f"score-{Path(args.synset).stem}", payload, path=args.json)
        return
    if not args.dataset:
        raise FyiError("`fyi score` needs a SYNSET file or --dataset NAME (for the real-subset curve)")
    ds = load(args, args.dataset)
    from ..distill.score import check_subset_sizes

    sizes = check_subset_sizes(ds, args.sizes or [1, 2, 5, 10, 20, 50, 100])
    png = V.output_file(Path(args.out) / f"score-{V.safe_name(ds.info.name)}.png", "PNG file")
    result_path(args, f"score-{ds.info.name}", args.json)
    payload, rows = {"dataset": ds.info.name, "curves": {}}, []
    for d in distances:
        curve = unequalness_curve(ds, sizes, distance=d, arch=args.arch, num_nets=args.nets,
                                  repeats=args.repeats or 1, seed=args.seed, device=args.device)
        payload["curves"][d] = curve
        rows += [[d, r["ipc"], f"{r['score']:.6g}", f"{r['std']:.3g}"] for r in curve]
    print(table(rows, ["distance", "images/class", "D(R, flip R)", "std"]))
    from ..plots import score_curve

    score_curve(payload["curves"], png, title=f"Unequalness of real {ds.info.name} subsets")
    print(f"plot written to {png}")
    write_result(args, f"score-{ds.info.name}", payload, path=args.json)


def add_score_arguments(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("synset", nargs="?")
    sp.add_argument("--dataset", help="real data for the curve over subset sizes (paper Fig. 3)")
    sp.add_argument("--sizes", type=V.int_list_arg(1),
                    help="images per class for the curve (comma-separated, default 1,2,5,10,20,50,100)")
    sp.add_argument("--distance", default="dm", help="dm, dc or dm,dc")
    sp.add_argument("--arch", default="convnet")
    sp.add_argument("--nets", type=V.positive_int, default=5, help="randomly initialised networks to average over")
    sp.add_argument("--repeats", type=V.positive_int, help="random subsets per size (default 1)")
    sp.add_argument("--view", default="flip", help="flip (paper) or vflip, rot15, scale")
    sp.add_argument("--json")
