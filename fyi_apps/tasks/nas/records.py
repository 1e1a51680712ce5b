"""The record cache of a ranking: one sealed JSON record per finished job, and claims for shared folders."""
from __future__ import annotations

import os
from pathlib import Path


class RecordCache:
    """One JSON file per finished job, ``<folder>/<key>.json``, written atomically and sealed with a content hash.

    A record that is unreadable, whose hash does not match, or whose fields
    are not what a finished job writes is reported on stderr with its path and
    treated as missing: it is a cache, so the job runs again and replaces it.

    Two processes sharing the folder share the work: a job is *claimed*
    (``<key>.claim``, created exclusively, holding the claimant's host and pid)
    before it runs; the other process skips it and later picks up its record,
    or takes it over when the claimant has died.
    """

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)

    def path(self, key: str) -> Path:
        return self.folder / f"{key}.json"

    def get(self, key: str) -> dict | None:
        from ...runtime import read_sealed_json

        p = self.path(key)
        rec, why = read_sealed_json(p)
        if rec is None:
            if why != "missing":
                _warn_record(p, why)
            return None
        problem = record_problem(rec, key)
        if problem:
            _warn_record(p, problem)
            return None
        return rec

    def put(self, record: dict) -> None:
        from ...runtime import write_sealed_json

        write_sealed_json(self.path(record["key"]), record, "run record")

    def keys(self) -> set[str]:
        return {p.stem for p in self.folder.glob("*.json")} if self.folder.exists() else set()

    # ------------------------------------------------------------- claims
    def claim_path(self, key: str) -> Path:
        return self.folder / f"{key}.claim"

    def claim(self, key: str) -> bool:
        """Claim a job for this process; False when a live process holds it (:func:`fyi_apps.runtime.claim`)."""
        from ...runtime import claim

        return claim(self.claim_path(key))

    def release(self, key: str) -> None:
        from ...runtime import release_claim

        release_claim(self.claim_path(key))

    def claimed_elsewhere(self, key: str) -> bool:
        from ...runtime import claim_alive

        return claim_alive(self.claim_path(key))


def _warn_record(path: Path, why: str) -> None:
    import sys

    print(f"fyi: warning: run record {path} is not usable ({why}); it is a cache entry, so the run is done again "
          "and the record replaced", file=sys.stderr)


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
