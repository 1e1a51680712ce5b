"""Run-time plumbing shared by every command: devices, seeds, versions, files.

Nothing here knows about datasets or methods.
"""
from __future__ import annotations

import contextlib
import errno
import json
import time
import os
import platform
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

import torch

from .errors import FyiError


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``auto`` picks CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if isinstance(device, torch.device):
        return device
    name = (device or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise FyiError("--device cuda was asked for but no CUDA GPU is visible; use --device cpu or auto")
    if name.split(":")[0] not in ("cpu", "cuda", "mps"):
        raise FyiError(f"unknown device {device!r}; use auto, cpu or cuda")
    return torch.device(name)


def cache_slice(device: torch.device) -> int | None:
    """Images per forward/backward slice for no-cross-sample work: 16 on a CPU, None (whole batch) elsewhere.

    On a CPU the normalisation, activation and pooling after each convolution
    are memory-bound; slices of 16 images keep a ConvNet's activations in cache
    and make a forward 2-3x faster than batches of 256 with the same result.
    """
    return 16 if torch.device(device).type == "cpu" else None


@contextlib.contextmanager
def flush_denormals() -> Iterator[None]:
    """Treat denormal floats as zero on the CPU while the block runs, then restore the previous mode.

    Also a decorator: ``@flush_denormals()``.

    Networks without normalisation (sigmoid ConvNets of the DC search space, say)
    drift into denormal activations and gradients, which x86 CPUs handle
    up to 70x more slowly; flushing them changes nothing a network can notice.
    """
    before = denormals_flushed()
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(before)


def denormals_flushed() -> bool:
    """Whether the CPU currently flushes denormal floats to zero."""
    return float(torch.tensor([1e-39], dtype=torch.float32).mul(1.0).item()) == 0.0


def make_generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A private random stream: nothing in fyi-apps reseeds torch's global RNG."""
    g = torch.Generator(device=torch.device(device))
    g.manual_seed(int(seed))
    return g


def derive_seed(seed: int, *keys: Any) -> int:
    """A stable child seed for a named sub-task (same inputs, same seed, any run)."""
    import hashlib

    text = json.dumps([int(seed), *[str(k) for k in keys]])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:7], "big")


def package_versions() -> dict[str, str]:
    """Versions recorded in every output so that a result can be traced."""
    from importlib import metadata

    out = {"python": platform.python_version(), "torch": torch.__version__}
    for dist in ("fyi-apps", "torchvision", "timm", "avalanche-lib", "numpy", "scikit-learn"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


_FIXES = {
    errno.ENOSPC: "free some space or write to another folder",
    errno.EDQUOT: "free some space or write to another folder",
    errno.EROFS: "write to a folder on a writable disk (--out or -o)",
    errno.EACCES: "write to a folder you may write to (--out or -o)",
    errno.EPERM: "write to a folder you may write to (--out or -o)",
    errno.ENOENT: "check that the folder exists",
    errno.ENOTDIR: "a part of the path is a file, not a folder; choose another path",
    errno.EISDIR: "the path is a folder; give a file name",
    errno.ENAMETOOLONG: "use a shorter file name",
}


def _errno_of(exc: BaseException) -> int | None:
    """The errno behind an OSError, a safetensors error (``Os { code: 28, ... }``) or a torch writer error."""
    if isinstance(exc, OSError) and exc.errno:
        return exc.errno
    import re

    m = re.search(r"Os \{ code: (\d+)", str(exc))
    return int(m.group(1)) if m else None


def _is_write_error(exc: BaseException) -> bool:
    if isinstance(exc, OSError):
        return True
    if type(exc).__name__ == "SafetensorError":
        return True
    msg = str(exc)
    return isinstance(exc, RuntimeError) and any(
        k in msg for k in ("inline_container", "PytorchStreamWriter", "file write failed", "unexpected pos"))


def write_failure(path: str | os.PathLike, exc: BaseException, what: str = "file") -> FyiError:
    """One line for a failed write: the path, what failed (e.g. "no space left on device") and a fix."""
    path = Path(path)
    code = _errno_of(exc)
    if code is None:  # torch's writer does not say why: look at the disk
        import shutil

        try:
            folder = next(p for p in [path.parent, *path.parents] if p.exists())
            if shutil.disk_usage(folder).free < 1 << 20:
                code = errno.ENOSPC
        except (OSError, StopIteration):
            pass
    if code is not None:
        reason = os.strerror(code).lower()
        fix = _FIXES.get(code, "check the path and the disk")
    else:
        first = (str(exc).splitlines() or [type(exc).__name__])[0].strip()[:160]
        reason, fix = f"{type(exc).__name__}: {first}", "check the path and the disk"
    err = FyiError(f"could not write {what} {path}: {reason}; {fix}")
    err.write_failure = True  # the CLI adds what was kept and how to resume
    return err


# --------------------------------------------------------------------------- what a stopped run leaves behind
#: what the current command has kept so far that a rerun resumes from (key -> one phrase)
_KEPT: dict[str, str] = {}


def note_kept(key: str, what: str | None) -> None:
    """Record (or, with None, forget) something a stopped run leaves to resume from, e.g. a checkpoint."""
    if what is None:
        _KEPT.pop(key, None)
    else:
        _KEPT[key] = what


def kept_notes() -> list[str]:
    """What :func:`note_kept` recorded, in order."""
    return list(_KEPT.values())


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, what: str = "file") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    On any error the temporary file is removed and ``path`` is left untouched
    (a crash never leaves a half-written output, and an earlier checkpoint stays
    as it was).  Failed writes (a full disk, a read-only folder, ...), from the
    OS, safetensors or torch, become one :class:`FyiError` line naming
    ``what``, the path and the reason.
    """
    path = Path(path)
    if path.is_dir():
        raise FyiError(f"cannot write {what} {path}: it is a folder; give a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise write_failure(path, e, what) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs are ordinary files
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~umask)  # writers that recreate the file (safetensors) reset the mode
        os.replace(tmp_path, path)
    except Exception as e:  # noqa: BLE001 - only write failures are translated, the rest re-raised
        if isinstance(e, FyiError) or not _is_write_error(e):
            raise
        raise write_failure(path, e, what) from None
    finally:
        try:
            tmp_path.unlink(missing_ok=True)
        except OSError:
            pass


def write_json(path: str | os.PathLike, obj: Any, what: str = "JSON file") -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    text = json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n"
    with atomic_path(path, what) as tmp:
        tmp.write_text(text)
    return Path(path)


#: the field of a sealed JSON file that holds the hash of the rest
SEAL = "_sha256"


def cache_key(obj: Any, n: int | None = None, *, sort_keys: bool = True,
              separators: tuple[str, str] = (",", ":"), default: Any = None, extra: Iterable[Any] = ()) -> str:
    """The sha256 hex digest of ``obj`` as JSON (then of each ``extra``: bytes as they are, else JSON), first ``n``.

    The default is canonical JSON (sorted keys, no spaces).  Keys already on
    disk were made with other settings; their call sites pass them
    (``sort_keys=False``, ``separators=(", ", ": ")``, ``default=str``), so that
    every existing key keeps its value and old caches are still found.
    """
    import hashlib

    h = hashlib.sha256()
    for part in (obj, *extra):
        if not isinstance(part, (bytes, bytearray, memoryview)):
            part = json.dumps(part, sort_keys=sort_keys, separators=separators, default=default).encode()
        h.update(part)
    return h.hexdigest()[:n]


def _seal_digest(obj: dict) -> str:
    return cache_key({k: v for k, v in obj.items() if k != SEAL}, default=_json_default)


def write_sealed_json(path: str | os.PathLike, obj: dict, what: str = "JSON file") -> Path:
    """:func:`write_json` of a dict plus ``_sha256``, the hash of the rest, so that a changed byte is noticed.

    The object is written as it will be read back (JSON round trip), and the
    hash is of that, so floats and tuples compare equal after reading.
    """
    plain = json.loads(json.dumps({k: v for k, v in obj.items() if k != SEAL}, default=_json_default))
    return write_json(path, {**plain, SEAL: _seal_digest(plain)}, what)


def read_sealed_json(path: str | os.PathLike) -> tuple[dict | None, str | None]:
    """``(object, None)`` for an intact sealed file; ``(None, why)`` for a missing, unreadable or altered one.

    A file without ``_sha256`` (written before sealing) is returned as it is.
    """
    p = Path(path)
    try:
        obj = json.loads(p.read_text())
    except FileNotFoundError:
        return None, "missing"
    except (OSError, ValueError) as e:
        return None, f"unreadable ({type(e).__name__})"
    if not isinstance(obj, dict):
        return None, "not a JSON object"
    seal = obj.pop(SEAL, None)
    if seal is not None and seal != _seal_digest(obj):
        return None, "its content hash does not match (changed or corrupted on disk)"
    return obj, None


def save_torch(path: str | os.PathLike, obj: Any, what: str = "file") -> Path:
    """``torch.save`` atomically (checkpoints, caches)."""
    with atomic_path(path, what) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def _json_default(o: Any):
    if isinstance(o, torch.Tensor):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "item"):
        return o.item()
    if hasattr(o, "__dataclass_fields__"):
        import dataclasses

        return dataclasses.asdict(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def cache_dir() -> Path:
    """Where decoded datasets and other caches live (``$FYI_CACHE`` or ``~/.cache/fyi-apps``)."""
    root = os.environ.get("FYI_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "fyi-apps")
    p = Path(root)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FyiError(f"cannot create the cache folder {p}: {os.strerror(e.errno).lower() if e.errno else e}; "
                       "set FYI_CACHE to a writable folder") from None
    return p


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes (read in 1 MiB blocks)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# --------------------------------------------------------------------------- claims: two processes, one folder
def claim(path: str | os.PathLike) -> bool:
    """Claim a piece of work by creating ``path`` exclusively (host and pid inside).

    False when a live process holds the claim; a claim whose process has died
    (same host) is taken over.  Release it with :func:`release_claim`.
    """
    import socket

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    # the claim appears whole or not at all: written to a private file, then hard-linked into place (a link
    # fails when the name exists), so another process never reads a half-written claim and takes it over
    tmp = p.with_name(f".{p.name}.{socket.gethostname()}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "time": time.time()}))
    try:
        for _ in range(2):
            try:
                try:
                    os.link(tmp, p)
                except FileExistsError:
                    raise
                except OSError:  # a file system without hard links: exclusive create, then write
                    with os.fdopen(os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644), "w") as f:
                        f.write(tmp.read_text())
                return True
            except FileExistsError:
                if claim_alive(p):
                    return False
                try:
                    p.unlink()  # its process is gone: take it over
                except FileNotFoundError:
                    pass
        return False
    finally:
        tmp.unlink(missing_ok=True)


def release_claim(path: str | os.PathLike) -> None:
    try:
        Path(path).unlink()
    except FileNotFoundError:
        pass


def claim_alive(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a claim held by another live process (this process's own claims are not)."""
    import socket

    try:
        info = json.loads(Path(path).read_text())
        host, pid = info["host"], int(info["pid"])
    except FileNotFoundError:
        return False
    except (OSError, ValueError, KeyError, TypeError):  # foreign content: live until it is a minute old
        try:
            return time.time() - Path(path).stat().st_mtime < 60
        except OSError:
            return False
    if host != socket.gethostname():
        return True  # another machine's: trust it
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --------------------------------------------------------------------------- progress
def is_terminal(stream) -> bool:
    """Whether ``stream`` is an interactive terminal (a log file, a pipe or a closed stream is not)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class LogLines:
    """A stream for a log file: progress-bar redraws (carriage returns) become one line every ``every`` seconds.

    The first and the finished (100 %) state of a bar are always written; other
    text passes through unchanged.
    """

    def __init__(self, stream, every: float = 30.0):
        self._stream = stream
        self._every = every
        self._last = float("-inf")
        self._finished: str | None = None

    def write(self, text: str) -> int:
        import re

        if "\r" not in text:
            return self._stream.write(text)
        lines = [part for part in text.split("\r") if part.strip()]
        if not lines:
            return len(text)
        line = lines[-1].rstrip("\n")
        now = time.monotonic()
        done = re.search(r"\b(\d+)/(\d+)\b", line)
        finished = bool(done) and done.group(1) == done.group(2)
        key = line.split("[")[0]  # the bar without its timings: a finished bar is written once
        if (now - self._last >= self._every and not finished) or (finished and key != self._finished):
            self._last = now
            if finished:
                self._finished = key
            self._stream.write(line + "\n")
        return len(text)

    def __getattr__(self, name):
        return getattr(self._stream, name)


def progress_bar(iterable=None, **kwargs):
    """A tqdm progress bar that reads well in a log file too.

    On a terminal or in a notebook: ``tqdm.auto.tqdm(iterable, **kwargs)``.  When
    stderr is a file or a pipe, the bar writes through :class:`LogLines`: one
    line every 30 seconds and one when it finishes, instead of a redraw per update.
    """
    import sys

    from tqdm.auto import tqdm

    stream = kwargs.get("file") or sys.stderr
    notebook = type(stream).__module__.startswith("ipykernel")
    if not notebook and not isinstance(stream, LogLines) and not is_terminal(stream):
        kwargs["file"] = LogLines(stream)
    return tqdm(iterable, **kwargs)


# --------------------------------------------------------------------------- precision
#: ``--precision`` choices
PRECISIONS = ("auto", "fp32", "bf16")

#: the passes ``bf16`` (and ``auto`` on hardware with native bf16) run in bf16 autocast: forward passes whose
#: result needs no gradient with respect to the synthetic images.  Everything else (the synthetic images, their
#: gradients, the image optimiser, the matching losses) stays fp32.
BF16_PASSES = (
    "DM: the no-grad embeddings of the real images",
    "DC / DSA / IDC: the real-image gradient targets (forward and backward of the real batch)",
)


def _cpu_flags() -> set[str]:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return set()
    return next((set(ln.split(":", 1)[1].split()) for ln in lines if ln.startswith("flags")), set())


def native_bf16(device: torch.device | str) -> bool:
    """Whether ``device`` runs bf16 natively: CUDA with bf16 support, or a CPU with AMX-BF16 or AVX512-BF16."""
    device = torch.device(device)
    if device.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    return device.type == "cpu" and bool(_cpu_flags() & {"amx_bf16", "avx512_bf16"})


#: a method's precision when none is given: ``auto`` where its sets under auto and fp32 (same seed) differ by no more
#: than the evaluation seeds' spread (``benchmarks/precision.py``, docs/speed.md#precision), else ``fp32``
DEFAULT_PRECISION: dict[str, str] = {"dm": "auto"}


def default_precision(method: str) -> str:
    """The precision ``method`` runs in when none is given (:data:`DEFAULT_PRECISION`, else ``fp32``)."""
    return DEFAULT_PRECISION.get(str(method).strip().lower(), "fp32")


def resolve_precision(precision: str, device: torch.device | str) -> str:
    """``auto`` -> ``bf16`` where :func:`native_bf16`, else ``fp32``; ``fp32`` / ``bf16`` as given."""
    p = str(precision).strip().lower()
    if p not in PRECISIONS:
        raise FyiError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return ("bf16" if native_bf16(device) else "fp32") if p == "auto" else p
