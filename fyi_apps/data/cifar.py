"""CIFAR-10 and CIFAR-100 (torchvision's pickles) and the CIFAR-10 JPEG copy
(``cifar10-jpeg.tar.gz``: ``train/<class>/*.jpg``, ``test/<class>/*.jpg``).

``cifar10`` reads the pickles and falls back to the JPEG copy when they are
absent; ``cifar10-jpeg`` reads only the JPEG copy (both share its cache).
"""
from __future__ import annotations

import tarfile
from dataclasses import replace
from pathlib import Path

import torch

from ..errors import FyiError
from ..runtime import file_sha256
from .base import Dataset, DatasetInfo, LoadRequest, Split
from .cache import cached_dataset, stat_fingerprint
from .decode import decode_images
from .registry import DatasetFamily, missing_files, register_dataset

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")

CIFAR100_CLASSES = tuple("""
apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus
butterfly camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch
crab crocodile cup dinosaur dolphin elephant flatfish forest fox girl hamster house kangaroo
keyboard lamp lawn_mower leopard lion lizard lobster man maple_tree motorcycle mountain mouse
mushroom oak_tree orange orchid otter palm_tree pear pickup_truck pine_tree plain plate poppy
porcupine possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk skyscraper
snail snake spider squirrel streetcar sunflower sweet_pepper table tank telephone television
tiger tractor train trout tulip turtle wardrobe whale willow_tree wolf woman worm
""".split())

CIFAR10_INFO = DatasetInfo("cifar10", 3, 32, CIFAR10_CLASSES,
                           (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))
CIFAR100_INFO = DatasetInfo("cifar100", 3, 32, CIFAR100_CLASSES,
                            (0.5071, 0.4866, 0.4409), (0.2673, 0.2564, 0.2762))
_INFO = {"cifar10": CIFAR10_INFO, "cifar100": CIFAR100_INFO}


def _torchvision_cifar(kind: str):
    """torchvision's CIFAR readers without the md5 check of the original release
    (our cache is keyed by the files themselves; stand-ins must load too)."""
    from torchvision.datasets import CIFAR10, CIFAR100

    base = CIFAR10 if kind == "cifar10" else CIFAR100

    class _NoMd5(base):
        train_list = [[f, None] for f, _ in base.train_list]
        test_list = [[f, None] for f, _ in base.test_list]
        meta = {**base.meta, "md5": None}

    return _NoMd5


def _find_cifar_pickles(req: LoadRequest, folder: str) -> Path | None:
    """The directory that contains ``folder`` (what torchvision calls root)."""
    for r in req.roots:
        if r.name == folder and r.is_dir():
            return r.parent
        for cand in (r, r / req.name, r / req.name.replace("cifar", "cifar-")):
            if (cand / folder).is_dir():
                return cand
    return None


def _load_cifar_pickles(req: LoadRequest, kind: str, tv_root: Path) -> Dataset:
    cls = _torchvision_cifar(kind)
    folder = tv_root / cls.base_folder
    files = [folder / f for f, _ in cls.train_list + cls.test_list] + [folder / cls.meta["filename"]]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise FyiError(f"{folder} is incomplete: missing {', '.join(missing)}; "
                       "unpack the complete archive there")
    info0 = _INFO[kind]
    title = "CIFAR-10" if kind == "cifar10" else "CIFAR-100"

    def decode():
        splits = []
        for train in (True, False):
            tv = cls(str(tv_root), train=train, download=False)
            images = torch.from_numpy(tv.data).permute(0, 3, 1, 2).contiguous()
            splits.append(Split(images, torch.as_tensor(tv.targets), info0.num_classes))
        names = tuple(str(c) for c in tv.classes)
        if len(names) != info0.num_classes:
            raise FyiError(f"{folder}/{cls.meta['filename']} lists {len(names)} classes, "
                           f"expected {info0.num_classes}; is this really {title}?")
        return replace(info0, name=req.name, class_names=names), splits[0], splits[1]

    return cached_dataset(req, stat_fingerprint(files, tv_root), f"{title} from {folder}", decode)


def _find_archive(req: LoadRequest, filename: str) -> Path | None:
    for r in req.roots:
        if r.is_file() and r.name.endswith((".tar.gz", ".tgz", ".tar")):
            return r
        for cand in (r / filename, r / "cifar10" / filename):
            if cand.is_file():
                return cand
    return None


_ARCHIVE_EXT = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def _read_split_archive(path: Path) -> dict[str, dict[str, list[tuple[str, bytes]]]]:
    """Read ``[<top>/]{train,test}/<class>/<file>`` members of a tar(.gz) into memory."""
    found: dict[str, dict[str, list[tuple[str, bytes]]]] = {"train": {}, "test": {}}
    prefixes = set()
    try:
        with tarfile.open(path, "r:*") as tf:
            for m in tf:
                if not m.isfile() or not m.name.lower().endswith(_ARCHIVE_EXT):
                    continue
                parts = [p for p in m.name.split("/") if p not in ("", ".")]
                if len(parts) < 3 or parts[-3] not in ("train", "test", "val"):
                    continue
                split = "test" if parts[-3] == "val" else parts[-3]
                prefixes.add("/".join(parts[:-3]))
                f = tf.extractfile(m)
                found[split].setdefault(parts[-2], []).append((parts[-1], f.read()))
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise FyiError(f"cannot read archive {path}: {exc}; re-copy the file") from exc
    if len(prefixes) > 1:
        raise FyiError(f"archive {path} holds several train/test trees ({', '.join(sorted(prefixes))}); "
                       "keep one")
    if not found["train"] or not found["test"]:
        raise FyiError(f"archive {path} has no train/<class>/ and test/<class>/ images; "
                       "expected the ImageFolder layout train/<class>/NNNN.jpg, test/<class>/NNNN.jpg")
    return found


def _load_cifar10_archive(req: LoadRequest, path: Path, note: str = "") -> Dataset:
    info0 = CIFAR10_INFO
    source = f"CIFAR-10 (JPEG copy{note}) from {path}"
    shown_name = req.name
    req = replace(req, name="cifar10-jpeg")  # cifar10's fallback shares cifar10-jpeg's cache

    def decode():
        found = _read_split_archive(path)
        classes = sorted(found["train"])
        if tuple(classes) != tuple(sorted(CIFAR10_CLASSES)) or not set(found["test"]) <= set(classes):
            raise FyiError(f"archive {path} has classes {', '.join(classes)}, not CIFAR-10's; "
                           "use the cifar10-jpeg.tar.gz archive of CIFAR-10")
        class_to_idx = {c: CIFAR10_CLASSES.index(c) for c in classes}
        splits = []
        for split in ("train", "test"):
            names, blobs, labels = [], [], []
            for c in sorted(found[split], key=class_to_idx.get):
                for fname, blob in sorted(found[split][c]):
                    names.append(f"{split}/{c}/{fname}")
                    blobs.append(blob)
                    labels.append(class_to_idx[c])
            images, _ = decode_images(blobs, None, names)
            splits.append(Split(images, torch.tensor(labels), 10))
        return replace(info0, name=req.name, image_size=int(splits[0].images.shape[-1])), splits[0], splits[1]

    ds = cached_dataset(req, "sha256:" + file_sha256(path), source, decode)
    return Dataset(replace(ds.info, name=shown_name), ds.train, ds.test, ds.source)



@register_dataset("cifar10")
class Cifar10(DatasetFamily):
    """CIFAR-10: ``cifar-10-batches-py/``, else the JPEG copy."""

    aliases = ("cifar-10",)
    static_info = CIFAR10_INFO

    def load(self, req: LoadRequest) -> Dataset:
        tv_root = _find_cifar_pickles(req, "cifar-10-batches-py")
        if tv_root is not None:
            return _load_cifar_pickles(req, "cifar10", tv_root)
        archive = _find_archive(req, "cifar10-jpeg.tar.gz")
        if archive is None:
            raise missing_files(req, "CIFAR-10", "cifar-10-batches-py/ (torchvision's CIFAR-10 pickles) "
                           "or cifar10-jpeg.tar.gz (the JPEG copy)")
        return _load_cifar10_archive(req, archive, "; CIFAR-10's pickles cifar-10-batches-py/ were not found")


@register_dataset("cifar10-jpeg")
class Cifar10Jpeg(DatasetFamily):
    """CIFAR-10 from the JPEG copy ``cifar10-jpeg.tar.gz`` only."""

    aliases = ("cifar10jpeg",)
    static_info = replace(CIFAR10_INFO, name="cifar10-jpeg")

    def load(self, req: LoadRequest) -> Dataset:
        archive = _find_archive(req, "cifar10-jpeg.tar.gz")
        if archive is None:
            raise missing_files(req, "CIFAR-10 (JPEG copy)", "cifar10-jpeg.tar.gz")
        return _load_cifar10_archive(req, archive)


@register_dataset("cifar100")
class Cifar100(DatasetFamily):
    """CIFAR-100: ``cifar-100-python/``."""

    aliases = ("cifar-100",)
    static_info = CIFAR100_INFO

    def load(self, req: LoadRequest) -> Dataset:
        tv_root = _find_cifar_pickles(req, "cifar-100-python")
        if tv_root is None:
            raise missing_files(req, "CIFAR-100", "cifar-100-python/ (torchvision's CIFAR-100 pickles)")
        return _load_cifar_pickles(req, "cifar100", tv_root)
