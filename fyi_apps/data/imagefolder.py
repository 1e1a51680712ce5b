"""Any folder of images: ``train/<class>/*`` and ``test/<class>/*`` (or ``val/``),
named as ``imagefolder:/path`` or ``imagefolder`` with ``--data-root DIR``."""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import FyiError
from .base import Dataset, DatasetInfo, LoadRequest, Split
from .cache import cached_dataset, stat_fingerprint
from .decode import channel_stats, list_image_folder, split_from_samples
from .registry import DatasetFamily, _abspath, register_dataset


@register_dataset("imagefolder")
class ImageFolder(DatasetFamily):
    """``train/<class>/*`` and ``test/<class>/*`` (or ``val/``); classes = train's folder
    names (sorted); RGB unless every training and test image is grayscale, then 1
    channel; size = ``image_size`` or the first training image's shorter side
    (shorter side resized, then center-cropped); mean/std from the training split."""

    takes_option = True  # "imagefolder:/path"

    def load(self, req: LoadRequest) -> Dataset:
        if req.option:
            folder = _abspath(req.option)
            if not folder.is_dir():
                raise FyiError(f"imagefolder: {folder} is not a folder; use imagefolder:/path/to/folder")
        elif req.origin == "argument":
            folder = req.roots[0]
        else:
            raise FyiError("imagefolder needs a folder: use the name imagefolder:/path/to/folder "
                           "or pass --data-root DIR")
        train_dir = folder / "train"
        test_dir = next((folder / s for s in ("test", "val") if (folder / s).is_dir()), None)
        if not train_dir.is_dir() or test_dir is None:
            raise FyiError(f"{folder} must contain train/<class>/ and test/<class>/ (or val/<class>/) "
                           "image folders; arrange the images so")
        from torchvision.datasets.folder import find_classes

        try:
            classes, _ = find_classes(str(train_dir))
        except FileNotFoundError as exc:
            raise FyiError(f"{train_dir} has no class folders; put the images in train/<class>/") from exc
        extra = sorted({e.name for e in os.scandir(test_dir) if e.is_dir()} - set(classes))
        if extra:
            raise FyiError(f"{test_dir} has classes {', '.join(extra)} that {train_dir} lacks; "
                           "every test class needs training images")
        train_samples = list_image_folder(train_dir, classes)
        test_samples = list_image_folder(test_dir, classes)
        if not train_samples or not test_samples:
            raise FyiError(f"no images found in {train_dir if not train_samples else test_dir}; "
                           "supported files: .jpg .jpeg .png .ppm .bmp .pgm .tif .tiff .webp")
        name = req.name if req.option is None else f"imagefolder:{folder}"
        files = [Path(p) for p, _ in train_samples + test_samples]

        def decode():
            size = req.image_size
            train, gray_train = split_from_samples(train_samples, size, len(classes))
            size = int(train.images.shape[-1])
            test, gray_test = split_from_samples(test_samples, size, len(classes))
            if gray_train and gray_test:
                train = Split(train.images[:, :1].contiguous(), train.labels, len(classes))
                test = Split(test.images[:, :1].contiguous(), test.labels, len(classes))
            mean, std = channel_stats(train.images)
            return DatasetInfo(name, int(train.images.shape[1]), size, tuple(classes), mean, std), train, test

        return cached_dataset(req, str(folder) + ":" + stat_fingerprint(files, folder), f"image folder {folder}", decode)
