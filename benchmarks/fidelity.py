"""Fidelity at CPU budget: DM, DSA, DC with and without FYI on CIFAR-10 (JPEG copy), IPC 1 and 10.

Each synthetic set is distilled with a reduced budget (stated in the output),
evaluated with the paper's protocol at a reduced number of epochs and seeds, and
printed beside the paper's Table 1 and a random real subset of the same size.
Every distilled set and every evaluation is kept under ``--work`` so an
interrupted run continues where it stopped (distillations also resume from their
checkpoints).

    python -m benchmarks.fidelity                 # the README's table (hours on 2 cores; see --help)
    python -m benchmarks.fidelity --quick         # minutes: digits, tiny budgets
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

PAPER = {  # FYI paper, Table 1, CIFAR-10, ConvNet-3: (IPC 1, IPC 10)
    "dc": (28.3, 44.9), "dc+fyi": (30.0, 49.5),
    "dsa": (28.8, 52.1), "dsa+fyi": (30.6, 54.7),
    "dm": (26.0, 48.9), "dm+fyi": (28.7, 53.1),
}


def _label(method: str, fyi: bool) -> str:
    return method + ("+fyi" if fyi else "")


def _per_ipc(text: str, ipcs: list[int], flag: str) -> dict[int, int]:
    vals = [int(v) for v in str(text).split(",")]
    if len(vals) == 1:
        vals = vals * len(ipcs)
    if len(vals) != len(ipcs):
        raise SystemExit(f"{flag} takes one value or one per IPC ({len(ipcs)}), got {text!r}")
    return dict(zip(ipcs, vals))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="cifar10")
    p.add_argument("--methods", default="dm,dsa,dc")
    p.add_argument("--ipcs", default="1,10")
    p.add_argument("--dm-iterations", default="1000", help="DM iterations, one value or one per IPC (e.g. 500,300)")
    p.add_argument("--dc-iterations", default="100", help="DC/DSA outer iterations, one value or one per IPC")
    p.add_argument("--dc-loops", default="", help="cap DC/DSA's (outer,inner) loops, e.g. 5,10 (IPC 1 keeps its 1,1)")
    p.add_argument("--batch-real", type=int, default=256)
    p.add_argument("--eval-epochs", type=int, default=300)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--seed", type=int, default=0, help="distillation seed")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast + channels_last in distillation and evaluation")
    p.add_argument("--dsa-mode", default="single", choices=["single", "fyi", "all"],
                   help="DSA in distillation and evaluation: single (one random operation, DSA/DM's code) or fyi "
                        "(a random flip plus one other operation, the FYI code's change)")
    p.add_argument("--device", default="auto")
    p.add_argument("--work", default="benchmarks/results/fidelity", help="folder for sets and cached evaluations")
    p.add_argument("--json", default=None, help="result JSON (default WORK/fidelity.json)")
    p.add_argument("--no-random", action="store_true",
                   help="skip the random baseline (another process sharing --work computes it)")
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        args.dataset, args.dm_iterations, args.dc_iterations, args.eval_epochs, args.seeds = "digits", "20", "2", 20, 1
        args.dc_loops, args.batch_real = "2,2", 64
        args.work = str(Path(args.work).with_name(Path(args.work).name + "-quick"))

    from fyi_apps.baselines import random_subset
    from fyi_apps.data import load_dataset
    from fyi_apps.distill import DistillConfig, Distiller
    from fyi_apps.distill.presets import dc_loops
    from fyi_apps.evaluate import EvalConfig, evaluate_synset
    from fyi_apps.report import pct, table
    from fyi_apps.runtime import package_versions, write_json
    from fyi_apps.distill.score import unequalness
    from fyi_apps.synset import load_synset

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    ds = load_dataset(args.dataset)
    ecfg = EvalConfig(epochs=args.eval_epochs, bf16=args.bf16, channels_last=args.bf16, dsa_mode=args.dsa_mode)
    mode_tag = "" if args.dsa_mode == "single" else f"_dsa{args.dsa_mode}"  # the default keeps its file names
    seeds = list(range(args.seeds))
    ipcs = [int(i) for i in args.ipcs.split(",")]
    dm_its = _per_ipc(args.dm_iterations, ipcs, "--dm-iterations")
    dc_its = _per_ipc(args.dc_iterations, ipcs, "--dc-iterations")
    budget = {"dm_iterations": dm_its, "dc_iterations": dc_its, "dc_loops": args.dc_loops or "preset",
              "batch_real": args.batch_real, "eval_epochs": args.eval_epochs, "eval_seeds": seeds,
              "distill_seed": args.seed, "bf16": args.bf16, "dsa_mode": args.dsa_mode, "dataset": ds.info.name,
              "source": ds.source}
    print(f"budget: {json.dumps(budget)}", flush=True)

    eval_budget = {"eval_epochs": args.eval_epochs, "seeds": seeds, "bf16": args.bf16, "data": ds.source}
    if args.dsa_mode != "single":
        eval_budget["dsa_mode"] = args.dsa_mode

    def evaluated(tag: str, make_set, distill_budget: dict):
        # the file name carries a hash of the budget: a different budget never reuses a stale result
        key = hashlib.sha256(json.dumps([eval_budget, distill_budget], sort_keys=True).encode()).hexdigest()[:10]
        cache = work / f"{tag}_{key}.eval.json"
        if cache.exists():
            return json.loads(cache.read_text())
        s = make_set()
        t = time.perf_counter()
        r = evaluate_synset(s, ds, cfg=ecfg, seeds=seeds, device=args.device, progress=True)["convnet"]
        images, labels = s.decoded()
        score = unequalness(images, labels, s.num_classes, num_nets=3, device=args.device)["score"]
        out = {"tag": tag, "mean": r.mean, "std": r.std, "accs": r.accs, "eval_seconds": time.perf_counter() - t,
               "unequalness_dm": score, "distill_seconds": s.extra.get("seconds"),
               "iterations": s.config.get("iterations"), "final_loss": s.extra.get("final_loss")}
        write_json(cache, out)
        return out

    results: dict = {}
    for ipc in ipcs:
        if not args.no_random:
            results[f"random ipc{ipc}"] = evaluated(f"random_ipc{ipc}", lambda: random_subset(ds, ipc, seed=args.seed),
                                                    {"seed": args.seed})
            print(f"random ipc {ipc}: {pct(results[f'random ipc{ipc}']['mean'], results[f'random ipc{ipc}']['std'])}",
                  flush=True)
        for method in args.methods.split(","):
            for fyi in (False, True):
                tag = f"{_label(method, fyi).replace('+', '-')}_ipc{ipc}"
                opts = {}
                if method in ("dc", "dsa") and args.dc_loops:
                    o, i = (int(v) for v in args.dc_loops.split(","))
                    po, pi = dc_loops(ipc)
                    opts = {"outer_loop": min(o, po), "inner_loop": min(i, pi)}
                its = dm_its[ipc] if method == "dm" else dc_its[ipc]
                dbudget = {"iterations": its, "options": opts, "batch_real": args.batch_real, "seed": args.seed}
                set_path = work / f"{tag}_{its}it_b{args.batch_real}{mode_tag}.safetensors"

                def make(method=method, fyi=fyi, set_path=set_path, its=its, opts=opts):
                    if set_path.exists():
                        return load_synset(set_path)
                    cfg = DistillConfig(method=method, dataset=args.dataset, ipc=ipc, fyi="flip" if fyi else None,
                                        iterations=its, batch_real=args.batch_real, seed=args.seed, bf16=args.bf16,
                                        channels_last=args.bf16, checkpoint_every=10, options=opts,
                                        dsa_mode=args.dsa_mode)
                    return Distiller(cfg, ds, device=args.device).run(set_path, resume=True, progress=True)

                r = evaluated(tag, make, dbudget)
                results[f"{_label(method, fyi)} ipc{ipc}"] = r
                print(f"{_label(method, fyi)} ipc {ipc}: {pct(r['mean'], r['std'])} "
                      f"(distill {r['distill_seconds'] or 0:.0f} s, D(S,flip S) {r['unequalness_dm']:.4g})", flush=True)

    rows = []
    for method in ["random", *[_label(m, f) for m in args.methods.split(",") for f in (False, True)]]:
        row = [method]
        for ipc in ipcs:
            r = results.get(f"{method} ipc{ipc}")
            row.append(pct(r["mean"], r["std"]) if r else "-")
            paper = PAPER.get(method)
            row.append(f"{paper[[1, 10].index(ipc)]:.1f}" if paper and ipc in (1, 10) else "-")
        rows.append(row)
    headers = ["method"] + [h for ipc in ipcs for h in (f"IPC {ipc} (ours, %)", f"IPC {ipc} (paper)")]
    print()
    print(table(rows, headers))
    md = table(rows, headers, markdown=True)
    out = Path(args.json) if args.json else work / "fidelity.json"
    write_json(out, {"command": "python " + " ".join(sys.argv), "budget": budget, "results": results,
                     "paper_table1": PAPER, "markdown": md, "versions": package_versions()})
    print(f"\n{md}\n\nwritten {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
