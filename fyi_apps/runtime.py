"""Run-time plumbing shared by every command: devices, seeds, versions, files.

Nothing here knows about datasets or methods.
"""
from __future__ import annotations

import contextlib
import json
import os
import platform
import tempfile
from pathlib import Path
from typing import Any, Iterator

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


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    On any error the temporary file is removed and ``path`` is left untouched, so
    a crash never leaves a half-written output.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs are ordinary files
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~umask)  # writers that recreate the file (safetensors) reset the mode
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")
    return Path(path)


def save_torch(path: str | os.PathLike, obj: Any) -> Path:
    """``torch.save`` atomically (checkpoints, caches)."""
    with atomic_path(path) as tmp:
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
    p.mkdir(parents=True, exist_ok=True)
    return p
