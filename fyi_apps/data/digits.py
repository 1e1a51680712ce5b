"""scikit-learn's digits (8x8 grayscale, 1,797 images): bundled with scikit-learn,
so it needs no files; a stratified 80/20 split with ``random_state=0``."""
from __future__ import annotations

from functools import lru_cache

import torch

from .base import DIGIT_CLASSES, Dataset, DatasetInfo, LoadRequest, Split
from .decode import channel_stats
from .registry import DatasetFamily, register_dataset


@lru_cache(maxsize=1)
def _digits_splits() -> tuple[DatasetInfo, Split, Split]:
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = np.rint(d.data * (255.0 / 16.0)).clip(0, 255).astype(np.uint8).reshape(-1, 1, 8, 8)
    y = d.target.astype(np.int64)
    idx_train, idx_test = train_test_split(np.arange(len(y)), test_size=0.2, stratify=y, random_state=0)
    train = Split(torch.from_numpy(x[idx_train]), torch.from_numpy(y[idx_train]), 10)
    test = Split(torch.from_numpy(x[idx_test]), torch.from_numpy(y[idx_test]), 10)
    mean, std = channel_stats(train.images)
    return DatasetInfo("digits", 1, 8, DIGIT_CLASSES, mean, std), train, test


@register_dataset("digits")
class Digits(DatasetFamily):
    """The digits of ``sklearn.datasets.load_digits``; info is computed from the data."""

    aliases = ("sklearn-digits",)

    def info(self, req: LoadRequest) -> DatasetInfo:
        return _digits_splits()[0]

    def load(self, req: LoadRequest) -> Dataset:
        info, train, test = _digits_splits()
        # Splits are shared by every call: hand out copies so nobody mutates the cache.
        return Dataset(info, Split(train.images.clone(), train.labels.clone(), 10),
                       Split(test.images.clone(), test.labels.clone(), 10),
                       "scikit-learn digits (sklearn.datasets.load_digits), stratified 80/20 split, random_state=0")
