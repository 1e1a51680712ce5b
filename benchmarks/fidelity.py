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

import json
import sys
from pathlib import Path

from benchmarks import harness as H
from fyi_apps.augment import MODES

FULL = dict(dataset="cifar10", dm_iterations="1000", dc_iterations="100", dc_loops="", batch_real=256,
            eval_epochs=300, seeds=3)
QUICK = dict(dataset="digits", dm_iterations="20", dc_iterations="2", dc_loops="2,2", batch_real=64, eval_epochs=20,
             seeds=1)
MATCHING = ("dc", "dsa", "dm")  # the methods of this benchmark, in Table 1's order


def _label(method: str, fyi: bool) -> str:
    return method + ("+fyi" if fyi else "")


@H.reports_errors("fidelity")
def main(argv=None) -> int:
    p = H.parser(__doc__)
    p.add_argument("--methods", default="dm,dsa,dc")
    p.add_argument("--dm-iterations", help="DM iterations: N, one per IPC (e.g. 500,300) or IPC:N pairs")
    p.add_argument("--dc-iterations", help="DC/DSA outer iterations: N, one per IPC or IPC:N pairs")
    p.add_argument("--dc-loops", help="cap DC/DSA's (outer,inner) loops, e.g. 5,10 (IPC 1 keeps its 1,1)")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast + channels_last in distillation and evaluation")
    p.add_argument("--dsa-mode", default="single", choices=MODES,
                   help="DSA in distillation and evaluation: single (one random operation, DSA/DM's code) or fyi "
                        "(a random flip plus one other operation, the FYI code's change)")
    p.add_argument("--work", default="benchmarks/results/fidelity", help="folder for sets and cached evaluations")
    p.add_argument("--json", default=None, help="result JSON (default WORK/fidelity.json)")
    p.add_argument("--no-random", action="store_true",
                   help="skip the random baseline (another process sharing --work computes it)")
    H.add_common_arguments(p, "quick", "dataset", "device", "seed", "ipcs", "batch_real", "eval_epochs", seeds={})
    args = H.apply_preset(p.parse_args(argv), FULL, QUICK)
    args.work = H.quick_path(args.work, args.quick)

    import fyi_apps as fyi
    from fyi_apps.baselines import random_subset
    from fyi_apps.distill import resolve_config
    from fyi_apps.report import pct

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    ds = fyi.load_dataset(args.dataset)
    ecfg = fyi.EvalConfig(epochs=args.eval_epochs, bf16=args.bf16, channels_last=args.bf16, dsa_mode=args.dsa_mode)
    mode_tag = "" if args.dsa_mode == "single" else f"_dsa{args.dsa_mode}"  # the default keeps its file names
    seeds = list(range(args.seeds))
    ipcs = H.int_list(args.ipcs, "--ipcs")
    methods = H.names(args.methods)
    dm_its = H.per_ipc(args.dm_iterations, ipcs, "--dm-iterations")
    dc_its = H.per_ipc(args.dc_iterations, ipcs, "--dc-iterations")
    budget = {"dm_iterations": dm_its, "dc_iterations": dc_its, "dc_loops": args.dc_loops or "preset",
              "batch_real": args.batch_real, "eval_epochs": args.eval_epochs, "eval_seeds": seeds,
              "distill_seed": args.seed, "bf16": args.bf16, "dsa_mode": args.dsa_mode, "dataset": ds.info.name,
              "source": ds.source}
    print(f"budget: {json.dumps(budget)}", flush=True)

    eval_budget = {"eval_epochs": args.eval_epochs, "seeds": seeds, "bf16": args.bf16, "data": ds.source}
    if args.dsa_mode != "single":
        eval_budget["dsa_mode"] = args.dsa_mode
    cache = H.RecordCache(work, suffix=".eval.json", what="cached evaluation")

    def evaluated(tag: str, make_set, distill_budget: dict):
        # the file name carries a hash of the budget: a different budget never reuses a stale result
        key = H.cache_key([eval_budget, distill_budget], 10, separators=(", ", ": "))

        def compute() -> dict:
            s = make_set()
            return {"tag": tag, "iterations": s.config.get("iterations"),
                    **H.evaluation_record(s, ds, ecfg, seeds, args.device)}

        return cache.fetch(f"{tag}_{key}", compute)

    results: dict = {}
    for ipc in ipcs:
        if not args.no_random:
            r = results[f"random ipc{ipc}"] = evaluated(f"random_ipc{ipc}", lambda: random_subset(ds, ipc, seed=args.seed),
                                                        {"seed": args.seed})
            print(f"random ipc {ipc}: {pct(r['mean'], r['std'])}", flush=True)
        for method in methods:
            for fyi_on in (False, True):
                tag = f"{_label(method, fyi_on).replace('+', '-')}_ipc{ipc}"
                opts = {}
                if method in ("dc", "dsa") and args.dc_loops:
                    o, i = H.int_pair(args.dc_loops, "--dc-loops")
                    preset = resolve_config(fyi.DistillConfig(method=method, dataset=args.dataset, ipc=ipc)).options
                    opts = {"outer_loop": min(o, preset["outer_loop"]), "inner_loop": min(i, preset["inner_loop"])}
                its = dm_its[ipc] if method == "dm" else dc_its[ipc]
                dbudget = {"iterations": its, "options": opts, "batch_real": args.batch_real, "seed": args.seed}
                set_path = work / f"{tag}_{its}it_b{args.batch_real}{mode_tag}.safetensors"

                def make(method=method, fyi_on=fyi_on, set_path=set_path, its=its, opts=opts):
                    cfg = fyi.DistillConfig(method=method, dataset=args.dataset, ipc=ipc, fyi="flip" if fyi_on else None,
                                            iterations=its, batch_real=args.batch_real, seed=args.seed, bf16=args.bf16,
                                            channels_last=args.bf16, checkpoint_every=10, options=opts,
                                            dsa_mode=args.dsa_mode)
                    return H.distilled(set_path, cfg, ds, args.device)

                r = results[f"{_label(method, fyi_on)} ipc{ipc}"] = evaluated(tag, make, dbudget)
                print(f"{_label(method, fyi_on)} ipc {ipc}: {pct(r['mean'], r['std'])} "
                      f"(distill {r['distill_seconds'] or 0:.0f} s, D(S,flip S) {r['unequalness_dm']:.4g})", flush=True)

    rows = []
    for label in ["random", *[_label(m, f) for m in methods for f in (False, True)]]:
        row = [label]
        for ipc in ipcs:
            r = results.get(f"{label} ipc{ipc}")
            row.append(pct(r["mean"], r["std"]) if r else "-")
            paper = H.table1(label.split("+")[0], label.endswith("+fyi"), ipc, ds.info.name)
            row.append("-" if paper is None else f"{paper:.1f}")
        rows.append(row)
    print()
    md = H.show_table(rows, ["method"] + [h for ipc in ipcs for h in (f"IPC {ipc} (ours, %)", f"IPC {ipc} (paper)")])
    print(f"\n{md}\n")
    H.write_result(args.json or work / "fidelity.json", {
        "command": H.command_line("fidelity", argv), "budget": budget, "results": results,
        "paper_table1": {k: v for k, v in H.TABLE1.items() if k.split("+")[0] in MATCHING}, "markdown": md})
    return 0


if __name__ == "__main__":
    sys.exit(main())
