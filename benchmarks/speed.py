"""Speed and memory of distillation iterations (and of evaluation retraining).

For each method (DC, DSA, DM, IDC), FYI off/on, IPC and precision (fp32, or bf16
autocast + channels_last), a fresh worker process builds the method on CIFAR-10
(JPEG copy) and times its iterations; peak memory is the worker's peak resident
set size during the timed iterations above its size just before them (on CUDA:
max allocated).

DM is also compared with a straightforward per-class-loop DM written like the
reference implementation (each class's real batch through the network
separately, NCHW, fp32) on the *same* network, real images and augmentation,
so the two losses must agree to 1e-5 relative; the table reports the ratio.

DC/DSA/IDC iterations at the paper's loops take minutes on a CPU, so for them the
script times one matching step (all classes, one image update) and one inner
epoch, and reports the implied time of a full iteration:
``outer * t_match + (outer - 1) * inner * t_inner``; for IDC, one round
(match all classes, update the net on real data) times ``inner_loop``.
Evaluation retraining is timed with the default CPU slices and with whole
batches.  Each configuration's result is kept in ``JSON``'s ``.parts`` folder,
so rerunning an interrupted command continues it.

    python benchmarks/speed.py                       # full table (about 30-40 min on 2 cores)
    python benchmarks/speed.py --quick               # a couple of minutes
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch


class PeakRSS:
    """Peak resident set size while the block runs (a sampling thread; ru_maxrss cannot be reset)."""

    def __init__(self, interval: float = 0.005):
        self.interval, self.peak, self._stop = interval, 0.0, None

    def __enter__(self):
        import threading

        self.peak = _current_rss_mb()
        self._stop = threading.Event()

        def sample():
            while not self._stop.is_set():
                self.peak = max(self.peak, _current_rss_mb())
                self._stop.wait(self.interval)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _current_rss_mb())


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


# --------------------------------------------------------------------------- reference-style DM
def dm_loss_per_class_loop(net, real_per_class, syn_per_class) -> torch.Tensor:
    """The reference's DM loss: a Python loop over classes, NCHW fp32, one class at a time."""
    loss = torch.zeros(())
    for real_c, syn_c in zip(real_per_class, syn_per_class):
        out_real = net.embed(real_c).detach()
        out_syn = net.embed(syn_c)
        loss = loss + ((out_real.mean(0) - out_syn.mean(0)) ** 2).sum()
    return loss


def dm_compare(args, ds, device) -> dict:
    """Same inputs through fyi-apps's DM and the per-class loop: time per iteration and loss agreement."""
    from fyi_apps.distill import DistillConfig, Distiller
    from fyi_apps.networks import create_model

    cfg = DistillConfig(method="dm", dataset=args.dataset, ipc=args.dm_ipc, iterations=10**6,
                        batch_real=args.batch_real, seed=0, channels_last=True)
    d = Distiller(cfg, ds, device=device)
    stored, labels = d._init_images()
    images = torch.nn.Parameter(stored)
    d.method.setup(images, labels)
    ctx, k = d.ctx, ds.info.num_classes
    t_ours, t_ref, rel = [], [], []
    for rep in range(args.repeats + 1):
        seed = 1000 + rep
        net = create_model("convnet", channels=ds.info.channels, num_classes=k, image_size=ds.info.image_size,
                           seed=seed).to(device)
        for p in net.parameters():
            p.requires_grad_(False)
        real, real_labels = ctx.real_all(args.batch_real)
        params = ctx.aug.sample(1, ds.info.image_size, device, ctx.generator, siamese=True)
        real_aug = ctx.aug.apply(real, params)

        # fyi-apps: all classes in one batched forward, channels_last
        net_cl = create_model("convnet", channels=ds.info.channels, num_classes=k, image_size=ds.info.image_size,
                              seed=seed).to(device).to(memory_format=torch.channels_last)
        for p in net_cl.parameters():
            p.requires_grad_(False)
        t0 = time.perf_counter()
        syn = ctx.aug.apply(images, params)
        loss_ours = d.method.loss(net_cl, real_aug, real_labels, syn, labels)
        images.grad = None
        loss_ours.backward()
        t1 = time.perf_counter()

        # reference style: per class, NCHW fp32
        real_pc = [real_aug[real_labels == c] for c in range(k)]
        t2 = time.perf_counter()
        syn_pc = [ctx.aug.apply(images[labels == c], params) for c in range(k)]
        loss_ref = dm_loss_per_class_loop(net, real_pc, syn_pc)
        images.grad = None
        loss_ref.backward()
        t3 = time.perf_counter()
        if rep == 0:
            continue  # warm-up
        t_ours.append(t1 - t0)
        t_ref.append(t3 - t2)
        lo, lr_ = float(loss_ours.detach()), float(loss_ref.detach())
        print(f"  losses: fyi-apps {lo!r}, per-class loop {lr_!r}", flush=True)
        rel.append(abs(lo - lr_) / abs(lr_))
    ours, ref = min(t_ours), min(t_ref)
    return {"ipc": args.dm_ipc, "batch_real": args.batch_real, "seconds_ours": ours, "seconds_per_class_loop": ref,
            "ratio": ours / ref, "max_rel_loss_diff": max(rel), "repeats": args.repeats,
            "note": "forward+backward of the matching loss (the part the two implementations differ in)"}


# --------------------------------------------------------------------------- one configuration (worker)
def run_worker(spec: dict) -> dict:
    from fyi_apps.data import load_dataset
    from fyi_apps.distill import DistillConfig, Distiller
    from fyi_apps.runtime import resolve_device

    device = resolve_device(spec["device"])
    torch.set_num_threads(spec["threads"])
    ds = load_dataset(spec["dataset"])
    bf16 = spec["precision"] == "bf16"
    cfg = DistillConfig(method=spec["method"], dataset=spec["dataset"], ipc=spec["ipc"], fyi=spec["fyi"],
                        iterations=10**6, batch_real=spec["batch_real"], seed=0, bf16=bf16, channels_last=bf16)
    d = Distiller(cfg, ds, device=device)
    stored, labels = d._init_images()
    d.method.setup(torch.nn.Parameter(stored), labels)
    out = {**spec}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    meter = PeakRSS()
    if spec["method"] not in ("dc", "dsa", "idc"):
        d.method.step(0)  # warm-up
        base_rss = _current_rss_mb()
        meter.__enter__()
        ts = []
        for it in range(spec["iterations"]):
            t = time.perf_counter()
            d.method.step(it + 1)
            ts.append(time.perf_counter() - t)
        meter.__exit__(None, None, None)
        out["seconds_per_iteration"] = min(ts)
        out["timed"] = "full iteration"
    elif spec["method"] == "idc":
        # One IDC iteration = inner_loop rounds of (match every class, train the net on real data)
        # on a new net (its construction is negligible; early real training is off by default):
        # time one round on a kept net and scale.
        m = d.method
        rounds = m.inner_loop
        m.inner_loop = 1
        m.net = d.ctx.new_net()
        m.opt_net = m._net_optimiser(m.net)
        m.fix_iter = 10**9
        m.step(1)  # warm-up
        base_rss = _current_rss_mb()
        meter.__enter__()
        ts = []
        for it in range(spec["iterations"]):
            t = time.perf_counter()
            m.step(1)
            ts.append(time.perf_counter() - t)
        meter.__exit__(None, None, None)
        out.update(seconds_round=min(ts), rounds=rounds, seconds_per_iteration=rounds * min(ts),
                   timed="implied from one round (match all classes + net update) x inner_loop")
    else:
        m = d.method
        o = d.cfg.options
        net = d.ctx.new_net()
        opt_net = torch.optim.SGD(net.parameters(), lr=float(o["lr_net"]))
        t_match, t_inner = [], []
        base_rss = _current_rss_mb()
        meter.__enter__()
        for rep in range(spec["iterations"] + 1):
            t = time.perf_counter()
            loss = m.match_loss(net) if hasattr(m, "match_loss") else None
            m.opt.zero_grad(set_to_none=True)
            loss.backward()
            m.opt.step()
            t1 = time.perf_counter()
            saved_inner = o.get("inner_loop")
            o["inner_loop"] = 1
            m.train_net(net, opt_net)
            o["inner_loop"] = saved_inner
            t2 = time.perf_counter()
            if rep:
                t_match.append(t1 - t)
                t_inner.append(t2 - t1)
        meter.__exit__(None, None, None)
        outer, inner = int(o.get("outer_loop", 1)), int(o.get("inner_loop", 1))
        tm, ti = min(t_match), min(t_inner)
        out.update(seconds_match_step=tm, seconds_inner_epoch=ti, outer_loop=outer, inner_loop=inner,
                   seconds_per_iteration=outer * tm + (outer - 1) * inner * ti, timed="implied from match step + inner epoch")
    out["peak_mem_mb"] = (torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda"
                          else max(meter.peak - base_rss, 0.0))
    return out


def run_eval_speed(args, ds, device) -> list[dict]:
    """Evaluation retraining: seconds per epoch on an IPC-10 random subset, fp32 vs bf16+channels_last."""
    from fyi_apps.baselines import random_subset
    from fyi_apps.evaluate import EvalConfig, train_network
    from fyi_apps.networks import create_model
    from fyi_apps.runtime import make_generator

    s = random_subset(ds, 10, seed=0)
    rows = []
    variants = [(prec, None) for prec in args.precisions] + [("fp32", 0)]  # micro_batch 0: whole batches
    for prec, micro in variants:
        bf16 = prec == "bf16"
        cfg = EvalConfig(epochs=args.eval_epochs, bf16=bf16, channels_last=bf16, micro_batch=micro)
        net = create_model("convnet", channels=ds.info.channels, num_classes=10, image_size=ds.info.image_size, seed=0)
        t = time.perf_counter()
        train_network(net, s.images, s.labels, cfg, lr=0.01, generator=make_generator(0), device=device)
        sec = (time.perf_counter() - t) / args.eval_epochs
        rows.append({"precision": prec, "batches": "whole (reference style)" if micro == 0 else "default (slices on CPU)",
                     "seconds_per_epoch_ipc10": sec, "seconds_1000_epochs_ipc10": sec * 1000})
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="cifar10")
    p.add_argument("--methods", default="dm,dc,dsa,idc")
    p.add_argument("--ipcs", default="1,10,50")
    p.add_argument("--precisions", default="fp32,bf16")
    p.add_argument("--iterations", type=int, default=2, help="timed iterations per configuration (min is reported)")
    p.add_argument("--batch-real", type=int, default=256)
    p.add_argument("--dm-ipc", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3, help="repeats of the DM vs per-class-loop comparison")
    p.add_argument("--eval-epochs", type=int, default=20)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--device", default="auto")
    p.add_argument("--quick", action="store_true", help="IPC 1 and 10, fp32, DM and DSA only")
    p.add_argument("--json", default="benchmarks/results/speed.json")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(run_worker(json.loads(args.worker))))
        return 0
    if args.quick:
        args.methods, args.ipcs, args.precisions, args.iterations, args.repeats, args.eval_epochs = (
            "dm,dsa", "1,10", "fp32", 1, 2, 5)
    args.precisions = args.precisions.split(",")

    from fyi_apps.data import load_dataset
    from fyi_apps.report import table
    from fyi_apps.runtime import package_versions, resolve_device, write_json

    device = resolve_device(args.device)
    ds = load_dataset(args.dataset)
    print(f"dataset {ds.info.name}: {ds.source}; device {device}; {args.threads} threads")

    dm = dm_compare(args, ds, device)
    print(table([[f"{dm['seconds_ours']:.3f}", f"{dm['seconds_per_class_loop']:.3f}", f"{dm['ratio']:.2f}",
                  f"{dm['max_rel_loss_diff']:.1e}"]],
                ["fyi-apps DM s", "per-class loop s", "ratio", "max rel. loss diff"]))

    rows = []
    parts = Path(args.json).with_suffix(".parts")  # one file per measured configuration: reruns resume
    for method in args.methods.split(","):
        for ipc in [int(i) for i in args.ipcs.split(",")]:
            for fyi in (None, "flip"):
                for prec in args.precisions:
                    spec = {"method": method, "ipc": ipc, "fyi": fyi, "precision": prec, "dataset": args.dataset,
                            "iterations": args.iterations, "batch_real": args.batch_real, "device": args.device,
                            "threads": args.threads}
                    part = parts / (hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16] + ".json")
                    if part.exists():  # measured by an earlier, interrupted run of the same command
                        res = json.loads(part.read_text())
                    else:
                        r = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)],
                                           capture_output=True, text=True)
                        if r.returncode != 0:
                            print(f"{method} ipc{ipc} fyi={fyi} {prec}: failed\n{r.stderr[-2000:]}")
                            continue
                        res = json.loads(r.stdout.strip().splitlines()[-1])
                        write_json(part, res)
                    rows.append(res)
                    print(f"{method:<4} ipc {ipc:<3} {'fyi' if fyi else '   '} {prec}: "
                          f"{res['seconds_per_iteration']:.3f} s/it, peak {res['peak_mem_mb']:.0f} MB", flush=True)
    ev = run_eval_speed(args, ds, device)
    print()
    print(table([[r["method"], r["ipc"], "on" if r["fyi"] else "off", r["precision"], f"{r['seconds_per_iteration']:.3f}",
                  f"{r['peak_mem_mb']:.0f}", r["timed"]] for r in rows],
                ["method", "IPC", "FYI", "precision", "s / iteration", "peak MB", "timed"]))
    print()
    print(table([[r["precision"], r["batches"], f"{r['seconds_per_epoch_ipc10']:.3f}",
                  f"{r['seconds_1000_epochs_ipc10']:.0f}"] for r in ev],
                ["evaluation precision", "batches", "s / epoch (IPC 10)", "s / 1000 epochs"]))
    out = Path(args.json)
    write_json(out, {"command": " ".join([sys.executable.split('/')[-1], *sys.argv]), "dm_vs_per_class_loop": dm,
                     "iterations": rows, "evaluation": ev, "versions": package_versions(),
                     "threads": args.threads, "device": str(device)})
    print(f"\nwritten {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
