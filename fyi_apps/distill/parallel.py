"""Class-parallel distillation: several processes (``torchrun``), each with a share of the classes.

DM's loss is a sum of per-class terms given one random network; DC, DSA and
IDC match per-class gradients.  So each process (*rank*) owns a contiguous
block of classes (:func:`fyi_apps.distributed.block`) and computes only their
terms and their images' updates.  Everything else is the one-process run,
repeated on every rank:

* **One random stream.**  Every rank draws everything the one-process run
  draws, in the same order, from the same seed: the networks, the real
  indices of *every* class (another rank's class is drawn and skipped:
  :meth:`ClassShard.real_all`, ``dc.skip_class``, ``IDC.skip_class``), the
  DSA parameters.  So every rank holds the same network at every step.
* **Every rank holds the whole image tensor**; only the rows of its own
  classes are current.  The rows travel (:meth:`ClassShard.share_rows`, an
  all-gather) when a rank needs them all: before DC's and DSA's inner network
  updates, which train on every class; before callbacks; for checkpoints and
  for the result.  DM and IDC (whose network learns from real data) need no
  images of other ranks until then.
* **The same arithmetic.**  A class's images see the same operations on the
  same numbers as in one process.  DM's class means are one matrix product
  over all rows: a rank puts its features into the one-process layout (zero
  rows for the other classes, :meth:`ClassShard.spread`) so that the product
  adds the same numbers in the same order.  With networks whose per-image
  outputs do not depend on the batch they are computed in (ConvNet on a CPU:
  instance norm, convolutions), a class-parallel run gives the one-process
  synthetic set bit for bit; matrix products (MLP) and GPU kernels that pick
  algorithms by batch size can differ in the last bits.
* **Rank 0 writes** the synthetic set, the checkpoints and the logs
  (:func:`fyi_apps.distributed.on_main`); a checkpoint holds every class
  (images and momentum gathered), so a run can resume with another number of
  processes.  The logged loss is the sum of the ranks' shares.

What does not split: MTT and FTD (one unrolled inner loop through every
synthetic image; refused under ``torchrun``), DM with BatchNorm networks
(batch statistics mix the classes; refused), and the work every rank repeats
(drawing and training the inner networks on real data in IDC, DC's inner
loop on all synthetic images).  A method opts in with ``class_parallel = True``
(DM, DC, DSA, IDC): its ``step`` then works on ``ctx.shard``'s classes only and
makes the random draws of the others; any other method is refused under
``torchrun`` with one line.
"""
from __future__ import annotations

from typing import Any

import torch

from ..distributed import all_sum, block, gather_rows, on_main, rank_world
from ..errors import FyiError
from .config import METHODS

#: why the built-in methods without ``Method.class_parallel`` cannot split
UNROLLED = "trajectory matching unrolls one inner loop through every synthetic image"
WHY_NOT = {"mtt": UNROLLED, "ftd": UNROLLED}


class ClassShard:
    """The classes this process distils (``ctx.shard``): all of them in one process, a block of them under torchrun."""

    def __init__(self, num_classes: int, rank: int = 0, world: int = 1):
        self.num_classes, self.rank, self.world = int(num_classes), int(rank), int(world)
        self.blocks = [block(self.num_classes, r, self.world) for r in range(self.world)]
        #: this rank's classes, a contiguous range
        self.classes = self.blocks[self.rank]

    @classmethod
    def for_run(cls, cfg, num_classes: int) -> "ClassShard":
        """This process's share for a run of ``cfg``: from the initialised process group, if any."""
        rank, world = rank_world()
        if world > 1:
            if not getattr(METHODS[cfg.method], "class_parallel", False):
                why = WHY_NOT.get(cfg.method, "its step is not written per class: Method.class_parallel is False")
                raise FyiError(f"{cfg.method} cannot run class-parallel over {world} processes ({why}); run it "
                               "in one process (torchrun can still train its experts: torchrun ... fyi experts)")
            if world > num_classes:
                raise FyiError(f"{world} processes for {num_classes} classes: every process needs a class; "
                               f"use at most {num_classes} (torchrun --nproc-per-node)")
        return cls(num_classes, rank, world)

    def __repr__(self) -> str:
        return f"ClassShard(rank {self.rank} of {self.world}: classes {self.classes.start}..{self.classes.stop - 1})"

    @property
    def parallel(self) -> bool:
        """Whether other processes own some of the classes."""
        return self.world > 1

    @property
    def is_main(self) -> bool:
        """Whether this process writes files and shows progress (rank 0)."""
        return self.rank == 0

    def owns(self, c: int) -> bool:
        return c in self.classes

    def mask(self, labels: torch.Tensor) -> torch.Tensor:
        """Which of ``labels`` belong to this process's classes (bool, same shape)."""
        return (labels >= self.classes.start) & (labels < self.classes.stop)

    # ------------------------------------------------------------------ the one-process random stream and layout
    def real_all(self, ctx, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``ctx.real_all(n)`` for this process: (its classes' images, every class's labels, the mask of its rows).

        The indices of every class are drawn (the random stream stays the one
        of a one-process run) but only this process's images are loaded.
        """
        idx = torch.cat([ctx.real_indices(c, n) for c in range(self.num_classes)]).to(ctx.device)
        labels = ctx.train_labels[idx]
        mine = self.mask(labels)
        return ctx.normalize(ctx.train_images[idx[mine]]), labels, mine

    @staticmethod
    def spread(rows: torch.Tensor, mine: torch.Tensor) -> torch.Tensor:
        """``rows`` (this process's) placed at ``mine`` in zeros shaped like the one-process tensor (differentiable)."""
        full = rows.new_zeros((mine.shape[0], *rows.shape[1:]))
        return full.index_put((mine.nonzero().flatten(),), rows)

    # ------------------------------------------------------------------ communication
    def bounds(self, rows: int) -> list[tuple[int, int]]:
        """Each rank's rows of a class-major tensor of ``rows`` rows (the same number per class)."""
        if rows % self.num_classes:
            raise FyiError(f"{rows} rows are not class-major over {self.num_classes} classes; "
                           "class-parallel runs need the same number of images per class")
        per = rows // self.num_classes
        return [(b.start * per, b.stop * per) for b in self.blocks]

    def share_rows(self, *tensors: torch.Tensor) -> None:
        """Every rank's class rows into every rank's copy of ``tensors`` (in place; class-major rows)."""
        if not self.parallel:
            return
        with torch.no_grad():
            for t in tensors:
                t.copy_(gather_rows(t.detach(), self.bounds(t.shape[0])))

    def share_state(self, method) -> None:
        """:meth:`share_rows` for the images and every per-image tensor of their optimiser (momentum)."""
        if not self.parallel:
            return
        images = method.images
        state = method.opt.state.get(images, {}) if method.opt is not None else {}
        extra = [v for v in state.values() if isinstance(v, torch.Tensor) and v.shape == images.shape]
        self.share_rows(images, *extra)

    def reduce(self, metrics: dict[str, Any], images: torch.Tensor) -> tuple[dict[str, Any], bool]:
        """The iteration's metrics with ``loss`` summed over the ranks, and whether every rank's images are finite.

        Only ``loss`` is a per-class sum; the other metrics are this rank's
        (the same on every rank for the methods that split).
        """
        finite = bool(torch.isfinite(images).all())
        if not self.parallel:
            return metrics, finite
        loss, bad = all_sum([float(metrics["loss"]), 0.0 if finite else 1.0])
        return {**metrics, "loss": loss}, bad == 0

    def on_main(self, fn, *args, **kwargs):
        """``fn(...)`` on rank 0 only, its result (or error) on every rank."""
        return on_main(fn, *args, **kwargs)
