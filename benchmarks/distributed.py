"""Class-parallel DM: one process against two gloo processes on this machine's CPU.

    python -m benchmarks.distributed                  # CIFAR-10, IPC 10, 20 iterations, A B A B
    python -m benchmarks.distributed --rounds 3 --iterations 10

Each arm is a fresh process group started like ``torchrun`` would (spawned
processes, gloo, one process per share of the classes): arm A is one process,
arm B two processes, each with the same number of torch threads (``--threads``,
default 1: the same arithmetic in both arms, so the check below holds; more
threads per process change the order of some additions).  The arms alternate
(A B A B ...), so a change in the machine's load hits both.
Every arm distils DM (FYI on, the default ConvNet, seed 0) for the same number
of iterations; the figure is the mean of the per-iteration seconds after the
first iteration (network and data warm-up), and the summary is the median over
the rounds.  The runs also check that both arms give the same synthetic set
bit for bit.

Printed: a table of the rounds and the ratio (two processes / one process);
written: ``benchmarks/results/distributed.json`` with the machine (CPU model
from ``lscpu``, cores, torch version) and the load average before and after.
On a machine whose cores are already busy (or with as many cores as
processes) two processes share the same cores: the ratio then measures the
split's overhead, not a speed-up.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

RESULT = Path(__file__).resolve().parent / "results" / "distributed.json"


def machine() -> dict:
    """CPU model (``lscpu``), cores, torch version, load average now."""
    model = "unknown"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        model = next((ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")), model)
    except (OSError, subprocess.SubprocessError):
        pass
    try:  # with autogroups, a process's CPU share is its session's: nice on other sessions' jobs does not count
        autogroup = Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip() == "1"
    except OSError:
        autogroup = None
    return {"cpu_model": model, "cores": os.cpu_count(), "torch": torch.__version__,
            "load_average": [round(v, 2) for v in os.getloadavg()], "sched_autogroup": autogroup}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, threads: int, settings: dict, out: str) -> None:
    """One rank of one arm: join the group (if several), distil, rank 0 writes its log and images."""
    import torch.distributed as dist

    import fyi_apps as fyi
    from fyi_apps.distill import DistillConfig, Distiller

    torch.set_num_threads(threads)
    if world > 1:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        data = fyi.load_dataset(settings["dataset"])
        cfg = DistillConfig(method="dm", dataset=settings["dataset"], ipc=settings["ipc"], fyi="flip",
                            iterations=settings["iterations"], seed=0)
        d = Distiller(cfg, data, device="cpu")
        synset = d.run(progress=False)
        if rank == 0:
            torch.save({"log": d.log, "images": synset.images}, out)
    finally:
        if world > 1:
            dist.destroy_process_group()


def run_arm(world: int, threads: int, settings: dict, folder: Path, tag: str) -> dict:
    """One arm in fresh processes: mean seconds per iteration after the first, and the images."""
    ctx = multiprocessing.get_context("spawn")
    port, out = _free_port(), folder / f"{tag}.pt"
    per = threads
    t0 = time.perf_counter()
    procs = [ctx.Process(target=_worker, args=(r, world, port, per, settings, str(out))) for r in range(world)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    if any(p.exitcode != 0 for p in procs):
        raise SystemExit(f"the {world}-process arm failed (exit codes {[p.exitcode for p in procs]})")
    got = torch.load(out)
    secs = [row["seconds"] for row in got["log"]]
    timed = secs[1:] or secs
    return {"processes": world, "threads_per_process": per, "seconds_per_iteration": statistics.fmean(timed),
            "first_iteration_seconds": secs[0], "wall_seconds": time.perf_counter() - t0, "images": got["images"]}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="cifar10")
    p.add_argument("--ipc", type=int, default=10)
    p.add_argument("--iterations", type=int, default=20, help="DM iterations per arm (the first is not timed)")
    p.add_argument("--rounds", type=int, default=2, help="A B pairs")
    p.add_argument("--threads", type=int, default=1, help="torch threads of every process")
    p.add_argument("--output", default=str(RESULT))
    args = p.parse_args(argv)
    if args.iterations < 2 or args.rounds < 1 or args.threads < 1:
        raise SystemExit("--iterations must be at least 2, --rounds and --threads at least 1")
    settings = {"dataset": args.dataset, "ipc": args.ipc, "iterations": args.iterations}
    before = machine()
    rows, identical = [], True
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            one = run_arm(1, args.threads, settings, Path(tmp), f"one{r}")
            two = run_arm(2, args.threads, settings, Path(tmp), f"two{r}")
            identical &= torch.equal(one.pop("images"), two.pop("images"))
            rows += [{"round": r, **one}, {"round": r, **two}]
            print(f"round {r}: 1 process {one['seconds_per_iteration']:.3f} s/it, "
                  f"2 processes {two['seconds_per_iteration']:.3f} s/it", flush=True)
    after = machine()["load_average"]
    med1 = statistics.median(x["seconds_per_iteration"] for x in rows if x["processes"] == 1)
    med2 = statistics.median(x["seconds_per_iteration"] for x in rows if x["processes"] == 2)
    print()
    print("| round | processes | threads each | s / iteration | first iteration s | wall s |")
    print("|---|---|---|---|---|---|")
    for x in rows:
        print(f"| {x['round']} | {x['processes']} | {x['threads_per_process']} | {x['seconds_per_iteration']:.3f} | "
              f"{x['first_iteration_seconds']:.3f} | {x['wall_seconds']:.1f} |")
    print(f"\nmedian s/it: 1 process {med1:.3f}, 2 processes {med2:.3f}; ratio 2/1 = {med2 / med1:.3f} "
          f"(speed-up {med1 / med2:.2f}x); same synthetic set bit for bit: {identical}")
    print(f"machine: {before['cpu_model']}, {before['cores']} cores, torch {before['torch']}; "
          f"load average before {before['load_average']}, after {after}")
    result = {
        "benchmark": "distributed", "command": " ".join(["python -m benchmarks.distributed", *(argv or sys.argv[1:])]),
        "machine": {**before, "load_average_after": after}, "settings": {**settings, "method": "dm", "fyi": "flip",
                                                                         "arch": "convnet", "threads": args.threads},
        "rounds": rows, "median_seconds_per_iteration": {"1": med1, "2": med2}, "ratio_two_over_one": med2 / med1,
        "identical_images": identical,
    }
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"-> {out}")
    return result


if __name__ == "__main__":
    main()
