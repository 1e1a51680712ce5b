"""Speed of distillation and evaluation on this machine, against ceilings measured in the same run.

    python -m benchmarks.speed --quick      # about 2 minutes: ceilings, DM, evaluation, real gradients, threads
    python -m benchmarks.speed              # adds more rounds and the per-method table (DM/DSA/DC/IDC)
    python -m benchmarks.speed --compile    # adds torch.compile against eager (compile time reported)
    python -m benchmarks.speed --sections precision   # --precision auto against fp32: DM, DSA, IDC, MTT, evaluation

Printed first: the CPU (``torch.backends.cpu.get_cpu_capability()``, model, its
bf16 flags and whether it runs bf16 natively), torch threads, the load average,
the fp32 matmul rate (2048^3) with one thread and with all cores, the bf16 matmul
rate with one thread, and the convolution-only time of DM's real branch: the three
convolutions of ConvNet-3 on the same 10 x 256 real images in the same slices,
with nothing else (no normalisation, ReLU, pooling, augmentation).

Every timed row then reports its achieved FLOP rate as a fraction of the matmul
rate at its thread count (FLOPs counted by ``torch.utils.flop_counter``), the DM
rows their ``conv_only_ratio`` (iteration time / convolution-only time), and
every comparison is an interleaved A/B run in this process (A B A B ...; the
figure is the median of the pairs' ratios), never figures from different runs.
"Legacy layers" are the ConvNet layers before issue 15 (``nn.GroupNorm`` and
``nn.AvgPool2d`` modules), swapped into the same networks.

Each section's result goes to ``<json>.parts/`` (one file per section and
setting, with the ceilings measured beside it), so an interrupted run resumes;
``--fresh`` measures everything again.  Results: ``benchmarks/results/speed.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from benchmarks import harness as H
from benchmarks.timing import (count_flops, expert_options, interleave, iteration_units, machine, matmul_gflops,
                               paired, stepping, summary)
from fyi_apps.errors import FyiError

CL = torch.channels_last


# --------------------------------------------------------------------------- the layers before issue 15
def legacy_layers(net: torch.nn.Module) -> torch.nn.Module:
    """Swap InstanceNorm / AvgPool2x2 back to ``nn.GroupNorm`` / ``nn.AvgPool2d`` (same weights), in place."""
    from fyi_apps.networks import AvgPool2x2, InstanceNorm

    for parent in list(net.modules()):
        for name, m in list(parent.named_children()):
            if isinstance(m, InstanceNorm):
                g = torch.nn.GroupNorm(m.num_groups, m.num_channels, eps=m.eps).to(m.weight.device)
                g.load_state_dict(m.state_dict())
                g.weight.requires_grad_(m.weight.requires_grad)
                g.bias.requires_grad_(m.bias.requires_grad)
                setattr(parent, name, g)
            elif isinstance(m, AvgPool2x2):
                setattr(parent, name, torch.nn.AvgPool2d(2, 2))
    return net


def convnet(ds, seed=0):
    from fyi_apps.networks import create_model

    return create_model("convnet", channels=ds.info.channels, num_classes=ds.info.num_classes,
                        image_size=ds.info.image_size, seed=seed)


def _conv_inputs(net, first: torch.Tensor, fmt) -> list[tuple[torch.nn.Conv2d, torch.Tensor]]:
    """Each convolution of ``net`` with an input of the shape it sees (first: real images; then random maps)."""
    g = torch.Generator().manual_seed(0)
    out, x = [], first
    for conv in (m for m in net.features if isinstance(m, torch.nn.Conv2d)):
        out.append((conv, x))
        with torch.no_grad():
            y = conv(x)
        x = torch.randn(y.shape[0], y.shape[1], y.shape[2] // 2, y.shape[3] // 2, generator=g).contiguous(memory_format=fmt)
    return out


# --------------------------------------------------------------------------- sections
def dm_section(args, ds, ceil1) -> dict:
    """DM iteration (current vs legacy layers) and the real branch's convolution-only time, interleaved."""
    from fyi_apps.distill import real_chunk

    d = stepping(ds, "dm", args.ipc, args.batch_real, "flip" if args.fyi else None)
    ctx, step = d.ctx, d.method.step
    new_net = ctx.new_net
    real, _ = ctx.real_all(args.batch_real)
    chunk = real_chunk("auto", real.device)
    net = convnet(ds).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    real = real.contiguous(memory_format=CL)
    net = net.to(memory_format=CL)
    later = _conv_inputs(net, real[:chunk], CL)[1:]
    first_conv = next(m for m in net.features if isinstance(m, torch.nn.Conv2d))

    @torch.no_grad()
    def conv_only():
        for s in range(0, real.shape[0], chunk):
            first_conv(real[s : s + chunk])
            for conv, x in later:
                conv(x)

    def legacy_step():
        ctx.new_net = lambda *a, **k: legacy_layers(new_net(*a, **k))
        try:
            step(0)
        finally:
            ctx.new_net = new_net

    with torch.no_grad():
        real_flops = count_flops(conv_only)
    it_flops = count_flops(lambda: step(0))
    times = interleave({"current": lambda: step(0), "legacy": legacy_step, "conv_only": conv_only}, args.rounds)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "setting": f"DM, IPC {args.ipc}, {args.batch_real} real/class, FYI {'on' if args.fyi else 'off'}, CIFAR-10",
        "times": summary(times), "conv_only_ratio": paired(times, "current", "conv_only"),
        "legacy_conv_only_ratio": paired(times, "legacy", "conv_only"),
        "speedup_vs_legacy": paired(times, "legacy", "current"),
        "gflop_per_iteration": it_flops / 1e9, "conv_only_gflop": real_flops / 1e9,
        "fraction_of_matmul": it_flops / med["current"] / 1e9 / ceil1,
        "conv_only_fraction_of_matmul": real_flops / med["conv_only"] / 1e9 / ceil1, "real_chunk": chunk,
    }


def eval_section(args, ds, ceil1) -> dict:
    """Evaluation retraining epochs (IPC 10): current vs legacy layers, and the same convolutions alone."""
    from fyi_apps.baselines import random_subset
    from fyi_apps.evaluate import EvalConfig, train_network
    from fyi_apps.training import micro_batch_size
    from fyi_apps.runtime import make_generator

    s = random_subset(ds, args.ipc, seed=0)
    cfg = EvalConfig(epochs=args.eval_epochs)
    cpu = torch.device("cpu")
    info = ds.info

    def train(legacy: bool):
        net = convnet(ds)
        if legacy:
            legacy_layers(net)
        return train_network(net, s.images, s.labels, cfg, lr=0.01, generator=make_generator(0), device=cpu,
                             mean=info.mean, std=info.std)["final_loss"]

    net = convnet(ds)
    micro = micro_batch_size(cfg, net, cpu) or cfg.batch_size
    n = s.images.shape[0]
    sizes = [min(micro, min(cfg.batch_size, n - b) - o) for b in range(0, n, cfg.batch_size)
             for o in range(0, min(cfg.batch_size, n - b), micro)]
    pairs = _conv_inputs(net, torch.randn(micro, info.channels, info.image_size, info.image_size),
                         torch.contiguous_format)

    def conv_only():  # forward and backward of the convolutions alone, same slices, per epoch
        for _ in range(cfg.epochs):
            for k in sizes:
                for i, (conv, x) in enumerate(pairs):
                    xi = x[:k].detach().requires_grad_(i > 0)
                    conv(xi).sum().backward()

    flops = count_flops(lambda: train(False))
    conv_flops = count_flops(conv_only)
    loss_new, loss_old = train(False), train(True)
    times = interleave({"current": lambda: train(False), "legacy": lambda: train(True), "conv_only": conv_only},
                       args.rounds)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "setting": f"ConvNet-3 retraining on {n} images (IPC {args.ipc}), {cfg.epochs} epochs per timing, "
                   f"batch {cfg.batch_size}, slices of {micro}, DSA on",
        "times": summary(times), "seconds_per_epoch": {k: v / cfg.epochs for k, v in med.items()},
        "speedup_vs_legacy": paired(times, "legacy", "current"), "conv_only_ratio": paired(times, "current", "conv_only"),
        "final_loss": {"current": loss_new, "legacy": loss_old},
        "fraction_of_matmul": flops / med["current"] / 1e9 / ceil1,
        "conv_only_fraction_of_matmul": conv_flops / med["conv_only"] / 1e9 / ceil1,
    }


def real_gradient_section(args, ds, ceil1) -> dict:
    """DC/DSA's real-data gradients (one class, ``batch_real`` images, sliced): current vs legacy layers."""
    from fyi_apps.distill import real_gradient

    idx = ds.train.sample_indices(0, args.batch_real, torch.Generator().manual_seed(0))
    x = ds.normalize(ds.train.images[idx])
    y = torch.zeros(x.shape[0], dtype=torch.long)
    nets = {"current": convnet(ds), "legacy": legacy_layers(convnet(ds))}

    def grad(key):
        net = nets[key]
        params = list(net.parameters())
        return real_gradient(net, x, y, params, net)

    g_new, g_old = grad("current"), grad("legacy")
    rel = max(float((a - b).norm() / b.norm().clamp_min(1e-30)) for a, b in zip(g_new, g_old) if a.dim() > 1)
    flops = count_flops(lambda: grad("current"))
    times = interleave({"current": lambda: grad("current"), "legacy": lambda: grad("legacy")}, args.rounds)
    return {"setting": f"gradient of the loss on {x.shape[0]} real images of one class (DC/DSA/IDC real side)",
            "times": summary(times), "speedup_vs_legacy": paired(times, "legacy", "current"),
            "max_rel_weight_grad_diff": rel,
            "fraction_of_matmul": flops / statistics.median(times["current"]) / 1e9 / ceil1}


def threads_section(args, ds, ceils) -> dict:
    """The same work at 1 and 2 torch threads, interleaved: DM iteration, evaluation epochs, NAS-style ranking."""
    from fyi_apps.baselines import random_subset
    from fyi_apps.evaluate import EvalConfig, train_network
    from fyi_apps.training import test_accuracy
    from fyi_apps.networks import create_model
    from fyi_apps.runtime import make_generator

    s = random_subset(ds, args.ipc, seed=0)
    info = ds.info
    cfg = EvalConfig(epochs=args.eval_epochs)
    d = stepping(ds, "dm", args.ipc, args.batch_real)
    candidates = ["convnet:depth=1,width=32", "convnet:depth=2,width=64", "convnet:depth=3,width=128"]
    test_x, test_y = ds.test.images[:500], ds.test.labels[:500]

    def nas():
        for name in candidates:
            net = create_model(name, channels=info.channels, num_classes=info.num_classes, image_size=info.image_size, seed=0)
            train_network(net, s.images, s.labels, cfg, lr=0.01, generator=make_generator(0), device=torch.device("cpu"),
                          mean=info.mean, std=info.std)
            test_accuracy(net, test_x, test_y, device=torch.device("cpu"), mean=info.mean, std=info.std)

    def evaluation():
        train_network(convnet(ds), s.images, s.labels, cfg, lr=0.01, generator=make_generator(0),
                      device=torch.device("cpu"), mean=info.mean, std=info.std)

    out = {}
    work = {"dm_iteration": lambda: d.method.step(0), "evaluation": evaluation, "nas_ranking_3_candidates": nas}
    for name, fn in work.items():
        def at(t, fn=fn):
            return lambda: (torch.set_num_threads(t), fn())

        times = interleave({"1_thread": at(1), "2_threads": at(2)}, args.rounds)
        torch.set_num_threads(args.threads)
        out[name] = {"times": summary(times), "speedup_2_vs_1": paired(times, "1_thread", "2_threads")}
    out["matmul_speedup_2_vs_1"] = ceils["all_cores"] / ceils["one_thread"]
    return out


def compile_section(args, ds, ceil1) -> dict:
    """torch.compile of ConvNet-3's embed (DM real branch, no grad) and of a training slice, against eager."""
    import torch.nn.functional as F

    from fyi_apps.distill import real_chunk

    chunk = real_chunk("auto", torch.device("cpu"))
    net = convnet(ds).to(memory_format=CL)
    x = torch.randn(args.batch_real * 10, 3, ds.info.image_size, ds.info.image_size).contiguous(memory_format=CL)
    t0 = time.perf_counter()
    embed_c = torch.compile(net.embed, dynamic=False)
    with torch.no_grad():
        embed_c(x[:chunk])
    compile_s = time.perf_counter() - t0

    def branch(f):
        return lambda: [f(x[s : s + chunk]) for s in range(0, x.shape[0], chunk)]

    with torch.no_grad():
        times = interleave({"eager": branch(net.embed), "compiled": branch(embed_c)}, args.rounds)
    tnet = convnet(ds)
    xt, yt = torch.randn(chunk, 3, ds.info.image_size, ds.info.image_size), torch.zeros(chunk, dtype=torch.long)
    t0 = time.perf_counter()
    tnet_c = torch.compile(tnet, dynamic=False)
    F.cross_entropy(tnet_c(xt), yt).backward()
    compile_train_s = time.perf_counter() - t0
    ttimes = interleave({"eager": lambda: F.cross_entropy(tnet(xt), yt).backward(),
                         "compiled": lambda: F.cross_entropy(tnet_c(xt), yt).backward()}, args.rounds * 4)
    return {"dm_real_branch": {"times": summary(times), "speedup": paired(times, "eager", "compiled"),
                               "compile_seconds": compile_s},
            "training_slice": {"times": summary(ttimes), "speedup": paired(ttimes, "eager", "compiled"),
                               "compile_seconds": compile_train_s}}


# --------------------------------------------------------------------------- --precision auto against fp32
#: the methods of the precision rows (MTT stands for MTT/FTD: no real-image pass, auto runs fp32 there)
PRECISION_METHODS = ("dm", "dsa", "idc", "mtt")


def precision_section(args, ds, ceils) -> dict:
    """Iterations of DM, DSA, IDC and MTT and an evaluation epoch: ``--precision auto`` against fp32, interleaved.

    Each method's units (:func:`timing.iteration_units`) run A B A B ...; a row records what ``auto`` ran
    (``precision_used``: bf16 only with native bf16; MTT always fp32, so its row is the same code twice).
    Evaluation has no ``auto`` (it stays fp32): its row is fp32 against bf16 autocast (``EvalConfig(bf16=True)``).
    """
    import tempfile

    from fyi_apps.baselines import random_subset
    from fyi_apps.evaluate import EvalConfig, train_network
    from fyi_apps.runtime import make_generator

    with tempfile.TemporaryDirectory(prefix="speed-experts-") as experts:
        rows = {m: _precision_row(args, ds, ceils, m, expert_options(ds, experts) if m == "mtt" else {})
                for m in PRECISION_METHODS}
    s = random_subset(ds, args.ipc, seed=0)
    info = ds.info

    def train(bf16: bool):
        cfg = EvalConfig(epochs=args.eval_epochs, bf16=bf16)
        return lambda: train_network(convnet(ds), s.images, s.labels, cfg, lr=0.01, generator=make_generator(0),
                                     device=torch.device("cpu"), mean=info.mean, std=info.std)

    times = interleave({"fp32": train(False), "bf16": train(True)}, args.rounds)
    rows["evaluation"] = {"setting": f"ConvNet-3 retraining on {s.images.shape[0]} images, {args.eval_epochs} epochs "
                                     "per timing, DSA on", "times": summary(times),
                          "seconds_per_epoch": {k: v["median_s"] / args.eval_epochs for k, v in summary(times).items()},
                          "bf16_vs_fp32": paired(times, "bf16", "fp32")}
    return rows


def _precision_row(args, ds, ceils, method: str, options: dict) -> dict:
    """One method's units under fp32 and auto, interleaved; seconds per iteration from the medians."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MTT under auto: "has no real-image pass, the run is fp32"
        arms = {p: stepping(ds, method, args.ipc, args.batch_real, precision=p, options=options)
                for p in ("fp32", "auto")}
    units = {p: iteration_units(d) for p, d in arms.items()}
    row: dict = {"precision_used": {p: d.ctx.precision for p, d in arms.items()}, "units": {}}
    for name, (fn, n) in units["fp32"].items():
        times = interleave({p: units[p][name][0] for p in arms}, args.rounds)
        row["units"][name] = {"per_iteration": n, "times": summary(times), "flops": count_flops(fn),
                              "auto_vs_fp32": paired(times, "auto", "fp32")}
    per_it = {p: sum(u["times"][p]["median_s"] * u["per_iteration"] for u in row["units"].values()) for p in arms}
    flops = sum(u["flops"] * u["per_iteration"] for u in row["units"].values())
    return {**row, "setting": f"{method.upper()}, IPC {args.ipc}, {args.batch_real} real/class, " + ", ".join(
                f"{k} x {u['per_iteration']}" for k, u in row["units"].items()),
            "seconds_per_iteration": per_it, "auto_vs_fp32": per_it["auto"] / per_it["fp32"],
            "fraction_of_fp32_matmul": {p: flops / t / 1e9 / ceils["one_thread"] for p, t in per_it.items()}}


# --------------------------------------------------------------------------- per-method table (worker processes)
def run_worker(spec: dict) -> dict:
    from fyi_apps.data import load_dataset

    torch.set_num_threads(spec["threads"])
    torch.set_flush_denormal(True)
    d = stepping(load_dataset(spec["dataset"]), spec["method"], spec["ipc"], spec["batch_real"], spec["fyi"])
    units = iteration_units(d)
    best = {k: min(interleave({k: fn}, spec["iterations"])[k]) for k, (fn, _) in units.items()}
    return {**spec, "units": {k: {"seconds": best[k], "per_iteration": n} for k, (_, n) in units.items()},
            "seconds_per_iteration": sum(best[k] * n for k, (_, n) in units.items()),
            "flops_per_iteration": sum(count_flops(fn) * n for fn, n in units.values()),
            "timed": " + ".join(f"{k} x {n}" for k, (_, n) in units.items())}


def methods_section(args, ceils) -> list[dict]:
    rows = []
    for method in H.names(args.methods):
        for ipc in H.int_list(args.ipcs, "--ipcs"):
            for fyi in (None, "flip"):
                spec = {"method": method, "ipc": ipc, "fyi": fyi, "dataset": args.dataset, "iterations": 2,
                        "batch_real": args.batch_real, "threads": args.threads}
                r = subprocess.run([sys.executable, "-m", "benchmarks.speed", "--worker", json.dumps(spec)],
                                   capture_output=True, text=True)
                if r.returncode != 0:
                    print(f"  {method} ipc {ipc} fyi={fyi}: failed\n{r.stderr[-1500:]}", flush=True)
                    continue
                res = json.loads(r.stdout.strip().splitlines()[-1])
                ceil = ceils["one_thread"] if args.threads == 1 else ceils["all_cores"]
                res["fraction_of_matmul"] = res["flops_per_iteration"] / res["seconds_per_iteration"] / 1e9 / ceil
                rows.append(res)
                print(f"  {method:<4} ipc {ipc:<3} {'fyi' if fyi else '   '}: {res['seconds_per_iteration']:.3f} s/it, "
                      f"{100 * res['fraction_of_matmul']:.0f} % of matmul ({res['timed']})", flush=True)
    return rows


# --------------------------------------------------------------------------- main
#: the sections, in the order they run (``methods``: one worker process per configuration)
SECTIONS = ("dm", "evaluation", "real_gradient", "threads", "precision", "compile", "methods")


@H.reports_errors("speed")
def main(argv=None) -> int:
    p = H.parser(__doc__)
    H.add_common_arguments(p, "ipcs", dataset={"default": "cifar10"}, batch_real={"default": 256})
    p.add_argument("--ipc", type=int, default=10)
    p.add_argument("--fyi", action="store_true", help="DM section with FYI on")
    p.add_argument("--rounds", type=int, default=None, help="A/B rounds (default 5; --quick 2)")
    p.add_argument("--eval-epochs", type=int, default=None, help="epochs per evaluation timing (default 5; --quick 2)")
    H.add_common_arguments(p, threads={"default": 1, "help": "torch threads of the sections (threads section: 1 and 2)"})
    p.add_argument("--methods", default="dm,dsa,dc,idc")
    H.add_common_arguments(p, quick={"help": "fewer rounds, no per-method table"})
    p.add_argument("--compile", action="store_true", help="also time torch.compile against eager")
    p.add_argument("--sections", default=None, help=f"only these sections, comma-separated ({', '.join(SECTIONS)}; "
                   "default: all but compile, with --compile too, and methods only without --quick)")
    p.add_argument("--fresh", action="store_true", help="ignore results of earlier runs in <json>.parts")
    p.add_argument("--json", default="benchmarks/results/speed.json")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(run_worker(json.loads(args.worker))))
        return 0
    H.apply_preset(args, dict(rounds=5, eval_epochs=5), dict(rounds=2, eval_epochs=2))

    from fyi_apps.data import load_dataset

    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)  # what distillation and training run with
    ds = load_dataset(args.dataset)
    mach = machine()
    ceils = {"one_thread": matmul_gflops(1), "all_cores": matmul_gflops(os.cpu_count() or 1),
             "bf16_one_thread": matmul_gflops(1, dtype=torch.bfloat16)}
    print(f"CPU: {mach['cpu_model']}, capability {mach['cpu_capability']}, bf16 flags "
          f"{', '.join(mach['bf16_flags']) or 'none'} (native bf16: {mach['native_bf16']}), {mach['cores']} cores, "
          f"load average {mach['load_average']}; torch {mach['torch']}, {args.threads} thread(s)")
    print(f"fp32 matmul 2048^3: {ceils['one_thread']:.1f} GFLOP/s one thread, "
          f"{ceils['all_cores']:.1f} GFLOP/s all {mach['cores']} cores; bf16 matmul one thread "
          f"{ceils['bf16_one_thread']:.1f} GFLOP/s", flush=True)
    ceil = ceils["one_thread"] if args.threads == 1 else ceils["all_cores"]

    # each section's result is a record of its own, keyed by its settings: an interrupted run resumes
    parts = H.RecordCache(Path(args.json).with_suffix(".parts"), what="section result")
    sections = {"dm": lambda: dm_section(args, ds, ceil), "evaluation": lambda: eval_section(args, ds, ceil),
                "real_gradient": lambda: real_gradient_section(args, ds, ceil),
                "threads": lambda: threads_section(args, ds, ceils),
                "precision": lambda: precision_section(args, ds, ceils),
                "compile": lambda: compile_section(args, ds, ceil)}
    chosen = H.names(args.sections) if args.sections else [
        k for k in SECTIONS if (k != "compile" or args.compile) and (k != "methods" or not args.quick)]
    if unknown := sorted(set(chosen) - set(SECTIONS)):
        raise FyiError(f"--sections: unknown {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    results = {}
    for name, fn in ((k, sections[k]) for k in chosen if k != "methods"):
        key = {"section": name, "dataset": args.dataset, "ipc": args.ipc, "batch_real": args.batch_real, "fyi": args.fyi,
               "rounds": args.rounds, "eval_epochs": args.eval_epochs, "threads": args.threads}
        part = f"{name}-{H.cache_key(key, 12, separators=(', ', ': '))}"
        res = None if args.fresh else parts.get(part)
        if res is not None:
            print(f"[{name}] from an earlier run ({res['measured']['time']})")
        else:
            res = fn()
            res["measured"] = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "matmul_gflops": ceils, **mach}
            parts.put(res, part)
        results[name] = res
        _print_section(name, res)
    if "methods" in chosen:
        print("[methods] one worker process per configuration", flush=True)
        results["methods"] = methods_section(args, ceils)
    H.write_result(args.json, {"command": H.command_line("speed", argv), "machine": mach, "threads": args.threads,
                               "matmul_gflops": ceils, **results})
    return 0


def _print_section(name: str, r: dict) -> None:
    med = {k: v["median_s"] for k, v in r.get("times", {}).items()}
    if name == "dm":
        print(f"[dm] {r['setting']}: iteration {med['current']:.3f} s (legacy layers {med['legacy']:.3f} s), "
              f"real-branch convolutions alone {med['conv_only']:.3f} s")
        print(f"     conv_only_ratio {r['conv_only_ratio']:.2f} (legacy {r['legacy_conv_only_ratio']:.2f}); "
              f"speed-up vs legacy {r['speedup_vs_legacy']:.2f}x; {100 * r['fraction_of_matmul']:.0f} % of matmul "
              f"(convolutions alone {100 * r['conv_only_fraction_of_matmul']:.0f} %)")
    elif name == "evaluation":
        e = r["seconds_per_epoch"]
        print(f"[evaluation] {r['setting']}: {e['current']:.3f} s/epoch (legacy {e['legacy']:.3f}, convolutions alone "
              f"{e['conv_only']:.3f}); speed-up vs legacy {r['speedup_vs_legacy']:.2f}x; conv_only_ratio "
              f"{r['conv_only_ratio']:.2f}; {100 * r['fraction_of_matmul']:.0f} % of matmul")
    elif name == "real_gradient":
        print(f"[real_gradient] {r['setting']}: {med['current']:.3f} s (legacy {med['legacy']:.3f}); speed-up "
              f"{r['speedup_vs_legacy']:.2f}x; {100 * r['fraction_of_matmul']:.0f} % of matmul")
    elif name == "threads":
        for k, v in r.items():
            if isinstance(v, dict) and "times" in v:
                m = {a: b["median_s"] for a, b in v["times"].items()}
                print(f"[threads] {k}: 1 thread {m['1_thread']:.3f} s, 2 threads {m['2_threads']:.3f} s, "
                      f"speed-up {v['speedup_2_vs_1']:.2f}x")
        print(f"[threads] matmul 2 vs 1 thread: {r['matmul_speedup_2_vs_1']:.2f}x")
    elif name == "precision":
        for k, v in r.items():
            if k == "evaluation":
                e = v["seconds_per_epoch"]
                print(f"[precision] evaluation epoch: fp32 {e['fp32']:.3f} s, bf16 {e['bf16']:.3f} s "
                      f"({v['bf16_vs_fp32']:.2f}x; evaluation stays fp32)")
            elif isinstance(v, dict) and "seconds_per_iteration" in v:
                t, used = v["seconds_per_iteration"], v["precision_used"]["auto"]
                pairs = ", ".join(f"{k} {u['auto_vs_fp32']:.2f}x" for k, u in v["units"].items())
                print(f"[precision] {v['setting']}: fp32 {t['fp32']:.3f} s/it, auto ({used}) {t['auto']:.3f} s/it "
                      f"({v['auto_vs_fp32']:.2f}x; paired per unit: {pairs})")
    elif name == "compile":
        for k, v in r.items():
            if k == "measured":
                continue
            print(f"[compile] {k}: compiled is {v['speedup']:.2f}x eager; compile took {v['compile_seconds']:.1f} s")


if __name__ == "__main__":
    sys.exit(main())
