"""The record cache of a ranking: :class:`fyi_apps.records.RecordCache` with the check of a finished job's record."""
from __future__ import annotations

import os
from typing import Iterable

from ... import records


class RecordCache(records.RecordCache):
    """The ranking's record cache: ``<folder>/<key>.json``, one sealed record per finished training or scoring job.

    :class:`fyi_apps.records.RecordCache` (sealed records, claims for two processes sharing the folder)
    whose records are checked by :func:`record_problem`: one that is not a finished job's record is
    reported on stderr and treated as missing, so the job runs again and replaces it.
    """

    def __init__(self, folder: str | os.PathLike, reported: Iterable[tuple[str, str]] = ()):
        super().__init__(folder, check=record_problem, reported=reported)


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def record_problem(rec: dict, key: str) -> str | None:
    """Why ``rec`` is not a finished job's record for ``key`` (None when it is one)."""
    if rec.get("key") != key:
        return f"it belongs to another run (key {rec.get('key')!r})"
    if rec.get("error"):
        return None if isinstance(rec["error"], str) else "its error field is not text"
    if "scores" in rec:  # a zero-cost scoring job
        if not isinstance(rec["scores"], dict) or not all(v is None or _number(v) for v in rec["scores"].values()):
            return "its scores are not numbers"
        if not isinstance(rec.get("score_seconds"), dict) or not all(_number(v) for v in rec["score_seconds"].values()):
            return "its score times are not numbers"
        return None
    if not _number(rec.get("acc")) or not 0.0 <= rec["acc"] <= 1.0:
        return f"its accuracy {rec.get('acc')!r} is not a number in [0, 1]"
    if not _number(rec.get("train_seconds")):
        return "its training time is not a number"
    curve = rec.get("curve")
    if curve is not None:
        if not isinstance(curve, list) or not all(
                isinstance(p, dict) and all(_number(p.get(k)) for k in ("images", "acc", "seconds")) for p in curve):
            return "its learning curve is not a list of numeric points"
    return None
