"""The ``fyi`` command line.  One function per command; each prints a table and writes JSON.

Every user mistake ends with one line ``fyi: error: ...`` and exit code 2: argument
types and ranges are checked by :mod:`fyi_apps.validate` as they are parsed,
output targets before any compute starts.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import validate as V
from .errors import FyiError

GLOBAL_DEFAULTS = {"device": "auto", "seed": 0, "data_root": None, "out": "fyi-runs", "quiet": False}


class UsageError(FyiError):
    """A command-line argument argparse refused (unknown flag, missing or ill-typed value)."""


class Parser(argparse.ArgumentParser):
    """An ``argparse`` parser whose errors are one ``fyi: error:`` line (exit 2), not usage + message."""

    def error(self, message: str):  # type: ignore[override]
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _global_options() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("global options")
    g.add_argument("--device", default=argparse.SUPPRESS, help="auto (default), cpu or cuda")
    g.add_argument("--seed", type=V.non_negative_int, default=argparse.SUPPRESS, help="base random seed (default 0)")
    g.add_argument("--data-root", default=argparse.SUPPRESS,
                   help="folder holding the dataset files (default: $FYI_DATA, ./data, ../shared/data)")
    g.add_argument("--out", default=argparse.SUPPRESS, help="folder for results (default ./fyi-runs)")
    g.add_argument("--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress bars")
    return p


def _csv(text: str) -> list[str]:
    return [t.strip() for t in str(text).split(",") if t.strip()]


def _progress(args) -> bool:
    return not args.quiet


def _say(args, *lines: str) -> None:
    for line in lines:
        print(line, flush=True)


def _result_path(args, name: str, path: str | None = None) -> Path:
    """Where a command's JSON goes (``--json`` or OUT/<name>.json), checked writable before any compute."""
    target = Path(path) if path else Path(args.out) / f"{V.safe_name(name)}.json"
    return V.output_file(target, "results file")


def _write_result(args, name: str, payload: dict, path: str | None = None) -> Path:
    from .runtime import package_versions, write_json

    payload = {**payload, "command": " ".join(["fyi", *sys.argv[1:]]), "seed": args.seed,
               "versions": package_versions(), "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
    target = _result_path(args, name, path)
    write_json(target, payload, what="results file")
    print(f"results written to {target}")
    return target


def _load(args, name: str, extend_flip: bool = False):
    from .data import load_dataset

    return load_dataset(name, root=args.data_root, extend_flip=extend_flip)


def _existing(path: str, what: str = "file") -> Path:
    return V.existing_file(path, what)


# --------------------------------------------------------------------------- data
def cmd_data(args) -> None:
    from .data import dataset_info, list_datasets
    from .report import table

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
    ds = _load(args, args.name, extend_flip=args.extend_flip)
    info = ds.info
    _result_path(args, f"data-{info.name}")
    tr, te = ds.train.class_counts(), ds.test.class_counts()
    print(f"{info.name}: {ds.source}")
    print(f"train {tuple(ds.train.images.shape)} {ds.train.images.dtype}, test {tuple(ds.test.images.shape)}")
    print(f"mean {tuple(round(m, 4) for m in info.mean)}, std {tuple(round(s, 4) for s in info.std)}")
    rows = [[c, info.class_names[c], tr[c], te[c]] for c in range(info.num_classes)]
    if len(rows) > 20:
        rows = rows[:10] + [["...", "...", "...", "..."]] + rows[-5:]
    print(table(rows, ["label", "class", "train", "test"]))
    _write_result(args, f"data-{info.name}", {
        "dataset": info.name, "source": ds.source, "channels": info.channels, "image_size": info.image_size,
        "class_names": list(info.class_names), "train_counts": tr, "test_counts": te,
        "mean": list(info.mean), "std": list(info.std), "extend_flip": args.extend_flip,
    })


# --------------------------------------------------------------------------- baseline
def cmd_baseline(args) -> None:
    from .baselines import herding_subset, random_subset
    from .synset import save_synset

    if args.output:
        V.output_file(args.output, "synthetic-set file")
    ds = _load(args, args.dataset, extend_flip=args.extend_flip)
    out = args.output or str(Path(args.out) / f"{args.kind}_{V.safe_name(ds.info.name)}_ipc{args.ipc}_seed{args.seed}"
                                              ".safetensors")
    V.output_file(out, "synthetic-set file")
    if args.kind == "random":
        s = random_subset(ds, args.ipc, seed=args.seed)
    else:
        s = herding_subset(ds, args.ipc, seed=args.seed, arch=args.arch, feature_epochs=args.herding_epochs,
                           device=args.device, progress=_progress(args))
    digest = save_synset(out, s)
    print(f"{args.kind} subset of {ds.info.name}: {len(s.labels)} images ({args.ipc} per class) -> {out}")
    print(f"sha256 {digest}")


# --------------------------------------------------------------------------- eval
def _eval_config(args):
    from .evaluate import EvalConfig

    return EvalConfig(epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, dsa=not args.no_dsa,
                      dsa_mode=args.dsa_mode, bf16=args.bf16, channels_last=args.channels_last)


def _seed_list(args) -> list[int]:
    return list(range(args.seed, args.seed + args.seeds))


def _check_archs(archs, info) -> None:
    from .networks import create_model

    for a in archs:  # fail fast, before any training, on an unknown or unfit architecture
        create_model(a, channels=info.channels, num_classes=info.num_classes, image_size=info.image_size, seed=0)


def cmd_eval(args) -> None:
    from .baselines import herding_subset, random_subset
    from .evaluate import evaluate_full, evaluate_synset
    from .report import pct, table
    from .synset import load_synset

    archs = _csv(args.arch)
    if not archs:
        raise FyiError(f"--arch needs at least one architecture, got {args.arch!r}; e.g. --arch convnet")
    cfg = _eval_config(args)
    seeds = _seed_list(args)
    _result_path(args, "eval", args.json)
    for target in args.synsets:  # every file checked before the first training run
        if target.lower() not in ("random", "herding", "full"):
            _existing(target, "synthetic-set file")
    rows, results = [], {}
    for target in args.synsets:
        kind = target.lower()
        if kind in ("random", "herding", "full"):
            if not args.dataset:
                raise FyiError(f"`fyi eval {kind}` needs --dataset NAME (and --ipc N for random/herding)")
            ds = _load(args, args.dataset, extend_flip=args.extend_flip)
            _check_archs(archs, ds.info)
            if kind == "full":
                res = {a: evaluate_full(ds, arch=a, cfg=cfg, seeds=seeds, device=args.device,
                                        progress=_progress(args)) for a in archs}
                label = f"full {ds.info.name}"
            else:
                if not args.ipc:
                    raise FyiError(f"`fyi eval {kind}` needs --ipc N")
                per_seed = {}
                for s in seeds:  # a different subset for every seed, as papers report it
                    sub = (random_subset(ds, args.ipc, seed=s) if kind == "random" else
                           herding_subset(ds, args.ipc, seed=s, feature_epochs=args.herding_epochs,
                                          device=args.device, progress=_progress(args)))
                    r = evaluate_synset(sub, ds, archs=archs, cfg=cfg, seeds=[s], device=args.device,
                                        progress=_progress(args))
                    for a, v in r.items():
                        per_seed.setdefault(a, []).append(v)
                res = {}
                for a, vs in per_seed.items():
                    first = vs[0]
                    first.seeds = [s for v in vs for s in v.seeds]
                    first.accs = [x for v in vs for x in v.accs]
                    first.seconds_per_run = sum(v.seconds_per_run for v in vs) / len(vs)
                    res[a] = first
                label = f"{kind} ipc{args.ipc} {ds.info.name}"
        else:
            s = load_synset(_existing(target, "synthetic-set file"))
            ds = _load(args, args.dataset or s.dataset)
            _check_archs(archs, ds.info)
            res = evaluate_synset(s, ds, archs=archs, cfg=cfg, seeds=seeds, device=args.device,
                                  progress=_progress(args))
            label = f"{Path(target).name} ({s.method}{'+fyi' if s.fyi else ''}, ipc {s.ipc})"
        results[label] = {a: r.to_dict() for a, r in res.items()}
        for a, r in res.items():
            rows.append([label, a, pct(r.mean, r.std), len(r.accs), r.epochs, f"{r.seconds_per_run:.1f}"])
    print(table(rows, ["training set", "arch", "test acc %", "seeds", "epochs", "s/run"]))
    _write_result(args, "eval", {"results": results}, path=args.json)


# --------------------------------------------------------------------------- show / export / import
def cmd_show(args) -> None:
    from .synset import export_grid, load_synset

    s = load_synset(_existing(args.synset, "synthetic-set file"))
    out = args.output or str(Path(args.synset).with_suffix("").with_suffix("")) + ".png"
    V.output_file(out, "PNG file")
    export_grid(s, out, max_per_class=args.max_per_class)
    counts = s.images_per_class if hasattr(s, "images_per_class") else None
    print(f"{s.method}{' + FYI (' + s.fyi + ')' if s.fyi else ''} on {s.dataset}: {len(s.labels)} images, "
          f"ipc {s.ipc}, {s.channels}x{s.image_size}x{s.image_size}" + (f", per class {counts}" if counts else ""))
    print(f"grid written to {out}")


def cmd_export(args) -> None:
    from .synset import export_imagefolder, load_synset

    s = load_synset(_existing(args.synset, "synthetic-set file"))
    V.output_dir(args.folder, "export folder")
    try:
        out = export_imagefolder(s, args.folder)
    except OSError as e:
        from .runtime import write_failure

        raise write_failure(args.folder, e, "export folder") from None
    print(f"{len(s.labels)} PNG images written to {out}/<class>/")


def cmd_import(args) -> None:
    from .synset import import_synset, save_synset

    src = Path(args.path)
    if not src.exists():
        raise FyiError(f"path {src} does not exist; check the path to the file or folder to import")
    if args.output:
        V.output_file(args.output, "synthetic-set file")
    s = import_synset(src, format=args.format, dataset=args.dataset, trust=args.trust)
    out = args.output or str(Path(args.out) / f"imported_{V.safe_name(s.method)}_{V.safe_name(s.dataset)}_ipc{s.ipc}"
                                              ".safetensors")
    V.output_file(out, "synthetic-set file")
    digest = save_synset(out, s)
    print(f"imported {len(s.labels)} images ({s.method}, {s.dataset}, ipc {s.ipc}) -> {out} (sha256 {digest[:12]})")


# --------------------------------------------------------------------------- score
def cmd_score(args) -> None:
    from .report import table
    from .distill.score import unequalness, unequalness_curve
    from .synset import load_synset

    from .distill.fyi import FYIView

    distances = _csv(args.distance)
    for d in distances:
        V.choice(d, "--distance", ("dm", "dc"))
    FYIView(args.view)  # an unknown view fails before any network is built
    if args.synset:
        s = load_synset(_existing(args.synset, "synthetic-set file"))
        _result_path(args, f"score-{Path(args.synset).stem}", args.json)
        images, labels = s.decoded()
        rows, payload = [], {"synset": args.synset, "scores": {}}
        for d in distances:
            r = unequalness(images, labels, s.num_classes, distance=d, arch=args.arch, num_nets=args.nets,
                            seed=args.seed, view=args.view, device=args.device)
            rows.append([Path(args.synset).name, d, f"{r['score']:.6g}", f"{r['std_over_nets']:.3g}", args.nets])
            payload["scores"][d] = r
        print(table(rows, ["set", "distance", "D(S, flip S)", "std over nets", "nets"]))
        _write_result(args, f"score-{Path(args.synset).stem}", payload, path=args.json)
        return
    if not args.dataset:
        raise FyiError("`fyi score` needs a SYNSET file or --dataset NAME (for the real-subset curve)")
    ds = _load(args, args.dataset)
    from .distill.score import check_subset_sizes

    sizes = check_subset_sizes(ds, args.sizes)
    png = V.output_file(Path(args.out) / f"score-{V.safe_name(ds.info.name)}.png", "PNG file")
    _result_path(args, f"score-{ds.info.name}", args.json)
    payload, rows = {"dataset": ds.info.name, "curves": {}}, []
    for d in distances:
        curve = unequalness_curve(ds, sizes, distance=d, arch=args.arch, num_nets=args.nets,
                                  repeats=args.repeats, seed=args.seed, device=args.device)
        payload["curves"][d] = curve
        rows += [[d, r["ipc"], f"{r['score']:.6g}", f"{r['std']:.3g}"] for r in curve]
    print(table(rows, ["distance", "images/class", "D(R, flip R)", "std"]))
    from .plots import score_curve

    score_curve(payload["curves"], png, title=f"Unequalness of real {ds.info.name} subsets")
    print(f"plot written to {png}")
    _write_result(args, f"score-{ds.info.name}", payload, path=args.json)


# --------------------------------------------------------------------------- distill / quickstart
def cmd_quickstart(args) -> None:
    from .quickstart import run_quickstart

    V.output_dir(Path(args.out) / "quickstart", "--out folder")
    run_quickstart(out_dir=Path(args.out) / "quickstart", device=args.device, seed=args.seed,
                   progress=_progress(args), budget=args.budget)


def cmd_distill(args) -> None:
    from .distill.cli import run_distill_command

    run_distill_command(args)


def cmd_buffers(args) -> None:
    import dataclasses

    from .distill.experts import BufferConfig, default_buffer_dir, train_buffers
    from .report import table

    cfg = BufferConfig(
        dataset="", experts=args.experts, epochs=args.epochs, arch=args.arch, lr_teacher=args.lr_teacher,
        momentum=args.momentum, weight_decay=args.weight_decay, batch_size=args.batch_size, dsa=not args.no_dsa,
        dsa_mode=args.dsa_mode, zca=args.zca, zca_eps=args.zca_eps, flat=args.flat, rho=args.rho, alpha=args.alpha,
        adaptive=not args.no_adaptive, train_per_class=args.train_per_class, dtype=args.dtype, bf16=args.bf16,
        extend_flip=args.extend_flip, test_every=args.test_every, seed=args.seed,
    )
    cfg.check()  # bad numbers: fail before loading data
    ds = _load(args, args.dataset, extend_flip=args.extend_flip)
    cfg.dataset = ds.info.name
    out = Path(args.output) if args.output else default_buffer_dir(
        dataclasses.replace(cfg, dataset=V.safe_name(cfg.dataset)), args.out)
    V.output_dir(out, "expert folder")
    _check_archs([cfg.arch], ds.info)
    b = train_buffers(cfg, ds, out, device=args.device, progress=_progress(args),
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
          f"--buffers {out}")


def cmd_cl(args) -> None:
    from .tasks.continual.cli import run_cl_command

    run_cl_command(args)


def cmd_nas(args) -> None:
    from .tasks.nas import run_nas_command

    V.output_dir(args.out, "--out folder")
    run_nas_command(args)


def cmd_xarch(args) -> None:
    from .tasks.xarch import run_xarch_command

    V.output_dir(args.out, "--out folder")
    run_xarch_command(args)


# --------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    common = _global_options()
    p = Parser(
        prog="fyi", parents=[common],
        description="Dataset distillation with FYI (Flip Your Images) and its applications.",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def add(name, func, help_):
        sp = sub.add_parser(name, parents=[common], help=help_, description=help_)
        sp.set_defaults(func=func)
        return sp

    def add_eval_options(sp):
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

    sp = add("data", cmd_data, "list datasets, or check that one is readable and print its shape and class counts")
    sp.add_argument("name", nargs="?", help="dataset name (see `fyi data`)")
    sp.add_argument("--extend-flip", action="store_true", help="add the mirror of every training image (paper Sec. 4.3.4)")

    sp = add("baseline", cmd_baseline, "write a random or herding real subset as a synthetic-set file")
    sp.add_argument("--dataset", required=True)
    sp.add_argument("--ipc", type=V.positive_int, required=True, help="images per class")
    sp.add_argument("--kind", default="random", choices=["random", "herding"])
    sp.add_argument("--arch", default="convnet", help="feature network for herding")
    sp.add_argument("--herding-epochs", type=V.non_negative_int, default=1, help="epochs of full-data training for herding features (0: random network)")
    sp.add_argument("--extend-flip", action="store_true")
    sp.add_argument("-o", "--output", help="output file (default: OUT/<kind>_<dataset>_ipc<N>_seed<S>.safetensors)")

    sp = add("eval", cmd_eval, "evaluate synthetic sets (or random/herding/full real data) with the paper's protocol")
    sp.add_argument("synsets", nargs="+", metavar="SYNSET", help="synthetic-set file(s), or random, herding, full")
    sp.add_argument("--dataset", help="test dataset (default: the set's own)")
    sp.add_argument("--ipc", type=V.positive_int, help="images per class for random/herding")
    sp.add_argument("--herding-epochs", type=V.non_negative_int, default=1)
    sp.add_argument("--extend-flip", action="store_true", help="(random/herding/full) draw from the flip-extended training set")
    sp.add_argument("--json", help="where to write the JSON results (default OUT/eval.json)")
    add_eval_options(sp)

    sp = add("show", cmd_show, "save a PNG grid of a synthetic set (one row per class)")
    sp.add_argument("synset")
    sp.add_argument("-o", "--output", help="PNG path (default: next to the set)")
    sp.add_argument("--max-per-class", type=V.positive_int, default=10)

    sp = add("export", cmd_export, "export a synthetic set as an ImageFolder of PNGs")
    sp.add_argument("synset")
    sp.add_argument("folder")

    sp = add("import", cmd_import, "import res_*.pt (DC/DSA/DM), images_best.pt (MTT/DATM) or an ImageFolder")
    sp.add_argument("path")
    sp.add_argument("--format", default="auto", choices=["auto", "dc", "mtt", "imagefolder"])
    sp.add_argument("--dataset", help="dataset the images belong to (needed for ImageFolder; guessed for res_*.pt)")
    sp.add_argument("--trust", action="store_true",
                    help="allow full unpickling of res_*.pt / images_best.pt files that hold Python objects "
                         "(can run arbitrary code: only for files whose origin you trust)")
    sp.add_argument("-o", "--output")

    sp = add("score", cmd_score, "unequalness score D(R, flip(R)) of a synthetic set, or of real subsets of growing size")
    sp.add_argument("synset", nargs="?")
    sp.add_argument("--dataset", help="real data for the curve over subset sizes (paper Fig. 3)")
    sp.add_argument("--sizes", type=V.int_list_arg(1), default=[1, 2, 5, 10, 20, 50, 100],
                    help="images per class for the curve (comma-separated, default 1,2,5,10,20,50,100)")
    sp.add_argument("--distance", default="dm", help="dm, dc or dm,dc")
    sp.add_argument("--arch", default="convnet")
    sp.add_argument("--nets", type=V.positive_int, default=5, help="randomly initialised networks to average over")
    sp.add_argument("--repeats", type=V.positive_int, default=1, help="random subsets per size")
    sp.add_argument("--view", default="flip", help="flip (paper) or vflip, rot15, scale")
    sp.add_argument("--json")

    sp = add("quickstart", cmd_quickstart, "a 5-minute tour on the bundled digits: DM vs DM+FYI vs random, with a report")
    sp.add_argument("--budget", default="quick", choices=["quick", "tiny"], help="tiny is for smoke tests")

    from .distill.cli import add_distill_arguments

    sp = add("distill", cmd_distill, "distil a synthetic set (dc, dsa, dm, idc, mtt, ftd), optionally with FYI")
    add_distill_arguments(sp)

    sp = add("buffers", cmd_buffers, "train expert trajectories for MTT/FTD (resumable: rerun the same command)")
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
    sp.add_argument("-o", "--output", help="folder (default OUT/buffers/<dataset>_<arch>[_zca][_flat]_seed<S>)")

    from .tasks.nas import add_nas_arguments
    from .tasks.xarch import add_xarch_arguments

    from .tasks.continual.cli import add_cl_arguments

    sp = add("cl", cmd_cl, "continual learning: synthetic sets as Avalanche replay memories on Split benchmarks")
    add_cl_arguments(sp)

    sp = add("nas", cmd_nas, "rank architectures on a proxy (synthetic set or real subset) against a ground truth; "
                             "resumable, --workers N or torchrun")
    add_nas_arguments(sp)
    sp = add("xarch", cmd_xarch, "cross-architecture matrix: train every set on every architecture (paper Table 3)")
    add_xarch_arguments(sp)
    return p


def main(argv: list[str] | None = None) -> int:
    import warnings

    # Avalanche imports qpsolvers, which warns on stderr that it found no QP solver (only Avalanche's GEM
    # would need one): not something a fyi user can act on, and it would break the one-line error rule.
    warnings.filterwarnings("ignore", message="no QP solver found", category=UserWarning)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except FyiError as e:
        print(f"fyi: error: {e}", file=sys.stderr)
        return 2
    for k, v in GLOBAL_DEFAULTS.items():
        if not hasattr(args, k):
            setattr(args, k, v)
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    try:
        from .runtime import resolve_device

        args.device = str(resolve_device(args.device))
        args.func(args)
    except FyiError as e:
        print(f"fyi: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fyi: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `fyi ... | head`: the reader went away; stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
