"""Exporters: a synthetic set as a PNG grid (one row per class) or as an
ImageFolder of PNG files (``<dir>/<class>/<idx>.png``), written atomically."""
from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from pathlib import Path


from .. import runtime
from ..errors import FyiError
from .core import SyntheticSet, _folder_name

_EXPORT_MARKER = ".fyi-export"


def export_grid(synset: SyntheticSet, png_path: str | os.PathLike, *, max_per_class: int = 10) -> Path:
    """A PNG of :meth:`SyntheticSet.show` (one row per class, up to ``max_per_class`` images each)."""
    from ..plots import save_figure
    from ..validate import integer

    fig = synset.show(integer(max_per_class, "max_per_class", min=1), figure=True, padding=1)
    return save_figure(fig, png_path, dpi=100)


def export_imagefolder(synset: SyntheticSet, out_dir: str | os.PathLike, *, decode: bool = False) -> Path:
    """Write ``out_dir/<class name>/<idx>.png`` (denormalised uint8), atomically.

    Every class gets a folder (possibly empty); ``idx`` counts within the class,
    zero-padded.  ``decode=True`` writes the training images of :meth:`decoded`
    (IDC tiles upsampled) instead of the stored ones.  The folder is built in a
    temporary directory and renamed into place; an existing ``out_dir`` is only
    replaced if it is empty or an earlier export.
    """
    import numpy as np
    from PIL import Image

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise FyiError(f"{out} exists and is a file; choose a folder name for the export")
    if out.is_dir() and any(out.iterdir()) and not (out / _EXPORT_MARKER).exists():
        raise FyiError(f"{out} exists and is not an earlier fyi export; choose a new or empty folder")
    if decode:
        imgs, labels = synset.decoded()
        view = dataclasses.replace(synset, images=imgs, labels=labels, soft_labels=None, encoding={"type": "plain"})
        pixels = view.to_uint8()
    else:
        pixels, labels = synset.to_uint8(), synset.labels
    pixels = pixels.cpu().permute(0, 2, 3, 1).numpy()
    labels = labels.cpu().tolist()
    width = max(3, len(str(max(1, len(labels)))))

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    except OSError as e:
        raise runtime.write_failure(out, e, "export folder") from None
    old = None
    try:
        names = [_folder_name(c) for c in synset.class_names]
        if len(set(names)) != len(names):
            names = [f"{i:03d}_{n}" for i, n in enumerate(names)]
        for n in names:
            (tmp / n).mkdir()
        counts = [0] * len(names)
        for arr, lab in zip(pixels, labels):
            img = Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else np.ascontiguousarray(arr), "L" if arr.shape[-1] == 1 else "RGB")
            img.save(tmp / names[lab] / f"{counts[lab]:0{width}d}.png", format="PNG")
            counts[lab] += 1
        (tmp / _EXPORT_MARKER).write_text(f"{synset!r}\n")
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
            old.rmdir()
            os.replace(out, old)
        os.replace(tmp, out)
    except BaseException as e:
        if old is not None and old.exists() and not out.exists():
            os.replace(old, out)
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, OSError):  # a full disk, a read-only folder ...: one line, nothing left behind
            raise runtime.write_failure(out, e, "export folder") from None
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return out
