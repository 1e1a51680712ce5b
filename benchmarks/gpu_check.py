"""One-command device check: every sub-command at a tiny budget, then paper-budget iteration times (issue 28).

Made for the first GPU this project gets (at most 9 minutes), and runnable
anywhere: ``--device cpu --dry`` (digits, the smallest budgets, one timed
iteration) is what the test suite runs.

    python -m benchmarks.gpu_check --device cuda --data-root data/   # CIFAR-10 copy in an ignored folder
    python -m benchmarks.gpu_check --device cpu --dry                # the pipeline only, a minute on a CPU

Part 1 runs ``fyi`` sub-commands in this process (``fyi_apps.cli.main``):
``distill`` for DC, DSA, DM, IDC, MTT and FTD with and without FYI (MTT/FTD on
experts trained first with ``fyi experts``), ``eval``, ``score``, ``cl``,
``nas`` and ``xarch``; each row records its exit code and seconds, and a
failure does not stop the others.  Part 2 times iterations at the papers'
budgets under ``--precision fp32`` and ``auto`` (DM IPC 10 with 256 real images
per class, DSA IPC 10 with loops (10, 50), MTT IPC 10 with FTD's table) and
extrapolates the paper-budget total.  Prints a table per part and writes
``OUT/gpu_check.json`` (device name, precision resolved, versions).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from benchmarks import harness as H

#: (method, paper iterations, options) of the timed paper-budget runs at IPC 10
PAPER = (("dm", 20000, {}, 256), ("dsa", 1000, {"outer_loop": 10, "inner_loop": 50}, 256), ("mtt", 5000, {}, 256))


def parse_args(argv=None):
    p = H.parser(__doc__, first_paragraph=True, formatter=argparse.ArgumentDefaultsHelpFormatter)
    H.add_common_arguments(p, device={"default": "cuda", "help": "device to check (cuda, cuda:1, cpu)"})
    p.add_argument("--dry", action="store_true", help="digits, the smallest budgets, one timed iteration")
    H.add_common_arguments(p, "data_root", dataset={"help": "dataset (default cifar10; digits with --dry)"})
    p.add_argument("--iterations", type=int, default=None, help="timed iterations per paper-budget run (default 5)")
    p.add_argument("--budget-s", type=float, default=540.0,
                   help="wall-clock budget: a step that would start after it is skipped (recorded as such), "
                        "so the whole check ends inside the device's 9 minutes")
    H.add_common_arguments(p, out={"default": str(H.RESULTS / "gpu-check")})
    return p.parse_args(argv)


def _run(argv: list[str]) -> tuple[int, float, str]:
    """``fyi argv`` in this process: (exit code, seconds, the last error line if any)."""
    import contextlib
    import io

    from fyi_apps.cli import main

    err = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as e:  # argparse --help and friends
            code = int(e.code or 0)
        except Exception as e:  # noqa: BLE001 - a crash is a result here: record it, go on
            code, err = 1, io.StringIO(f"{type(e).__name__}: {e}")
    lines = [ln for ln in err.getvalue().splitlines() if ln.strip() and "Warning" not in ln and "warn" not in ln]
    return code, time.perf_counter() - t0, (lines[-1][:200] if code and lines else "")


def commands(args, work: Path) -> list[tuple[str, list[str]]]:
    """The part-1 command lines, in order (experts before MTT/FTD)."""
    ds, dry = args.dataset, args.dry
    common = ["--device", args.device, "--quiet", "--out", str(work)]
    if args.data_root:
        common += ["--data-root", args.data_root]
    its = {"dm": 5 if dry else 50, "dc": 1 if dry else 5, "dsa": 1 if dry else 5, "idc": 1 if dry else 5,
           "mtt": 2 if dry else 10, "ftd": 2 if dry else 10}
    experts = str(work / "experts")
    rows = [("experts", ["experts", "--dataset", ds, "--experts", "1" if dry else "2", "--epochs", "2",
                         "--train-per-class", "20" if dry else "200", "-o", experts, *common])]
    traj = ["--experts", experts, "--option", "expert_epochs=1", "--option", "max_start_epoch=1",
            "--option", f"syn_steps={1 if dry else 2}", *(["--option", "lr_lr=1e-6"] if dry else [])]
    for method in ("dc", "dsa", "dm", "idc", "mtt", "ftd"):
        for fyi in (False, True):
            name = f"distill {method}{'+fyi' if fyi else ''}"
            out = str(work / f"{method}{'-fyi' if fyi else ''}.safetensors")
            extra = ["--option", "outer_loop=1", "--option", "inner_loop=1"] if method in ("dc", "dsa") else []
            extra += ["--option", "inner_loop=2", "--option", "n_data=64"] if method == "idc" and dry else []
            extra += traj if method in ("mtt", "ftd") else []
            rows.append((name, ["distill", "--dataset", ds, "--method", method, "--ipc", "1", "--iterations",
                                str(its[method]), "--batch-real", "16", *(["--fyi"] if fyi else []), *extra,
                                "-o", out, *common]))
    dm = str(work / "dm.safetensors")
    rows += [
        ("eval", ["eval", dm, "--dataset", ds, "--epochs", "2" if dry else "20", "--seeds", "1", *common]),
        ("score", ["score", dm, "--nets", "1", *common]),
        ("cl", ["cl", "--benchmark", f"split-{ds}", "--memory", "random,dm", "--ipc", "1", "--seeds", "1",
                "--epochs", "2", "--iterations", "2", "--fresh", *common]),
        ("nas", ["nas", "--dataset", ds, "--space", "classic" if not dry else "convnet,mlp,mlp:width=32",
                 "--proxy", dm, "--proxy", "random", "--proxy", "synflow", "--proxy-epochs", "2", "--truth",
                 "real:5", "--full-epochs", "1", "--curve", "1,2", *common]),
        ("xarch", ["xarch", dm, "--dataset", ds, "--archs", "convnet,mlp", "--epochs", "2", "--seeds", "1",
                   *common]),
    ]
    return rows


class Deadline:
    """The wall-clock budget of one check: ``left()`` seconds remain; ``over()`` once they are spent."""

    def __init__(self, seconds: float):
        self.seconds, self.t0 = float(seconds), time.perf_counter()

    def left(self) -> float:
        return self.seconds - (time.perf_counter() - self.t0)

    def over(self) -> bool:
        return self.left() <= 0


def time_paper_budgets(args, dataset, deadline: Deadline | None = None, partial=None) -> list[dict]:
    """Seconds per iteration at the papers' budgets, fp32 and auto, and the extrapolated totals.

    A run that would start after ``deadline`` is recorded as skipped; ``partial(rows)`` is
    called after each row (the caller writes what it has, so a killed check leaves its numbers).
    """
    import torch

    import fyi_apps as fyi
    from fyi_apps.distill import ExpertConfig, train_experts

    n_it = args.iterations or (1 if args.dry else 5)
    out = []
    experts = Path(args.out) / "paper-experts"
    if not (experts / "experts.json").exists() and not (deadline is not None and deadline.over()):
        train_experts(ExpertConfig(dataset=dataset.info.name, experts=1, epochs=3 if args.dry else 4,
                                   train_per_class=40 if args.dry else 500), dataset, experts,
                      device=args.device, progress=False)
    for method, total, options, batch_real in PAPER:
        for precision in ("fp32", "auto"):
            if deadline is not None and deadline.over():
                out.append({"method": method, "precision": precision, "skipped": "budget spent"})
                print(f"  {method} {precision}: skipped (the --budget-s is spent)", flush=True)
                continue
            opts = dict(options)
            if method == "mtt":  # FTD's IPC-10 table, started from the first epoch of short experts
                opts.update(experts=str(experts), expert_epochs=2, max_start_epoch=1)
                if args.dry:
                    opts.update(syn_steps=1, expert_epochs=1, lr_lr=1e-6)
            if args.dry:
                opts.update({k: 1 for k in ("outer_loop", "inner_loop") if k in opts})
            cfg = fyi.DistillConfig(method, dataset.info.name, 10 if not args.dry else 1, iterations=n_it + 1,
                                    batch_real=batch_real if not args.dry else 8, precision=precision,
                                    options=opts, checkpoint_every=10**6)
            d = fyi.Distiller(cfg, dataset, device=args.device)
            try:
                d.run(progress=False)
            except fyi.FyiError as e:  # recorded, the other timings still run
                out.append({"method": method, "precision": precision, "error": str(e)})
                print(f"  {method} {precision}: {e}", flush=True)
                continue
            if d.device.type == "cuda":
                torch.cuda.synchronize()
            times = [row["seconds"] for row in d.log]
            per = sum(times[1:]) / max(1, len(times) - 1)  # the first iteration includes warm-up
            out.append({"method": method, "ipc": cfg.ipc, "precision": precision,
                        "precision_used": d.ctx.precision, "seconds_per_iteration": per,
                        "paper_iterations": total, "paper_hours": per * total / 3600, "timed_iterations": n_it})
            print(f"  {method} IPC {cfg.ipc} {precision:>4}: {per:.3f} s/it -> {per * total / 3600:.2f} h for "
                  f"{total} iterations", flush=True)
            if partial is not None:
                partial(out)
    return out


def main(argv=None) -> int:
    import torch

    import fyi_apps as fyi
    from fyi_apps.runtime import native_bf16, package_versions, resolve_device, write_json

    args = parse_args(argv)
    args.dataset = args.dataset or ("digits" if args.dry else "cifar10")
    device = resolve_device(args.device)
    out = Path(args.out)
    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"device {device} ({name}), native bf16: {native_bf16(device)}", flush=True)
    deadline = Deadline(args.budget_s)
    record = {"device": str(device), "device_name": name, "native_bf16": native_bf16(device), "dry": args.dry,
              "dataset": args.dataset, "budget_s": args.budget_s, "steps": [], "timings": [],
              "argv": sys.argv[1:] if argv is None else argv, "time": time.strftime("%Y-%m-%dT%H:%M:%S")}

    def save(final=False, **parts):  # after every step: a check killed at the device's limit still leaves its rows
        record.update(parts, seconds=round(args.budget_s - deadline.left(), 1), complete=final)
        if final:
            H.write_result(out / "gpu_check.json", record)
        else:
            write_json(out / "gpu_check.json", {**record, "versions": package_versions()}, what="result")

    rows = []
    for label, cmd in commands(args, work):
        if deadline.over():
            rows.append({"step": label, "exit": None, "seconds": 0.0, "error": "skipped: budget spent", "argv": cmd})
            print(f"  {label:<16} skipped (the --budget-s is spent)", flush=True)
            continue
        code, secs, err = _run(cmd)
        rows.append({"step": label, "exit": code, "seconds": secs, "error": err, "argv": cmd})
        print(f"  {label:<16} exit {code}  {secs:6.1f} s  {err}", flush=True)
        save(steps=rows)
    H.show_table([[r["step"], r["exit"], f"{r['seconds']:.1f}", r["error"]] for r in rows],
                 ["step", "exit", "seconds", "error"])
    dataset = fyi.load_dataset(args.dataset, root=args.data_root)
    timings = time_paper_budgets(args, dataset, deadline, partial=lambda t: save(timings=t))

    def per_it(t):
        return f"{t['seconds_per_iteration']:.3f}" if "seconds_per_iteration" in t else \
            (t.get("error") or t.get("skipped", ""))[:60]

    H.show_table([[t["method"], t.get("ipc", "-"), t["precision"], t.get("precision_used", "-"), per_it(t),
                   f"{t['paper_hours']:.2f}" if "paper_hours" in t else "-"] for t in timings],
                 ["method", "IPC", "precision", "used", "s / iteration", "paper budget (h)"])
    save(final=True, steps=rows, timings=timings)
    print(f"{args.budget_s - deadline.left():.0f} s of the {args.budget_s:.0f} s budget")
    failed = [r["step"] for r in rows if r["exit"] not in (0, None)] + [
        f"timing {t['method']} {t['precision']}" for t in timings if "error" in t]
    skipped = [r["step"] for r in rows if r["exit"] is None] + [
        f"timing {t['method']} {t['precision']}" for t in timings if "skipped" in t]
    ran = len(rows) - len([r for r in rows if r["exit"] is None])
    print(f"{ran - len([r for r in rows if r['exit'] not in (0, None)])}/{ran} steps passed"
          + (f"; failed: {', '.join(failed)}" if failed else "")
          + (f"; skipped for time: {', '.join(skipped)}" if skipped else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
