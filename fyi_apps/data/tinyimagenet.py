"""Tiny-ImageNet (200 classes, 64 px): ``tiny-imagenet-200/`` with ``wnids.txt``,
``train/<wnid>/`` and ``val/images/`` + ``val/val_annotations.txt`` (the test split).

Classes are the sorted wnids (ImageFolder order, as MTT uses); names come from
``words.txt`` when present.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import FyiError
from .base import IMAGENET_MEAN, IMAGENET_STD, Dataset, DatasetInfo, LoadRequest
from .cache import cached_dataset, stat_fingerprint
from .decode import list_image_folder, split_from_samples
from .registry import DatasetFamily, missing_files, register_dataset


def _find_tiny(req: LoadRequest) -> Path:
    for r in req.roots:
        for cand in (r / "tiny-imagenet-200", r / "tiny-imagenet", r):
            if (cand / "wnids.txt").is_file() and (cand / "train").is_dir():
                return cand
    raise missing_files(req, "Tiny-ImageNet", "tiny-imagenet-200/ (with wnids.txt, train/, val/)")


def _tiny_classes(folder: Path) -> tuple[list[str], tuple[str, ...]]:
    """Sorted wnids (= ImageFolder order, as MTT uses) and readable names from words.txt."""
    wnids = sorted({w.strip() for w in (folder / "wnids.txt").read_text().split() if w.strip()})
    words = {}
    if (folder / "words.txt").is_file():
        for line in (folder / "words.txt").read_text(errors="replace").splitlines():
            wnid, _, text = line.partition("\t")
            words[wnid.strip()] = text.split(",")[0].strip()
    return wnids, tuple(words.get(w) or w for w in wnids)



@register_dataset("tiny-imagenet")
class TinyImageNet(DatasetFamily):
    """Tiny-ImageNet; its info (class names) is read from ``wnids.txt``/``words.txt``."""

    aliases = ("tinyimagenet", "tiny")

    def info(self, req: LoadRequest) -> DatasetInfo:
        _, names = _tiny_classes(_find_tiny(req))
        return DatasetInfo(req.name, 3, req.image_size or 64, names, IMAGENET_MEAN, IMAGENET_STD)

    def load(self, req: LoadRequest) -> Dataset:
        folder = _find_tiny(req)
        wnids, names = _tiny_classes(folder)
        missing = [w for w in wnids if not (folder / "train" / w).is_dir()]
        if missing:
            raise FyiError(f"{folder / 'train'} lacks the class folders {', '.join(missing[:5])}"
                           f"{' ...' if len(missing) > 5 else ''} listed in wnids.txt; re-extract Tiny-ImageNet")
        train_samples = list_image_folder(folder / "train", wnids)
        ann = folder / "val" / "val_annotations.txt"
        if not ann.is_file():
            raise FyiError(f"{ann} not found; Tiny-ImageNet's test split is read from val/images/ "
                           "through val/val_annotations.txt: re-extract the dataset")
        idx = {w: i for i, w in enumerate(wnids)}
        test_samples = []
        for line in ann.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) < 2 or not parts[0].strip():
                continue
            fname, wnid = parts[0].strip(), parts[1].strip()
            if wnid not in idx:
                raise FyiError(f"{ann} names class {wnid} that is not in wnids.txt; re-extract the dataset")
            test_samples.append((str(folder / "val" / "images" / fname), idx[wnid]))
        lost = [p for p, _ in test_samples if not os.path.isfile(p)]
        if lost:
            raise FyiError(f"{len(lost)} images listed in {ann} are missing (e.g. {lost[0]}); re-extract the dataset")
        size = req.image_size or 64
        files = [Path(p) for p, _ in train_samples + test_samples] + [folder / "wnids.txt", ann]

        def decode():
            train, _ = split_from_samples(train_samples, size, len(wnids))
            test, _ = split_from_samples(test_samples, size, len(wnids))
            return DatasetInfo(req.name, 3, size, names, IMAGENET_MEAN, IMAGENET_STD), train, test

        return cached_dataset(req, stat_fingerprint(files, folder), f"Tiny-ImageNet from {folder}", decode)
