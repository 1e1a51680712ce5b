"""The one place for datasets: finding the files, decoding them once, caching them.

Every dataset is held in memory as uint8 images ``[N, C, H, W]`` plus int64
labels (:class:`Split`) and normalised on demand with the dataset's mean/std
(:meth:`Dataset.normalize`), which is what the networks see.

Where the files are looked for (first match wins):

* ``root=`` (Python) / ``--data-root DIR`` (CLI), if given: only there;
* else every folder in ``$FYI_DATA`` (``os.pathsep``-separated), if set;
* else ``./data``, ``../shared/data`` (relative to the working directory) and
  ``~/.cache/fyi-apps/data``.

Some datasets also look in a system folder (Fashion-MNIST:
``/usr/share/datasets/fashion-mnist``, where Debian's ``dataset-fashion-mnist``
package puts it) unless ``root=`` is given.

Decoded splits are cached under ``runtime.cache_dir()/datasets/`` keyed by a
hash of the source files, the dataset name, the image size and
:data:`FORMAT_VERSION`, so each dataset is decoded once.

Layout (like ``torchvision.datasets``): :mod:`.base` (the types),
:mod:`.registry` (names, search folders, :func:`load_dataset`), :mod:`.cache`,
:mod:`.decode` (shared decoders), and one module per family: :mod:`.cifar`
(CIFAR-10/-100, the CIFAR-10 JPEG copy), :mod:`.mnist` (MNIST, Fashion-MNIST),
:mod:`.svhn`, :mod:`.tinyimagenet`, :mod:`.imagenet` (the MTT subsets),
:mod:`.digits`, :mod:`.imagefolder`.

Your own dataset is one decorated class::

    @register_dataset("mine")
    class Mine(DatasetFamily):
        def load(self, req: LoadRequest) -> Dataset:
            ...

(or ``register_dataset("mine", loader)`` with a function ``loader(req) -> Dataset``).

What the built-in families use, a family of your own can use too:

* finding files: ``req.roots`` (the search folders, in order); when they are
  not there, ``raise missing_files(req, "Mine", "mine/ (train/, test/)")``, the
  error that says where it looked and how to point at the files;
* decoding: :func:`decode_images` (encoded images in memory, e.g. from an
  archive), :func:`decode_files` (image files), :func:`list_image_folder` and
  :func:`split_from_samples` (``<dir>/<class>/*`` folders), :func:`channel_stats`
  (mean/std when none is published);
* caching: :func:`cached_dataset` (decode once, keyed by a fingerprint of the
  files: :func:`stat_fingerprint`, or ``runtime.file_sha256`` of one archive)::

    def load(self, req):
        folder = next((r / "mine" for r in req.roots if (r / "mine").is_dir()), None)
        if folder is None:
            raise missing_files(req, "Mine", "mine/ (train/, test/)")
        files = sorted(folder.rglob("*.png"))

        def decode():
            train, _ = split_from_samples(list_image_folder(folder / "train", CLASSES), req.image_size, 10)
            test, _ = split_from_samples(list_image_folder(folder / "test", CLASSES), req.image_size, 10)
            mean, std = channel_stats(train.images)
            return DatasetInfo("mine", 3, train.images.shape[-1], CLASSES, mean, std), train, test

        return cached_dataset(req, stat_fingerprint(files, folder), f"Mine from {folder}", decode)
"""
from __future__ import annotations

from .base import DIGIT_CLASSES, IMAGENET_MEAN, IMAGENET_STD, Dataset, DatasetInfo, LoadRequest, Split, flip_extend
from .cache import FORMAT_VERSION, cached_dataset, stat_fingerprint
from .decode import channel_stats, decode_files, decode_images, list_image_folder, split_from_samples
from .registry import (DATASETS, DEFAULT_SEARCH_DIRS, DatasetFamily, as_dataset, dataset_info, list_datasets,
                       load_dataset, missing_files, register_dataset)

# importing the family modules registers them (in this order: list_datasets() keeps it)
from . import cifar, mnist, svhn, tinyimagenet, imagenet, digits, imagefolder  # noqa: E402,F401,I001
from .cifar import CIFAR10_CLASSES, CIFAR100_CLASSES  # noqa: E402
from .imagenet import IMAGENET_SUBSETS  # noqa: E402
from .mnist import FASHION_CLASSES  # noqa: E402

__all__ = [
    "DatasetInfo", "Split", "Dataset", "LoadRequest", "DatasetFamily", "DATASETS", "FORMAT_VERSION",
    "list_datasets", "dataset_info", "load_dataset", "as_dataset", "flip_extend", "register_dataset",
    "CIFAR10_CLASSES", "CIFAR100_CLASSES", "IMAGENET_SUBSETS",
    # for dataset families: decoding, caching
    "cached_dataset", "stat_fingerprint", "decode_images", "decode_files", "list_image_folder", "split_from_samples",
    "channel_stats", "missing_files",
]
