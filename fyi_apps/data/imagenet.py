"""The ImageNet subsets of the MTT paper (ImageNette, ImageWoof, ImageFruit,
ImageYellow, ImageMeow, ImageSquawk): 10 ImageNet-1k classes each, read from an
ImageNet-style folder ``train/<wnid>/`` + ``val/<wnid>/`` (128 px by default).

Each subset is one :class:`ImageNetSubset` registered under its name; a new
subset is one more entry of :data:`IMAGENET_SUBSETS`.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Sequence

from ..errors import FyiError
from .base import IMAGENET_MEAN, IMAGENET_STD, Dataset, DatasetInfo, LoadRequest
from .cache import cached_dataset, stat_fingerprint
from .decode import list_image_folder, split_from_samples
from .registry import DatasetFamily, missing_files, register_dataset

#: subset -> ((wnid, class name), ...) in MTT's label order; the table (with MTT's ImageNet-1k indices and how
#: they became WordNet ids) is the data file imagenet_subsets.json beside this module
IMAGENET_SUBSETS: dict[str, tuple[tuple[str, str], ...]] = {
    name: tuple((w, n) for w, n in entry["classes"])
    for name, entry in json.loads((Path(__file__).with_name("imagenet_subsets.json")).read_text())["subsets"].items()
}
# fast.ai's Imagenette folders name the parachute class n03888605; accept it as a stand-in.
_WNID_ALTERNATIVES = {"n03888257": ("n03888605",)}


def _subset_dirs(split_dir: Path, wnids: Sequence[str]) -> list[str] | None:
    """Folder name used for each wnid in ``split_dir`` (alternatives allowed), or None."""
    out = []
    for w in wnids:
        for cand in (w, *_WNID_ALTERNATIVES.get(w, ())):
            if (split_dir / cand).is_dir():
                out.append(cand)
                break
        else:
            return None
    return out


class ImageNetSubset(DatasetFamily):
    """One MTT subset: its wnids (label order = MTT's) and static info."""

    def __init__(self, subset: str):
        self.subset = subset
        self.wnids = [w for w, _ in IMAGENET_SUBSETS[subset]]
        self.static_info = DatasetInfo(subset, 3, 128, tuple(n for _, n in IMAGENET_SUBSETS[subset]),
                                       IMAGENET_MEAN, IMAGENET_STD)

    def load(self, req: LoadRequest) -> Dataset:
        folder = None
        for r in req.roots:
            for cand in (r / self.subset, r / f"{self.subset}2", r / "imagenet", r):
                if (cand / "train").is_dir() and _subset_dirs(cand / "train", self.wnids) is not None:
                    folder = cand
                    break
            if folder:
                break
        if folder is None:
            raise missing_files(req, f"{self.subset} (ImageNet subset)",
                           f"an ImageNet folder imagenet/train/<wnid>/ with the wnids {' '.join(self.wnids)}")
        train_dirs = _subset_dirs(folder / "train", self.wnids)
        test_root = next((folder / s for s in ("val", "test") if (folder / s).is_dir()), None)
        test_dirs = _subset_dirs(test_root, self.wnids) if test_root is not None else None
        if test_dirs is None:
            raise FyiError(f"{folder} has no val/<wnid>/ folders for all of {' '.join(self.wnids)}; "
                           "sort the ImageNet validation images into one folder per wnid")
        size = req.image_size or 128
        train_samples = list_image_folder(folder / "train", train_dirs)
        test_samples = list_image_folder(test_root, test_dirs)
        for label, samples, where in (("training", train_samples, folder / "train"),
                                      ("validation", test_samples, test_root)):
            have = set(c for _, c in samples)
            empty = [self.wnids[i] for i in range(len(self.wnids)) if i not in have]
            if empty:
                raise FyiError(f"no {label} images for {', '.join(empty)} in {where}; "
                               "copy the complete ImageNet class folders")
        files = [Path(p) for p, _ in train_samples + test_samples]
        info = self.static_info

        def decode():
            train, _ = split_from_samples(train_samples, size, 10)
            test, _ = split_from_samples(test_samples, size, 10)
            return replace(info, image_size=size), train, test

        return cached_dataset(req, stat_fingerprint(files, folder),
                       f"{self.subset} (ImageNet subset of MTT) from {folder}", decode)


for _subset in IMAGENET_SUBSETS:
    register_dataset(_subset, ImageNetSubset(_subset))
