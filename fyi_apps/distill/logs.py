"""What a distillation run writes beside its synthetic set: the metrics log as JSON and CSV, and the curves (PNG)."""
from __future__ import annotations

import csv
import dataclasses
import io
from pathlib import Path

from ..runtime import atomic_path, write_json


def log_json_path(stem: Path) -> Path:
    """``<stem>.log.json``: where a run's metrics log lies beside its set (``stem``: the output without suffix)."""
    return stem.with_name(stem.name + ".log.json")


def write_log(stem: Path, cfg, log: list[dict], *, precision_used: str | None = None) -> None:
    """``<stem>.log.json`` (config and rows), ``<stem>.log.csv`` (one row per iteration), ``<stem>.curves.png``.

    Args:
        stem: the output file's path without its suffix (``out/dm_digits_ipc1``).
        cfg: the run's resolved :class:`~fyi_apps.distill.config.DistillConfig`.
        log: one dict of metrics per iteration (``iteration``, ``loss``, ``seconds``, ...).
        precision_used: the precision the real-image passes ran in (``cfg.precision`` resolved for the device).
    """
    config = {**dataclasses.asdict(cfg), **({"precision_used": precision_used} if precision_used else {})}
    write_json(log_json_path(stem), {"config": config, "log": log}, what="distillation log")
    keys: list[str] = []
    for row in log:
        keys += [k for k in row if k not in keys]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys)
    w.writeheader()
    w.writerows(log)
    with atomic_path(stem.with_name(stem.name + ".log.csv"), "distillation log") as tmp:
        tmp.write_text(buf.getvalue())
    try:
        from ..plots import training_curves

        training_curves(log, stem.with_name(stem.name + ".curves.png"),
                        title=f"{cfg.method}{' + FYI' if cfg.fyi else ''} on {cfg.dataset}, IPC {cfg.ipc}")
    except ImportError:
        pass
