"""``fyi data`` (list or check datasets) and ``fyi baseline`` (random / herding real subsets)."""
from __future__ import annotations

import argparse
from pathlib import Path

from .. import validate as V
from ..errors import FyiError
from .common import load, progress, refuse_unread, result_path, write_result


def cmd_data(args) -> None:
    from ..data import dataset_info, list_datasets
    from ..report import table

    if args.name is not None and not str(args.name).strip():
        raise FyiError("empty dataset name; give a name from `fyi data` (e.g. cifar10) or leave it out to list them")
    if not args.name:
        rows = []
        for name in list_datasets():
            try:
                info = dataset_info(name, root=args.data_root)
                rows.append([name, info.channels, info.image_size, info.num_classes])
            except FyiError:
                rows.append([name, "?", "?", "?"])
        print(table(rows, ["dataset", "channels", "size", "classes"]))
        print("\n`fyi data NAME` checks that a dataset is readable; see the README for where files go.")
        return
    V.output_dir(args.out, "--out folder")
    ds = load(args, args.name, extend_flip=args.extend_flip)
    info = ds.info
    result_path(args, f"data-{info.name}")
    tr, te = ds.train.class_counts(), ds.test.class_counts()
    print(f"{info.name}: {ds.source}")
    print(f"train {tuple(ds.train.images.shape)} {ds.train.images.dtype}, test {tuple(ds.test.images.shape)}")
    print(f"mean {tuple(round(m, 4) for m in info.mean)}, std {tuple(round(s, 4) for s in info.std)}")
    rows = [[c, info.class_names[c], tr[c], te[c]] for c in range(info.num_classes)]
    if len(rows) > 20:
        rows = rows[:10] + [["...", "...", "...", "..."]] + rows[-5:]
    print(table(rows, ["label", "class", "train", "test"]))
    write_result(args, f"data-{info.name}", {
        "dataset": info.name, "source": ds.source, "channels": info.channels, "image_size": info.image_size,
        "class_names": list(info.class_names), "train_counts": tr, "test_counts": te,
        "mean": list(info.mean), "std": list(info.std), "extend_flip": args.extend_flip,
    })


# --------------------------------------------------------------------------- baseline
def cmd_baseline(args) -> None:
    from ..baselines import herding_subset, random_subset
    from ..synset import save_synset

    if args.kind == "random":  # no feature network to choose
        refuse_unread({"--arch": args.arch, "--herding-epochs": args.herding_epochs},
                      "a random subset trains no feature network (--kind herding does)")
    arch = args.arch or "convnet"
    herding_epochs = 1 if args.herding_epochs is None else args.herding_epochs
    if args.output:
        V.output_file(args.output, "synthetic-set file")
    ds = load(args, args.dataset, extend_flip=args.extend_flip)
    out = args.output or str(Path(args.out) / f"{args.kind}_{V.safe_name(ds.info.name)}_ipc{args.ipc}_seed{args.seed}"
                                              ".safetensors")
    V.output_file(out, "synthetic-set file")
    if args.kind == "random":
        s = random_subset(ds, args.ipc, seed=args.seed)
    else:
        s = herding_subset(ds, args.ipc, seed=args.seed, arch=arch, feature_epochs=herding_epochs,
                           device=args.device, progress=progress(args))
    digest = save_synset(out, s)
    print(f"{args.kind} subset of {ds.info.name}: {len(s.labels)} images ({args.ipc} per class) -> {out}")
    print(f"sha256 {digest}")


def add_data_arguments(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("name", nargs="?", help="dataset name (see `fyi data`)")
    sp.add_argument("--extend-flip", action="store_true", help="add the mirror of every training image (paper Sec. 4.3.4)")


def add_baseline_arguments(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--dataset", required=True)
    sp.add_argument("--ipc", type=V.positive_int, required=True, help="images per class")
    sp.add_argument("--kind", default="random", choices=["random", "herding"])
    sp.add_argument("--arch", help="feature network for herding (default convnet)")
    sp.add_argument("--herding-epochs", type=V.non_negative_int,
                    help="epochs of full-data training for herding features (0: random network; default 1)")
    sp.add_argument("--extend-flip", action="store_true")
    sp.add_argument("-o", "--output", help="output file (default: OUT/<kind>_<dataset>_ipc<N>_seed<S>.safetensors)")
