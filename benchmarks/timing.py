"""How the speed benchmarks time work: the machine named, its ceilings, interleaved A/B runs, FLOP counts.

``machine()`` names the CPU (model, ``torch.backends.cpu.get_cpu_capability()``, the bf16 flags, whether it runs
bf16 natively, cores, load); ``matmul_gflops`` is the ceiling every timed row is a fraction of (fp32, and bf16 for
the precision rows); ``interleave`` runs the compared functions in turn (A B A B ...), and ``paired`` is the median
of the pairs' ratios, so a comparison never mixes figures from different runs.
"""
from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import torch

#: the /proc/cpuinfo flags that mean native bf16 arithmetic (what ``fyi_apps.runtime.native_bf16`` looks for)
BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def machine() -> dict:
    """The CPU, named: model, capability, bf16 flags and native bf16, cores, load average, torch version."""
    from fyi_apps.runtime import native_bf16

    model, flags = "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model == "unknown":
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return {"cpu_capability": torch.backends.cpu.get_cpu_capability(), "cpu_model": model,
            "bf16_flags": [f for f in BF16_FLAGS if f in flags], "native_bf16": native_bf16("cpu"),
            "cores": os.cpu_count(), "load_average": [round(v, 2) for v in os.getloadavg()],
            "torch": torch.__version__}


def matmul_gflops(threads: int, n: int = 2048, reps: int = 3, dtype: torch.dtype = torch.float32) -> float:
    """Best-of-``reps`` ``n x n @ n x n`` rate in ``dtype`` at ``threads`` torch threads."""
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        a @ b
        best = min(seconds(lambda: a @ b) for _ in range(reps))
    finally:
        torch.set_num_threads(old)
    return 2 * n**3 / best / 1e9


def seconds(fn) -> float:
    """Wall seconds of one call of ``fn``."""
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def count_flops(fn) -> float:
    """FLOPs of one call of ``fn`` (``torch.utils.flop_counter``)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc:
        fn()
    return float(fc.get_total_flops())


def interleave(fns: dict, rounds: int) -> dict[str, list[float]]:
    """Run every function once per round, in turn (A B C A B C ...); seconds per call."""
    for fn in fns.values():  # warm-up
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            times[k].append(seconds(fn))
    return times


def paired(times: dict, a: str, b: str) -> float:
    """Median over rounds of ``time[a] / time[b]``."""
    return statistics.median(x / y for x, y in zip(times[a], times[b]))


def summary(times: dict) -> dict:
    """Median and every time of each compared function."""
    return {k: {"median_s": statistics.median(v), "all_s": v} for k, v in times.items()}


# --------------------------------------------------------------------------- a method's iterations, unit by unit
def stepping(ds, method: str, ipc: int, batch_real: int, fyi=None, precision: str = "fp32", options=None):
    """A Distiller set up to run single iterations (``d.method.step``) on the CPU (fp32 unless asked)."""
    from fyi_apps.distill import DistillConfig, Distiller

    d = Distiller(DistillConfig(method=method, dataset=ds.info.name, ipc=ipc, fyi=fyi, iterations=10**6,
                                batch_real=batch_real, seed=0, precision=precision, options=dict(options or {})),
                  ds, device="cpu")
    stored, labels = d.init_images()
    d.method.setup(torch.nn.Parameter(stored), labels)
    return d


def iteration_units(d) -> dict[str, tuple]:
    """The timed units of one iteration of ``d``'s method: name -> (function, how many an iteration runs).

    DM, MTT, FTD: the whole iteration.  IDC: one round (match every class, update the network on real data),
    ``inner_loop`` of them.  DC/DSA: one matching step (``outer_loop`` of them) and one inner epoch of the network
    on S (``(outer_loop - 1) * inner_loop`` of them).
    """
    import dataclasses

    m, o = d.method, d.cfg.options
    if d.cfg.method in ("dm", "mtt", "ftd"):
        return {"iteration": (lambda: m.step(1), 1)}
    if d.cfg.method == "idc":
        rounds, m.inner_loop, m.fix_iter = m.inner_loop, 1, 10**9
        m.net = d.ctx.new_net()
        m.opt_net = m.net_optimiser(m.net)
        return {"round": (lambda: m.step(1), rounds)}
    net = d.ctx.new_net()
    opt_net = torch.optim.SGD(net.parameters(), lr=float(o["lr_net"]))
    outer, inner = int(o.get("outer_loop", 1)), int(o.get("inner_loop", 1))

    def match():
        loss = m.match_loss(net)
        m.opt.zero_grad(set_to_none=True)
        loss.backward()
        m.opt.step()

    def epoch():
        saved, m.opts = m.opts, dataclasses.replace(m.opts, inner_loop=1)
        try:
            m.train_net(net, opt_net)
        finally:
            m.opts = saved

    return {"match step": (match, outer), "inner epoch": (epoch, (outer - 1) * inner)}


def expert_options(ds, folder: str | Path) -> dict:
    """MTT's options on a short expert trained now into ``folder``: what an iteration needs to run."""
    from fyi_apps.distill import ExpertConfig, train_experts

    train_experts(ExpertConfig(dataset=ds.info.name, experts=1, epochs=3, train_per_class=50), ds, Path(folder),
                  device="cpu", progress=False)
    return {"experts": str(folder), "expert_epochs": 2, "max_start_epoch": 1, "lr_lr": 0.0}  # timing: the lr stays
