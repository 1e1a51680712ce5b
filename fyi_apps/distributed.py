"""Several processes, one run: the process group ``torchrun`` starts, ranks, collectives, a lock between processes.

Started by ``torchrun --nproc-per-node N`` (environment ``WORLD_SIZE`` > 1), a
command joins the process group with :func:`init_distributed` (NCCL with one GPU
per local rank, gloo on CPUs) or :func:`distributed_session`.  Library code asks
:func:`rank_world`; outside a process group it is ``(0, 1)`` and every helper
here does nothing but the one-process work, so code written for several ranks
runs unchanged in one.

Collectives: :func:`gather_rows` (every rank's own block of rows into every
rank's copy of a tensor), :func:`all_sum` (a few numbers summed over the
ranks), :func:`on_main` (rank 0 runs a function -- reading or writing a file
-- and every rank gets its result, or raises its error), :func:`barrier`.
:func:`locked` serialises a short critical section between processes through
a lock file (e.g. several ranks updating one index file).

Used by the NAS and cross-architecture job runner (jobs sharded by candidate),
class-parallel distillation and sharded expert training
(:mod:`fyi_apps.distill.parallel`).
"""
from __future__ import annotations

import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch

from .errors import FyiError


def rank_world() -> tuple[int, int]:
    """``(rank, world size)`` of the initialised process group; ``(0, 1)`` without one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def default_threads(workers: int) -> int:
    """CPU threads per process when ``workers`` processes share this machine's cores."""
    return max(1, (os.cpu_count() or 1) // max(1, int(workers)))


def init_distributed(device: str | torch.device = "auto", threads: int | None = None) -> torch.device:
    """Join the process group when started by ``torchrun`` (``WORLD_SIZE`` > 1); return this rank's device.

    NCCL on CUDA (one GPU per local rank), gloo otherwise; on CPU the cores are
    shared between the local ranks unless ``threads`` is given.
    """
    import torch.distributed as dist

    from .runtime import resolve_device

    device = resolve_device(device)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return device
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank % max(torch.cuda.device_count(), 1))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    if device.type == "cpu":
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
        torch.set_num_threads(threads or default_threads(local_world))
    return device


def finish_distributed() -> None:
    """Wait for every rank, then leave the process group (nothing without one)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


@contextmanager
def distributed_session(device: str | torch.device = "auto", threads: int | None = None) -> Iterator[torch.device]:
    """:func:`init_distributed` on entry (yields this rank's device), :func:`finish_distributed` on exit.

    On an error the process leaves the group without waiting for the others
    (they may be inside another collective); torchrun then stops them.
    """
    import torch.distributed as dist

    device = init_distributed(device, threads)
    try:
        yield device
    except BaseException:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
        raise
    finish_distributed()


def shard(items: Sequence, rank: int, world: int) -> list:
    """The items of rank ``rank`` of ``world``: ``items[rank::world]``."""
    if world < 1 or not 0 <= rank < world:
        raise FyiError(f"bad rank {rank} of world size {world}")
    return list(items)[rank::world]


def block(n: int, rank: int, world: int) -> range:
    """Rank ``rank``'s contiguous share of ``range(n)``: sizes differ by at most one, lower ranks get more."""
    if world < 1 or not 0 <= rank < world:
        raise FyiError(f"bad rank {rank} of world size {world}")
    size, extra = divmod(int(n), world)
    start = rank * size + min(rank, extra)
    return range(start, start + size + (rank < extra))


def barrier() -> None:
    """Wait until every rank is here (nothing without a process group)."""
    if rank_world()[1] > 1:
        import torch.distributed as dist

        dist.barrier()


def _comm_device() -> torch.device:
    """Where the process group's tensors must live: this rank's GPU for NCCL, else the CPU."""
    import torch.distributed as dist

    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_sum(values: Sequence[float]) -> list[float]:
    """``values`` summed element-wise over the ranks (float64); unchanged without a process group."""
    if rank_world()[1] == 1:
        return [float(v) for v in values]
    import torch.distributed as dist

    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=_comm_device())
    dist.all_reduce(t)
    return t.tolist()


def gather_rows(x: torch.Tensor, bounds: Sequence[tuple[int, int]]) -> torch.Tensor:
    """``x`` with rows ``bounds[r][0]:bounds[r][1]`` taken from rank ``r``'s ``x``, for every rank ``r``.

    Every rank passes a tensor of the same shape and the same ``bounds`` (one
    ``(start, stop)`` per rank); the result is the same tensor on every rank,
    bit for bit the rows each owner holds.  Without a process group: ``x``.
    """
    rank, world = rank_world()
    if world == 1:
        return x
    if len(bounds) != world:
        raise FyiError(f"gather_rows needs one (start, stop) per rank: {len(bounds)} for {world} ranks")
    import torch.distributed as dist

    dev = _comm_device()
    size = max(hi - lo for lo, hi in bounds)
    lo, hi = bounds[rank]
    mine = torch.zeros((size, *x.shape[1:]), dtype=x.dtype, device=dev)  # equal sizes: NCCL's all_gather needs them
    mine[: hi - lo] = x.detach()[lo:hi].to(dev)
    parts = [torch.empty_like(mine) for _ in range(world)]
    dist.all_gather(parts, mine)
    out = x.detach().clone()
    for (lo, hi), part in zip(bounds, parts):
        out[lo:hi] = part[: hi - lo].to(out.device)
    return out


def on_main(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` on rank 0; every rank returns its result (pickled), or raises its error.

    For what one process must do alone (read a checkpoint, write a file) while
    the others wait: an error on rank 0 stops every rank with the same message
    instead of leaving them waiting.  Without a process group: ``fn(...)``.
    """
    rank, world = rank_world()
    if world == 1:
        return fn(*args, **kwargs)
    import torch.distributed as dist

    box: list = [None]
    failure: BaseException | None = None
    if rank == 0:
        try:
            box = [("ok", fn(*args, **kwargs))]
        except FyiError as e:
            box = [("error", e)]
        except Exception as e:  # noqa: BLE001 - the other ranks must not wait forever; rank 0 re-raises it
            failure = e
            box = [("error", FyiError(f"rank 0 failed: {type(e).__name__}: {e}"))]
    dist.broadcast_object_list(box, src=0)
    kind, value = box[0]
    if failure is not None:
        raise failure
    if kind == "error":
        raise value
    return value


@contextmanager
def locked(path: str | os.PathLike, *, stale_after: float = 60.0, poll: float = 0.01) -> Iterator[None]:
    """Hold the lock file ``path`` while the block runs (waits while another live process holds it).

    For short critical sections (seconds at most): a lock whose holder died,
    or one older than ``stale_after`` seconds (a holder on another machine that
    was killed), is taken over.
    """
    from .runtime import claim, release_claim

    lock = Path(path)
    while not claim(lock):
        try:
            if time.time() - lock.stat().st_mtime > stale_after:
                release_claim(lock)
                continue
        except FileNotFoundError:
            continue
        time.sleep(poll)
    try:
        yield
    finally:
        release_claim(lock)
