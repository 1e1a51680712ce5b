"""Resumable record caches: one sealed JSON record per finished job in a folder, and claims for shared folders.

The one cache of finished work used by the NAS runner (:class:`fyi_apps.tasks.nas.RecordCache`, whose
``check`` knows a training record) and by the benchmarks (``benchmarks/harness.py``)::

    cache = RecordCache("runs", suffix=".eval.json")
    rec = cache.fetch(key, lambda: {"acc": evaluate(...)})   # computed once; read back on every later run
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable, Optional

from .runtime import claim, claim_alive, read_sealed_json, release_claim, write_sealed_json

#: ``check(record, key)``: why a record read back is not a finished job's record for ``key`` (None when it is one)
RecordCheck = Callable[[dict, str], Optional[str]]


class RecordCache:
    """One JSON file per finished job, ``<folder>/<key><suffix>``, written atomically and sealed with a content hash.

    A record that is unreadable, whose hash does not match, or that ``check``
    refuses is reported on stderr with its path and treated as missing: it is
    a cache, so the job runs again and replaces it.  A file written before
    records were sealed (no hash) is read as it is, so old caches stay valid.

    Two processes sharing the folder share the work: a job is *claimed*
    (``<key>.claim``, created exclusively, holding the claimant's host and pid)
    before it runs; the other process skips it and later picks up its record,
    or takes it over when the claimant has died.

    Args:
        folder: where the records live (created on the first write).
        suffix: the file-name ending after the key (``".json"``, ``".eval.json"``).
        check: validates a record read back (default: any JSON object is a record).
        what: the words for a record in messages and write errors.
    """

    def __init__(self, folder: str | os.PathLike, *, suffix: str = ".json", check: RecordCheck | None = None,
                 what: str = "run record"):
        self.folder = Path(folder)
        self.suffix = suffix
        self.check = check
        self.what = what

    def path(self, key: str) -> Path:
        """The record's file."""
        return self.folder / f"{key}{self.suffix}"

    def get(self, key: str) -> dict | None:
        """The finished record of ``key``, or None (missing, or reported as unusable)."""
        p = self.path(key)
        rec, why = read_sealed_json(p)
        if rec is None:
            if why != "missing":
                self._warn(p, why)
            return None
        problem = self.check(rec, key) if self.check is not None else None
        if problem:
            self._warn(p, problem)
            return None
        return rec

    def put(self, record: dict, key: str | None = None) -> Path:
        """Write ``record`` (sealed, atomically) under ``key``, by default its own ``"key"`` field."""
        return write_sealed_json(self.path(record["key"] if key is None else key), record, self.what)

    def fetch(self, key: str, compute: Callable[[], dict]) -> dict:
        """The record of ``key``: read back, or ``compute()``-d and written first."""
        rec = self.get(key)
        if rec is None:
            rec = compute()
            self.put(rec, key)
        return rec

    def keys(self) -> set[str]:
        """The keys of the records on disk (usable or not)."""
        if not self.folder.exists():
            return set()
        n = len(self.suffix)
        return {p.name[:-n] for p in self.folder.glob(f"*{self.suffix}")}

    def _warn(self, path: Path, why: str) -> None:
        print(f"fyi: warning: {self.what} {path} is not usable ({why}); it is a cache entry, so the run is done again "
              "and the record replaced", file=sys.stderr)

    # ------------------------------------------------------------- claims
    def claim_path(self, key: str) -> Path:
        return self.folder / f"{key}.claim"

    def claim(self, key: str) -> bool:
        """Claim a job for this process; False when a live process holds it (:func:`fyi_apps.runtime.claim`)."""
        return claim(self.claim_path(key))

    def release(self, key: str) -> None:
        release_claim(self.claim_path(key))

    def claimed_elsewhere(self, key: str) -> bool:
        return claim_alive(self.claim_path(key))
