"""``fyi quickstart``: a few minutes on scikit-learn's bundled digits, no download.

Distils DM and DM+FYI (and DM on the flip-extended training set, the
alternative FYI is compared with in the paper's Sec. 4.3.4) at one image per
class, where distillation clearly beats a random real subset, evaluates each
with the paper's protocol beside random real subsets of the same size (a
different subset per evaluation seed), and writes a short report (Markdown
table, one sentence saying what the numbers show, JSON, PNG grids, unequalness
scores) under ``./fyi-runs/quickstart/``.
"""
from __future__ import annotations

import time
from pathlib import Path

BUDGETS = {
    # images per class, DM iterations and real images per class per iteration, evaluation epochs and seeds
    "quick": {"ipc": 1, "iterations": 1000, "batch_real": 64, "epochs": 300, "seeds": 3},
    "tiny": {"ipc": 1, "iterations": 10, "batch_real": 32, "epochs": 10, "seeds": 2},
}
BUDGET_KEYS = ("ipc", "iterations", "batch_real", "epochs", "seeds")

RANDOM, DM, FYI, FLIPEXT = "random", "dm", "dm+fyi", "dm on flip-extended data"


def _budget(budget: str | dict) -> dict:
    from .errors import FyiError

    if isinstance(budget, str):
        if budget not in BUDGETS:
            raise FyiError(f"unknown quickstart budget {budget!r}; use one of {', '.join(BUDGETS)}")
        return dict(BUDGETS[budget])
    missing = [k for k in BUDGET_KEYS if k not in budget]
    extra = [k for k in budget if k not in BUDGET_KEYS]
    if missing or extra or not all(isinstance(budget[k], int) and budget[k] >= 1 for k in BUDGET_KEYS):
        raise FyiError(f"a quickstart budget needs positive integers for exactly {', '.join(BUDGET_KEYS)}; "
                       f"got {budget!r}")
    return dict(budget)


def run_quickstart(out_dir: str | Path = "fyi-runs/quickstart", *, device: str = "auto", seed: int = 0,
                   progress: bool = True, budget: str | dict = "quick") -> dict:
    """Run the tour; ``budget`` is a name of :data:`BUDGETS` or a dict with the keys :data:`BUDGET_KEYS`."""
    import torch

    b = _budget(budget)
    threads = torch.get_num_threads()
    if str(device) == "cpu" or (str(device) == "auto" and not torch.cuda.is_available()):
        torch.set_num_threads(1)  # 8x8 images: one thread beats two and cannot be oversubscribed
    try:
        return _run(out_dir, device=device, seed=seed, progress=progress, budget=b,
                    name=budget if isinstance(budget, str) else "custom")
    finally:
        torch.set_num_threads(threads)


def _mean_std(accs: list[float]) -> tuple[float, float]:
    m = sum(accs) / len(accs)
    return m, (sum((a - m) ** 2 for a in accs) / len(accs)) ** 0.5


def reading(results: dict, ipc: int) -> str:
    """One sentence on what the table shows, from ``results[label]["mean"/"std"]`` (fractions) at ``ipc``.

    "Ahead" and "separates" mean a difference of means larger than the larger
    of the two standard deviations; otherwise the sentence says "level" or
    "does not separate", with the difference.
    """
    def pts(x: float) -> str:
        return f"{100 * abs(x):.1f}"

    def signed(x: float) -> str:
        return f"{100 * x:+.1f}"

    r, dm, fy = results[RANDOM], results[DM], results[FYI]

    def status(x: dict) -> str:
        d, sd = x["mean"] - r["mean"], max(x["std"], r["std"])
        return "ahead of" if d > sd else "behind" if d < -sd else "level with"

    def gap(name: str, x: dict) -> str:
        return f"{name} ({signed(x['mean'] - r['mean'])} points)"

    qualifier = {"ahead of": " by more than one std", "behind": " by more than one std",
                 "level with": " (within one std)"}
    if status(dm) == status(fy):
        head = f"{gap('DM', dm)} and {gap('DM+FYI', fy)} are {status(dm)} random real images{qualifier[status(dm)]}"
    else:
        head = (f"{gap('DM', dm)} is {status(dm)} random real images{qualifier[status(dm)]} and "
                f"{gap('DM+FYI', fy)} is {status(fy)} them{qualifier[status(fy)]}")
    d, spread = fy["mean"] - dm["mean"], max(fy["std"], dm["std"])
    if abs(d) <= spread:
        fyi_part = f"FYI does not separate from DM at this budget ({signed(d)} points, within one std)"
    elif d > 0:
        fyi_part = f"FYI adds {pts(d)} points to DM (more than one std)"
    else:
        fyi_part = f"FYI costs DM {pts(d)} points at this budget (more than one std)"
    sentence = f"At {ipc} image{'s' if ipc > 1 else ''} per class {head}; {fyi_part}"
    if FLIPEXT in results:
        e = results[FLIPEXT]["mean"] - dm["mean"]
        sentence += (f"; distilling from the flip-extended data instead of flipping S "
                     f"{'costs' if e < 0 else 'gives'} DM {pts(e)} points")
    return sentence + "."


def _run(out_dir, *, device, seed, progress, budget, name) -> dict:
    from .baselines import random_subset
    from .data import load_dataset
    from .distill import DistillConfig, Distiller
    from .evaluate import EvalConfig, evaluate_synset
    from .report import pct, table
    from .runtime import atomic_path, package_versions, write_json
    from .distill.score import unequalness
    from .synset import export_grid, save_synset

    b = budget
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    ds = load_dataset("digits")
    ds_flip = load_dataset("digits", extend_flip=True)
    ipc = b["ipc"]
    print(f"fyi quickstart: {ds.info.name} ({len(ds.train)} train / {len(ds.test)} test images, "
          f"{ds.info.channels}x{ds.info.image_size}x{ds.info.image_size}), IPC {ipc}, budget '{name}'")
    seeds = list(range(seed, seed + b["seeds"]))
    ecfg = EvalConfig(epochs=b["epochs"])

    # label -> [(set, evaluation seeds)]: one random subset per seed, one distilled set for all seeds
    runs = {RANDOM: [(random_subset(ds, ipc, seed=s), [s]) for s in seeds]}
    for label, fyi, data in ((DM, None, ds), (FYI, "flip", ds), (FLIPEXT, None, ds_flip)):
        cfg = DistillConfig(method="dm", dataset="digits", ipc=ipc, fyi=fyi, iterations=b["iterations"], seed=seed,
                            batch_real=b["batch_real"], extend_flip=data is ds_flip)
        runs[label] = [(Distiller(cfg, data, device=device).run(progress=progress), seeds)]

    rows, results = [], {}
    for label, sets in runs.items():
        tag = label.replace(" ", "_").replace("+", "_")
        accs, scores, evals = [], [], []
        for s, eval_seeds in sets:
            res = evaluate_synset(s, ds, cfg=ecfg, seeds=eval_seeds, device=device, progress=progress)["convnet"]
            accs += res.accs
            evals.append(res.to_dict())
            images, labels = s.decoded()
            scores.append(unequalness(images, labels, s.num_classes, distance="dm", num_nets=3, seed=seed,
                                      device=device)["score"])
        first = sets[0][0]  # the file and grid of the row (random: the subset of the first seed)
        save_synset(out / f"{tag}.safetensors", first)
        export_grid(first, out / f"{tag}.png")
        mean, std = _mean_std(accs)
        score = sum(scores) / len(scores)
        results[label] = {"mean": mean, "std": std, "accs": accs, "seeds": seeds, "eval": evals,
                          "unequalness_dm": score, "file": f"{tag}.safetensors"}
        rows.append([label, pct(mean, std), f"{score:.4g}", f"{tag}.png"])
        print(f"  {label:<26} {pct(mean, std)} %   D(S, flip S) = {score:.4g}")

    sentence = reading(results, ipc)
    headers = ["training set (IPC %d)" % ipc, "test acc % (mean +- std)", "unequalness D(S, flip S)", "grid"]
    md = table(rows, headers, markdown=True)
    elapsed = time.perf_counter() - t_start
    command = f"fyi quickstart --budget {name} --seed {seed}" if name != "custom" else "run_quickstart(budget=...)"
    report = (
        "# fyi quickstart\n\n"
        f"Dataset: scikit-learn digits ({len(ds.train)} train / {len(ds.test)} test), IPC {ipc}. "
        f"DM: {b['iterations']} iterations, {b['batch_real']} real images per class, distillation seed {seed}. "
        f"Evaluation: ConvNet-3, {b['epochs']} epochs, DSA, seeds {seeds}; random: a different subset per seed "
        "(its unequalness is the mean over the subsets).\n\n"
        f"{md}\n\n{sentence}\n\nWall time: {elapsed:.0f} s. Command: `{command}`.\n"
    )
    with atomic_path(out / "report.md", "quickstart report") as tmp:
        tmp.write_text(report)
    payload = {"budget": b, "budget_name": name, "seeds": seeds, "results": results, "reading": sentence,
               "seconds": elapsed, "command": command, "versions": package_versions()}
    write_json(out / "report.json", payload)
    print()
    print(table(rows, headers))
    print(f"\n{sentence}")
    print(f"\nreport: {out / 'report.md'} ({elapsed:.0f} s)")
    return payload


# --------------------------------------------------------------------------- the command
def add_quickstart_arguments(sp) -> None:
    sp.add_argument("--budget", default="quick", choices=["quick", "tiny"], help="tiny is for smoke tests")


def run_quickstart_command(args) -> None:
    """``fyi quickstart``: the tour, written under OUT/quickstart."""
    from . import validate as V

    V.output_dir(Path(args.out) / "quickstart", "--out folder")
    run_quickstart(out_dir=Path(args.out) / "quickstart", device=args.device, seed=args.seed,
                   progress=not args.quiet, budget=args.budget)
