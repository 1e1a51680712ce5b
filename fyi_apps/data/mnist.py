"""MNIST and Fashion-MNIST: the four IDX files (plain or ``.gz``), read with
torchvision's reader.

Both are one :class:`IdxFamily` each: where torchvision keeps the files
(``<root>/<ClassName>/raw/``), the sub-folders also searched, the title used in
messages and the static info.  Fashion-MNIST also looks in Debian's
``/usr/share/datasets/fashion-mnist``.
"""
from __future__ import annotations

import gzip
import os
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

from ..errors import FyiError
from .base import DIGIT_CLASSES, Dataset, DatasetInfo, LoadRequest, Split
from .cache import cached_dataset, stat_fingerprint
from .registry import DatasetFamily, missing_files, register_dataset

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")

_IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
              "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _idx_files_in(folder: Path) -> dict[str, Path] | None:
    """The four IDX files in ``folder`` (plain or .gz), or None."""
    out = {}
    for name in _IDX_FILES:
        for cand in (folder / name, folder / f"{name}.gz"):
            if cand.is_file():
                out[name] = cand
                break
        else:
            return None
    return out


class IdxFamily(DatasetFamily):
    """A dataset stored as the four IDX files of MNIST's release."""

    tv_class: str = ""  # torchvision class name, also the folder <root>/<tv_class>/raw/
    title: str = ""  # name in messages
    subdirs: tuple[str, ...] = ()  # more folders <root>/<subdir>/ that may hold the files

    def load(self, req: LoadRequest) -> Dataset:
        """Read with torchvision's reader, which wants the four uncompressed files in
        ``<root>/<ClassName>/raw/``; .gz-only or flat folders are arranged so in a temp dir."""
        files = None
        for r in req.roots:
            cands = [r / self.tv_class / "raw"] + [r / s for s in self.subdirs]
            if req.user_pointed or r in self.system_dirs:
                cands.append(r)  # a folder the user named may hold the four files itself
            for cand in cands:
                files = _idx_files_in(cand)
                if files:
                    break
            if files:
                break
        if not files:
            raise missing_files(req, self.title, f"{self.tv_class}/raw/ or a folder with the four IDX files "
                           f"({', '.join(_IDX_FILES)}, optionally .gz)")
        folder = next(iter(files.values())).parent
        info0 = replace(self.static_info, name=req.name)

        def decode():
            import torchvision.datasets as tvd

            cls = getattr(tvd, self.tv_class)
            with tempfile.TemporaryDirectory(prefix="fyi-idx-") as tmp:
                raw = Path(tmp) / self.tv_class / "raw"
                raw.mkdir(parents=True)
                for name, src in files.items():
                    if src.suffix == ".gz":
                        try:
                            with gzip.open(src, "rb") as fin, open(raw / name, "wb") as fout:
                                shutil.copyfileobj(fin, fout, 1 << 20)
                        except (OSError, EOFError) as exc:
                            raise FyiError(f"cannot decompress {src}: {exc}; re-copy the file") from exc
                    else:
                        os.symlink(src.absolute(), raw / name)
                splits = []
                for train in (True, False):
                    try:
                        tv = cls(tmp, train=train, download=False)
                    except (RuntimeError, ValueError, TypeError) as exc:
                        raise FyiError(f"cannot read the {self.title} IDX files in {folder}: {exc}; "
                                       "re-copy them") from exc
                    splits.append(Split(tv.data.unsqueeze(1).contiguous(), tv.targets, 10))
            return info0, splits[0], splits[1]

        return cached_dataset(req, stat_fingerprint(files.values(), folder), f"{self.title} from {folder}", decode)


@register_dataset("mnist")
class Mnist(IdxFamily):
    tv_class, title, subdirs = "MNIST", "MNIST", ("mnist",)
    static_info = DatasetInfo("mnist", 1, 28, DIGIT_CLASSES, (0.1307,), (0.3081,))


@register_dataset("fashion-mnist")
class FashionMnist(IdxFamily):
    tv_class, title, subdirs = "FashionMNIST", "Fashion-MNIST", ("fashion-mnist", "fashionmnist")
    aliases = ("fashionmnist", "fmnist")
    system_dirs = (Path("/usr/share/datasets/fashion-mnist"),)
    static_info = DatasetInfo("fashion-mnist", 1, 28, FASHION_CLASSES, (0.2861,), (0.3530,))
