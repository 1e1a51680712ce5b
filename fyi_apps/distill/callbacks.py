"""Callbacks of the distillation loop: work done every N iterations beside the method's step.

The loop (:class:`~fyi_apps.distill.base.Distiller`) calls every callback after
each iteration with the metrics row of that iteration; a callback may add
entries to the row, which then land in the run's log (JSON, CSV, curves).
Two are built in and made from the config:

* :class:`ScoreCallback` (``score_every``): the unequalness score
  ``D(S, flip S)`` of the current synthetic images (paper Fig. 5);
* :class:`EvalCallback` (``eval_every``): test accuracy of a ConvNet trained
  on the current images for ``eval_epochs`` epochs (one seed).

A user callback is any object with ``on_iteration(distiller, iteration, row)``
(``iteration`` counts from 1), passed as ``Distiller.run(..., callbacks=[...])``::

    class PrintLoss(Callback):
        def on_iteration(self, distiller, iteration, row):
            if iteration % 100 == 0:
                print(iteration, row["loss"])
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ..errors import FyiError, command_line_active, python_spelling

if TYPE_CHECKING:
    from .base import Distiller


class Callback:
    """Called after every iteration; add entries to ``row`` to log them."""

    def on_iteration(self, distiller: "Distiller", iteration: int, row: dict) -> None:  # pragma: no cover - hook
        pass


def check_callbacks(callbacks) -> list:
    """``callbacks`` as a list of objects with ``on_iteration`` (a single one, a function ... is one line)."""
    if not isinstance(callbacks, (list, tuple)):
        raise FyiError(f"callbacks must be a list of objects with on_iteration(distiller, iteration, row) "
                       f"(fyi_apps.distill.Callback), got {type(callbacks).__name__}")
    bad = [c for c in callbacks if not callable(getattr(c, "on_iteration", None))]
    if bad:
        raise FyiError(f"callbacks: {bad[0]!r} has no on_iteration(distiller, iteration, row) method; subclass "
                       "fyi_apps.distill.Callback")
    return list(callbacks)


def current_images(distiller: "Distiller") -> tuple[torch.Tensor, torch.Tensor]:
    """The images networks would train on now (decoded for IDC) and their labels."""
    method = distiller.method
    with torch.no_grad():
        x = method.decode(method.images.detach())
    return x, method.decoded_labels(method.labels)


class ScoreCallback(Callback):
    """``row["score"]``: D(S, flip S) with DM's distance every ``every`` iterations and at the last one."""

    def __init__(self, every: int, num_nets: int = 2):
        self.every, self.num_nets = int(every), int(num_nets)

    def on_iteration(self, distiller, iteration, row):
        if iteration % self.every and iteration != distiller.cfg.iterations:
            return
        from .score import unequalness

        x, y = current_images(distiller)
        row["score"] = unequalness(x, y, distiller.ctx.num_classes, distance="dm", arch=distiller.cfg.arch,
                                   num_nets=self.num_nets, seed=0, device=distiller.device)["score"]


class EvalCallback(Callback):
    """``row["eval_acc"]``: a quick one-seed evaluation every ``every`` iterations."""

    def __init__(self, every: int, epochs: int):
        self.every, self.epochs = int(every), int(epochs)

    def on_iteration(self, distiller, iteration, row):
        if iteration % self.every:
            return
        from ..evaluate import EvalConfig, evaluate_images

        x, y = current_images(distiller)
        res = evaluate_images(x.cpu(), y.cpu(), distiller.dataset, arch="convnet", cfg=EvalConfig(epochs=self.epochs),
                              seeds=[0], learned_lr=distiller.method.learned_lr(), device=distiller.device)
        row["eval_acc"] = res.mean


def from_config(cfg) -> list[Callback]:
    """The built-in callbacks a config asks for (``score_every``, ``eval_every``), in that order."""
    out: list[Callback] = []
    for flag, every in (("--score-every", cfg.score_every), ("--eval-every", cfg.eval_every)):
        if every and every > cfg.iterations:  # it would never fire: harmless, but not ignored silently
            import sys

            text = (f"{flag} {every} is more than --iterations {cfg.iterations}, so it never runs; use {flag} "
                    f"{cfg.iterations} or less")
            print(f"fyi: warning: {text if command_line_active() else python_spelling(text)}", file=sys.stderr)
    if cfg.score_every:
        out.append(ScoreCallback(cfg.score_every))
    if cfg.eval_every:
        out.append(EvalCallback(cfg.eval_every, cfg.eval_epochs))
    return out
