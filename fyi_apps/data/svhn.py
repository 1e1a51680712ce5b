"""SVHN: ``train_32x32.mat`` and ``test_32x32.mat``, read with torchvision's reader
(without its md5 check)."""
from __future__ import annotations

from dataclasses import replace

import torch

from ..errors import FyiError
from .base import DIGIT_CLASSES, Dataset, DatasetInfo, LoadRequest, Split
from .cache import cached_dataset, stat_fingerprint
from .registry import DatasetFamily, missing_files, register_dataset


def _torchvision_svhn():
    from torchvision.datasets import SVHN

    class _NoMd5(SVHN):
        split_list = {k: [url, f, None] for k, (url, f, _) in SVHN.split_list.items()}

    return _NoMd5


@register_dataset("svhn")
class Svhn(DatasetFamily):
    """The cropped-digits release: ``svhn/``, ``SVHN/`` or the folder itself."""

    static_info = DatasetInfo("svhn", 3, 32, DIGIT_CLASSES,
                              (0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970))

    def load(self, req: LoadRequest) -> Dataset:
        names = ("train_32x32.mat", "test_32x32.mat")
        folder = None
        for r in req.roots:
            for cand in (r / "svhn", r / "SVHN", r):
                if all((cand / n).is_file() for n in names):
                    folder = cand
                    break
            if folder:
                break
        if folder is None:
            raise missing_files(req, "SVHN", "train_32x32.mat and test_32x32.mat (in svhn/ or the folder itself)")
        info0 = replace(self.static_info, name=req.name)

        def decode():
            cls = _torchvision_svhn()
            splits = []
            for split in ("train", "test"):
                try:
                    tv = cls(str(folder), split=split, download=False)
                except (RuntimeError, ValueError, KeyError, OSError) as exc:
                    raise FyiError(f"cannot read {folder / f'{split}_32x32.mat'}: {exc}; re-copy it") from exc
                images = torch.from_numpy(tv.data).contiguous()
                splits.append(Split(images, torch.from_numpy(tv.labels), 10))
            return info0, splits[0], splits[1]

        return cached_dataset(req, stat_fingerprint([folder / n for n in names], folder), f"SVHN from {folder}", decode)

