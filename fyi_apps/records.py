"""Resumable record caches: one sealed JSON record per finished job in a folder, and claims for shared folders.

Also sealed torch files (:func:`save_sealed_torch`, :func:`load_sealed_torch`): checkpoints and partial
states carry the hash of their bytes, so that a changed byte is noticed, not resumed from.

The one cache of finished work used by the NAS runner (:class:`fyi_apps.tasks.nas.RecordCache`, whose
``check`` knows a training record) and by the benchmarks (``benchmarks/harness.py``)::

    cache = RecordCache("runs", suffix=".eval.json")
    rec = cache.fetch(key, lambda: {"acc": evaluate(...)})   # computed once; read back on every later run
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable, Iterable, Optional

from .errors import DamagedFile
from .runtime import atomic_path, claim, claim_alive, read_sealed_json, release_claim, write_sealed_json

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
        reported: the ``(path, why)`` problems already reported (a worker gets its parent's): each is said once.
    """

    def __init__(self, folder: str | os.PathLike, *, suffix: str = ".json", check: RecordCheck | None = None,
                 what: str = "run record", reported: Iterable[tuple[str, str]] = ()):
        self.folder = Path(folder)
        self.suffix = suffix
        self.check = check
        self.what = what
        self.reported: set[tuple[str, str]] = set(reported)

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
        if (str(path), why) in self.reported:  # looked at again before the run replaced it: said once
            return
        self.reported.add((str(path), why))
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


# --------------------------------------------------------------------------- sealed torch files
#: the key of a sealed torch file's wrapper: ``{SEALED: 1, "sha256": hash of payload, "payload": torch.save bytes}``
SEALED = "_fyi_sealed"


def save_sealed_torch(path: str | os.PathLike, obj, what: str = "file") -> Path:
    """``torch.save`` of ``obj`` atomically, with the sha256 of its bytes (read back by :func:`load_sealed_torch`)."""
    import hashlib
    import io

    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    payload = buf.getvalue()
    with atomic_path(path, what) as tmp:
        torch.save({SEALED: 1, "sha256": hashlib.sha256(payload).hexdigest(), "payload": payload}, tmp)
    return Path(path)


def load_sealed_torch(path: str | os.PathLike, *, map_location="cpu", weights_only: bool = True):
    """What :func:`save_sealed_torch` wrote; a file written by plain ``torch.save`` (before sealing) is read as it is.

    Raises :class:`~fyi_apps.errors.DamagedFile` when the bytes no longer match their hash (changed or
    corrupted on disk), and whatever ``torch.load`` raises for an unreadable file.
    """
    import hashlib
    import io

    import torch

    outer = torch.load(path, map_location=map_location, weights_only=weights_only)
    if not (isinstance(outer, dict) and outer.get(SEALED) == 1):
        return outer
    payload = outer.get("payload")
    if not isinstance(payload, bytes) or hashlib.sha256(payload).hexdigest() != outer.get("sha256"):
        why = "its content hash does not match (changed or corrupted on disk)"
        raise DamagedFile(f"{path}: {why}; delete it", why)
    return torch.load(io.BytesIO(payload), map_location=map_location, weights_only=weights_only)
