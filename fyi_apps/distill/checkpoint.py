"""A distillation's checkpoint: ``<output stem>.ckpt.pt`` beside the set file, sealed with a content hash.

:class:`~.base.Distiller` writes it every ``checkpoint_every`` iterations and removes it once the set is
written; ``--resume`` (``resume=True``) continues from it.  A changed byte is noticed on read (never
resumed from), a run that does not resume refuses to overwrite a checkpoint it could continue
(:func:`check_start`), and what a stopped run keeps is noted for the ``fyi`` command's resume line
(:func:`fyi_apps.runtime.note_kept`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..errors import FyiError
from ..records import load_sealed_torch, save_sealed_torch
from ..runtime import note_kept


def stem(path: Path) -> Path:
    """``out/dm.fyi.safetensors`` -> ``out/dm``: the name the run's other files are made from."""
    name = path.name
    for suffix in (".safetensors", ".fyi"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return path.with_name(name)


def checkpoint_path(output: Path) -> Path:
    """The checkpoint of the run writing the set ``output``."""
    return stem(output).with_name(stem(output).name + ".ckpt.pt")


def note(path: Path, iteration: int | None = None, total: int | None = None) -> None:
    """Say (on a stop or a write failure) that ``path`` holds the run so far."""
    at = f" (iteration {iteration} of {total})" if iteration is not None else ""
    note_kept("checkpoint", f"the checkpoint {path}{at}")


def write_checkpoint(path: Path, state: dict, total: int) -> None:
    save_sealed_torch(path, state, "checkpoint")
    note(path, state["iteration"], total)


def read_checkpoint(path: Path) -> dict:
    """The state saved at ``path``; an unreadable or changed file is one :class:`FyiError` line."""
    try:  # to the CPU: applying the state moves each part where it belongs
        return load_sealed_torch(path, map_location="cpu", weights_only=False)
    except FyiError as e:
        raise FyiError(f"checkpoint {path} is not usable ({getattr(e, 'reason', e)}); delete it to start over") \
            from None
    except Exception as e:  # noqa: BLE001 - any unreadable checkpoint is the same user problem
        raise FyiError(f"checkpoint {path} is unreadable ({type(e).__name__}); delete it to start over") from None


def check_start(path: Path, resume: bool, settings_diff: Callable[[dict], list[str]] | None = None) -> bool:
    """Whether the run resumes from ``path``.

    A run that does not resume refuses to replace the checkpoint of an earlier run it could continue (same
    settings: ``settings_diff(state)`` is empty; --resume was forgotten).  One it could not continue (other
    settings, as when a message's advice is followed, or a damaged file) is replaced, and a warning says so.
    """
    if not path.exists():
        return False
    if resume:
        note(path)  # a stop before the state is read still names it
        return True
    try:
        diff = settings_diff(read_checkpoint(path)) if settings_diff is not None else []
        why = f"was made with other settings ({', '.join(diff)})"
    except FyiError as e:
        diff, why = None, f"is not usable ({getattr(e, 'reason', e)})"
    if diff == []:
        raise FyiError(f"{path} holds the checkpoint of an earlier, unfinished run with these settings; add --resume "
                       "to continue it, or delete it to start over")
    import sys

    print(f"fyi: warning: checkpoint {path} {why}; this run starts over and replaces it", file=sys.stderr)
    return False
