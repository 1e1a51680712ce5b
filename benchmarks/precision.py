"""Native bf16 where it is safe, with its accuracy measured: ``--precision auto`` against fp32 (issue 28).

At the fidelity budget of ``benchmarks/ablation.py`` (CIFAR-10, ConvNet-3, 64 real images per class, single
DSA in distillation and evaluation, distillation seed 0): DM at IPC 1 (500 iterations) and IPC 10 (2,000), DSA
at IPC 1 (80), each with and without FYI.  The fp32 arm *is* the ablation's cell (its set and its cached
evaluation are reused: same config, same seed, same key); every other precision is distilled from the same
seed into ``<cell>_<precision>.safetensors`` in the same folder and evaluated with the same seeds and settings
(evaluation is fp32).  The table gives, per (method, IPC, FYI), both accuracies, the paired difference per
evaluation seed (other - fp32, mean +- std) and the seconds per iteration of each run (median of its log;
the runs were made at different times, so the interleaved A/B of ``benchmarks/speed.py`` is the speed figure).

The rule (:func:`within_spread`): a difference is within the seed spread when its mean is no larger than the
larger of the two arms' standard deviations over the evaluation seeds; a method may default to ``auto`` when
all its rows are (``fyi_apps.runtime.DEFAULT_PRECISION`` follows this table).

    python -m benchmarks.precision                        # the table of docs/speed.md (hours of one core)
    python -m benchmarks.precision --fyi off &  python -m benchmarks.precision --fyi on   # two processes
    python -m benchmarks.precision --quick                # a minute: digits, tiny budgets
"""
from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

from benchmarks import ablation
from benchmarks import harness as H

#: the ablation's budget (the fp32 cells are its cells), and the arms compared
FULL = dict(**{k: ablation.FULL[k] for k in ("dataset", "dm_iterations", "dsa_iterations", "eval_epochs", "seeds",
                                              "score_every", "batch_real")},
            json="benchmarks/results/precision-cifar10.json")
QUICK = {k: ablation.QUICK[k] for k in FULL if k in ablation.QUICK}
BASE = "fp32"


def within_spread(base: list[float], other: list[float]) -> bool:
    """|mean(other) - mean(base)| <= the larger of the two arms' standard deviations over the evaluation seeds.

    The standard deviation is the one the evaluation reports (``EvalResult.std``, over the seeds, ``pstdev``).
    """
    spread = max(statistics.pstdev(base), statistics.pstdev(other))
    return abs(statistics.fmean(other) - statistics.fmean(base)) <= spread


def method_verdicts(rows: list[dict]) -> dict[str, bool]:
    """Per method: True when every one of its measured rows is :func:`within_spread`."""
    out: dict[str, bool] = {}
    for r in rows:
        if "within_spread" in r:
            out[r["method"]] = out.get(r["method"], True) and r["within_spread"]
    return out


def seconds_per_iteration(set_path: Path) -> float | None:
    """The median iteration time in the run's log (``<set>.log.json``), None without one."""
    log = set_path.with_name(set_path.stem + ".log.json")
    if not log.exists():
        return None
    times = [r["seconds"] for r in json.loads(log.read_text())["log"] if "seconds" in r]
    return statistics.median(times) if times else None


@H.reports_errors("precision")
def main(argv=None) -> int:
    p = H.parser(__doc__)
    p.add_argument("--methods", default="dm,dsa", help="dm (IPCs of --ipcs) and/or dsa (IPC 1)")
    p.add_argument("--precisions", default="auto", help="the arms compared with fp32 (auto, bf16)")
    ablation.add_cell_arguments(p, "precision-cifar10.json")
    args = p.parse_args(argv)
    ds, work, dm_its, methods, fyis, seeds = ablation.open_cells(args, FULL, QUICK, "precision-quick.json")
    ipcs = list(dm_its)
    arms = [BASE, *(a for a in H.names(args.precisions) if a != BASE)]

    import fyi_apps as fyi
    from fyi_apps.runtime import atomic_path

    blocks = [("dm", ipc, dm_its[ipc]) for ipc in ipcs] if "dm" in methods else []
    blocks += [("dsa", 1, args.dsa_iterations)] if "dsa" in methods else []
    cache = H.RecordCache(work, suffix=".eval.json", what="cached evaluation")

    def record(method, ipc, its, f, arm) -> dict | None:
        sp = ablation.cell_path(work, args.batch_real, method, ipc, its, f, "single", "" if arm == BASE else f"_{arm}")
        key = ablation.evaluation_key(sp, "single", args.eval_epochs, seeds, ds.source)
        rec = cache.get(key)
        if rec is None and not args.report_only and f in fyis:
            cfg = ablation.cell_config(args, method, ipc, its, f, "single", precision=arm)
            synset = H.distilled(sp, cfg, ds, args.device)
            rec = {"method": method, "ipc": ipc, "fyi": f, "distill_dsa": "single", "eval_dsa": "single",
                   "iterations": its, "eval_seeds": seeds, "set": str(sp), "precision": arm,
                   **H.evaluation_record(synset, ds, fyi.EvalConfig(epochs=args.eval_epochs, dsa_mode="single"),
                                         seeds, args.device)}
            cache.put(rec, key)
        if rec is not None:
            used = fyi.load_synset(sp).config.get("precision_used") if sp.exists() else None
            rec = {**rec, "precision_used": used or BASE, "seconds_per_iteration": seconds_per_iteration(sp)}
            print(f"{method}{'+fyi' if f else ''} ipc{ipc} {arm}: {100 * rec['mean']:.2f} +- {100 * rec['std']:.2f} "
                  f"({rec['precision_used']})", flush=True)
        return rec

    rows, table = [], []
    for method, ipc, its in blocks:
        for f in (False, True):
            recs = {arm: record(method, ipc, its, f, arm) for arm in arms}
            base = recs[BASE]
            for arm in arms[1:]:
                row = {"method": method, "ipc": ipc, "fyi": f, "iterations": its, "precision": arm,
                       BASE: base, arm: recs[arm]}
                cells = [method, ipc, "on" if f else "off"]
                if base is None or recs[arm] is None:
                    rows.append(row)
                    table.append(cells + ["pending"] * 6)
                    continue
                d = ablation.paired_difference(recs[arm]["accs"], base["accs"])
                row.update(difference=d, within_spread=within_spread(base["accs"], recs[arm]["accs"]))
                rows.append(row)
                sec = [r["seconds_per_iteration"] for r in (base, recs[arm])]
                table.append(cells + [f"{100 * base['mean']:.2f} +- {100 * base['std']:.2f}",
                                      f"{100 * recs[arm]['mean']:.2f} +- {100 * recs[arm]['std']:.2f} "
                                      f"({recs[arm]['precision_used']})",
                                      f"{d['mean']:+.2f} +- {d['std']:.2f}", "yes" if row["within_spread"] else "NO",
                                      *(f"{s:.2f}" if s else "-" for s in sec)])
    print()
    headers = ["method", "IPC", "FYI", f"fp32 acc % ({len(seeds)} seeds)", "other acc % (used)", "other - fp32 (paired)",
               "within spread", "fp32 s/it", "other s/it"]
    md = H.show_table(table, headers)
    verdicts = method_verdicts(rows)
    print("default may be auto for: " + (", ".join(m for m, ok in verdicts.items() if ok) or "none"))
    budget = {"dataset": ds.info.name, "source": ds.source, "dm_iterations": dm_its,
              "dsa_iterations_ipc1": args.dsa_iterations, "batch_real": args.batch_real, "distill_dsa": "single",
              "eval_dsa": "single", "eval_epochs": args.eval_epochs, "eval_seeds": seeds, "distill_seed": args.seed,
              "threads": args.threads}
    out = H.write_result(args.json, {"command": H.command_line("precision", argv), "budget": budget, "rows": rows,
                                     "method_within_spread": verdicts, "markdown": md})
    with atomic_path(out.with_suffix(".md"), "result table") as tmp:
        tmp.write_text(f"# --precision against fp32\n\n`{H.command_line('precision', argv)}`\n\n{md}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
