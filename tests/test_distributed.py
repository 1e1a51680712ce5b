"""Several processes, one run: class-parallel DM/DSA/IDC and sharded experts on two gloo processes (CPU).

Two spawned processes form a gloo process group (as ``torchrun`` would) and run
the library functions inside it; the same calls in this one process are the
reference.  The comparison is bit for bit (``torch.equal``), no tolerance:
each rank draws the one-process random stream, a class's images go through
the same operations on the same numbers, and the ConvNet used here gives
per-image outputs that do not depend on the batch they are computed in (what
class-parallel DM needs; :mod:`fyi_apps.distill.parallel`).  A network built
on matrix products (MLP) or GPU kernels that choose algorithms by batch size
would agree to float rounding only.

One spawn runs every two-process case (starting processes is the slow part
on a small machine); the tests then check its results.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fyi_apps.distill import DistillConfig, Distiller
from fyi_apps.distill.experts import ExpertConfig, ExpertStore, train_experts
from fyi_apps.errors import FyiError
from fyi_apps.synset import load_synset

ARCH = "convnet:depth=1,width=8"
#: the two-process runs: name -> DistillConfig keywords (tiny: digits, a few iterations)
CASES = {
    "dm": dict(method="dm", ipc=2, fyi="flip", iterations=3, batch_real=24),
    "dsa": dict(method="dsa", ipc=2, fyi="flip", iterations=2, batch_real=12,
                options={"outer_loop": 2, "inner_loop": 1}),
    "idc": dict(method="idc", ipc=1, iterations=2, batch_real=12,
                options={"inner_loop": 2, "n_data": 32, "batch_net": 32}),
}
EXPERTS = dict(experts=3, epochs=2, arch="mlp:width=16", batch_size=128, train_per_class=20, dsa=False)


def _config(name: str, **extra) -> DistillConfig:
    return DistillConfig(**{"dataset": "digits", "arch": ARCH, "seed": 3, "checkpoint_every": 100, **CASES[name], **extra})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _in_group(rank: int, world: int, port: int, folder: str) -> None:
    """One rank: join the gloo group, run every case into ``folder`` (rank 0 writes the files)."""
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        _cases(rank, Path(folder))
    finally:
        dist.destroy_process_group()


def _cases(rank: int, out: Path) -> None:
    from fyi_apps.data import load_dataset

    digits = load_dataset("digits")
    for name in CASES:
        d = Distiller(_config(name), digits, device="cpu")
        synset = d.run(out / f"{name}.safetensors", progress=False)
        torch.save({"images": synset.images, "classes": list(d.ctx.shard.classes)}, out / f"{name}.rank{rank}.pt")
    # a run stopped after one iteration (checkpoint), then resumed by new Distillers
    cfg = _config("dsa", checkpoint_every=1)
    assert Distiller(cfg, digits, device="cpu").run(out / "resumed.safetensors", progress=False, stop_after=1) is None
    assert (out / "resumed.ckpt.pt").exists()
    resumed = Distiller(cfg, digits, device="cpu")
    resumed.run(out / "resumed.safetensors", resume=True, progress=False)
    assert resumed.start_iteration == 1
    # experts: dealt to the ranks, one folder
    train_experts(ExpertConfig(dataset="digits", **EXPERTS), digits, out / "experts", device="cpu", progress=False)
    # MTT cannot split: one clear error on every rank
    try:
        Distiller(DistillConfig(method="mtt", dataset="digits", ipc=1, iterations=1), digits, device="cpu")
    except FyiError as e:
        (out / f"mtt.rank{rank}.txt").write_text(str(e))


@pytest.fixture(scope="module")
def two_process_runs(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("two-processes")
    ctx = multiprocessing.get_context("spawn")
    port = _free_port()
    procs = [ctx.Process(target=_in_group, args=(rank, 2, port, str(out))) for rank in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
    assert [p.exitcode for p in procs] == [0, 0]
    return out


@pytest.mark.parametrize("name", list(CASES))
def test_two_processes_give_the_one_process_set(two_process_runs, digits, name):
    one = Distiller(_config(name), digits, device="cpu")
    single = one.run(progress=False)
    written = load_synset(two_process_runs / f"{name}.safetensors")
    assert torch.equal(written.images, single.images)
    assert written.labels.tolist() == single.labels.tolist()
    ranks = [torch.load(two_process_runs / f"{name}.rank{r}.pt") for r in range(2)]
    assert ranks[0]["classes"] == [0, 1, 2, 3, 4] and ranks[1]["classes"] == [5, 6, 7, 8, 9]
    assert all(torch.equal(r["images"], single.images) for r in ranks)  # every rank returns the whole set
    assert not (two_process_runs / f"{name}.ckpt.pt").exists()
    log = json.loads((two_process_runs / f"{name}.log.json").read_text())["log"]
    # the logged loss is the sum of the ranks' shares: the one-process loss up to the order of the additions
    assert [r["loss"] for r in log] == pytest.approx([r["loss"] for r in one.log], rel=1e-5)


def test_a_stopped_two_process_run_resumes_to_the_same_set(two_process_runs, digits):
    single = Distiller(_config("dsa"), digits, device="cpu").run(progress=False)
    assert torch.equal(load_synset(two_process_runs / "resumed.safetensors").images, single.images)
    assert not (two_process_runs / "resumed.ckpt.pt").exists()


def test_two_processes_train_the_one_process_experts(two_process_runs, digits, tmp_path):
    store = ExpertStore(two_process_runs / "experts")
    single = train_experts(ExpertConfig(dataset="digits", **EXPERTS), digits, tmp_path / "single", device="cpu",
                           progress=False)
    assert [e["index"] for e in store.experts] == [0, 1, 2]
    for k in range(3):
        assert torch.equal(store.trajectory(k), single.trajectory(k))
    assert not list((two_process_runs / "experts").glob("*.lock"))


def test_mtt_refuses_several_processes_in_one_line(two_process_runs):
    for rank in range(2):
        msg = (two_process_runs / f"mtt.rank{rank}.txt").read_text()
        assert "mtt cannot run class-parallel over 2 processes" in msg and "\n" not in msg


def test_one_process_shard_is_everything():
    from fyi_apps.distill.parallel import ClassShard
    from fyi_apps.distributed import block

    shard = ClassShard(10)
    assert not shard.parallel and shard.is_main and list(shard.classes) == list(range(10))
    assert [list(block(10, r, 3)) for r in range(3)] == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]
    assert ClassShard(10, 1, 3).bounds(20) == [(0, 8), (8, 14), (14, 20)]
    with pytest.raises(FyiError, match="class-major"):
        ClassShard(10, 0, 2).bounds(15)


def test_torchrun_distill_command_resumes(digits, tmp_path):
    """``torchrun ... fyi distill --resume`` continues the checkpoint of a stopped run and writes the one file.

    torchrun's ranks take ``cores / 2`` threads each (``init_distributed``); this process uses as many for the
    checkpoint and the reference, so that the arithmetic is the same on machines with more cores.
    """
    from fyi_apps.distributed import default_threads

    threads = torch.get_num_threads()
    torch.set_num_threads(default_threads(2))
    try:
        reference = Distiller(_config("dm"), digits, device="cpu").run(progress=False)
        out = tmp_path / "dm.safetensors"
        Distiller(_config("dm", checkpoint_every=1), digits, device="cpu").run(out, progress=False, stop_after=2)
    finally:
        torch.set_num_threads(threads)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "fyi_apps.cli", "--device", "cpu", "--seed", "3", "distill", "--method", "dm",
           "--dataset", "digits", "--ipc", "2", "--fyi", "--iterations", "3", "--batch-real", "24", "--arch", ARCH,
           "--checkpoint-every", "1", "--no-grid", "--resume", "-o", str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("resuming from") == proc.stdout.count("stored images") == 1  # rank 0 reports
    assert torch.equal(load_synset(out).images, reference.images)


def test_a_stale_lock_is_taken_over(tmp_path):
    from fyi_apps.distributed import locked

    lock = tmp_path / "experts.json.lock"
    lock.write_text(json.dumps({"host": "another-machine", "pid": 1, "time": 0}))
    os.utime(lock, (0, 0))  # its holder was killed long ago on a machine this process cannot ask
    with locked(lock, stale_after=60):
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert not lock.exists()
