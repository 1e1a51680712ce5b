"""``fyi quickstart``: a few minutes on scikit-learn's bundled digits, no download.

Distils DM and DM+FYI (and DM on the flip-extended training set, the
alternative FYI is compared with in the paper's Sec. 4.3.4), evaluates each
against a random real subset of the same size with the paper's protocol, and
writes a short report (Markdown table, JSON, PNG grids, unequalness scores)
under ``./fyi-runs/quickstart/``.
"""
from __future__ import annotations

import time
from pathlib import Path

BUDGETS = {
    # iterations of DM, evaluation epochs, evaluation seeds
    "quick": {"iterations": 200, "batch_real": 64, "epochs": 200, "seeds": 3, "ipc": 10},
    "tiny": {"iterations": 10, "batch_real": 32, "epochs": 10, "seeds": 1, "ipc": 2},
}


def run_quickstart(out_dir: str | Path = "fyi-runs/quickstart", *, device: str = "auto", seed: int = 0,
                   progress: bool = True, budget: str = "quick") -> dict:
    import torch

    threads = torch.get_num_threads()
    if str(device) == "cpu" or (str(device) == "auto" and not torch.cuda.is_available()):
        torch.set_num_threads(1)  # 8x8 images: one thread beats two and cannot be oversubscribed
    try:
        return _run(out_dir, device=device, seed=seed, progress=progress, budget=budget)
    finally:
        torch.set_num_threads(threads)


def _run(out_dir, *, device, seed, progress, budget) -> dict:
    from .baselines import random_subset
    from .data import load_dataset
    from .distill import DistillConfig, Distiller
    from .evaluate import EvalConfig, evaluate_synset
    from .report import pct, table
    from .runtime import package_versions, write_json
    from .score import unequalness
    from .synset import export_grid, save_synset

    b = BUDGETS[budget]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    ds = load_dataset("digits")
    ds_flip = load_dataset("digits", extend_flip=True)
    ipc = b["ipc"]
    print(f"fyi quickstart: {ds.info.name} ({len(ds.train)} train / {len(ds.test)} test images, "
          f"{ds.info.channels}x{ds.info.image_size}x{ds.info.image_size}), IPC {ipc}, budget '{budget}'")

    runs = {"random": (random_subset(ds, ipc, seed=seed), ds)}
    for label, fyi, data in (("dm", None, ds), ("dm+fyi", "flip", ds), ("dm on flip-extended data", None, ds_flip)):
        cfg = DistillConfig(method="dm", dataset="digits", ipc=ipc, fyi=fyi, iterations=b["iterations"], seed=seed,
                            batch_real=b["batch_real"], extend_flip=data is ds_flip)
        runs[label] = (Distiller(cfg, data, device=device).run(progress=progress), ds)

    ecfg = EvalConfig(epochs=b["epochs"])
    seeds = list(range(seed, seed + b["seeds"]))
    rows, results = [], {}
    for label, (s, test_ds) in runs.items():
        tag = label.replace(" ", "_").replace("+", "_")
        save_synset(out / f"{tag}.safetensors", s)
        export_grid(s, out / f"{tag}.png")
        res = evaluate_synset(s, test_ds, cfg=ecfg, seeds=seeds, device=device, progress=progress)["convnet"]
        images, labels = s.decoded()
        score = unequalness(images, labels, s.num_classes, distance="dm", num_nets=3, seed=seed, device=device)["score"]
        results[label] = {"eval": res.to_dict(), "unequalness_dm": score, "file": f"{tag}.safetensors"}
        rows.append([label, pct(res.mean, res.std), f"{score:.4g}", f"{tag}.png"])
        print(f"  {label:<26} {pct(res.mean, res.std)} %   D(S, flip S) = {score:.4g}")

    headers = ["training set (IPC %d)" % ipc, "test acc % (mean +- std)", "unequalness D(S, flip S)", "grid"]
    md = table(rows, headers, markdown=True)
    elapsed = time.perf_counter() - t_start
    report = (
        "# fyi quickstart\n\n"
        f"Dataset: scikit-learn digits ({len(ds.train)} train / {len(ds.test)} test), IPC {ipc}. "
        f"DM: {b['iterations']} iterations, {b['batch_real']} real images per class. Evaluation: ConvNet-3, {b['epochs']} epochs, seeds {seeds}, DSA.\n\n"
        f"{md}\n\nWall time: {elapsed:.0f} s. Command: `fyi quickstart --budget {budget} --seed {seed}`.\n"
    )
    (out / "report.md").write_text(report)
    payload = {"budget": b, "seeds": seeds, "results": results, "seconds": elapsed, "versions": package_versions()}
    write_json(out / "report.json", payload)
    print()
    print(table(rows, headers))
    print(f"\nreport: {out / 'report.md'} ({elapsed:.0f} s)")
    return payload
