"""The ImageNet subsets of the MTT paper (ImageNette, ImageWoof, ImageFruit,
ImageYellow, ImageMeow, ImageSquawk): 10 ImageNet-1k classes each, read from an
ImageNet-style folder ``train/<wnid>/`` + ``val/<wnid>/`` (128 px by default).

Each subset is one :class:`ImageNetSubset` registered under its name; a new
subset is one more entry of :data:`IMAGENET_SUBSETS`.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Sequence

from ..errors import FyiError
from .base import IMAGENET_MEAN, IMAGENET_STD, Dataset, DatasetInfo, LoadRequest
from .cache import _cached, _stat_fingerprint
from .decode import _list_folder, _split_from_samples
from .registry import DatasetFamily, _missing, register_dataset

# The ImageNet subsets of the MTT paper (Cazenavette et al., CVPR 2022). The MTT
# reference code (GeorgeCazenavette/mtt-distillation, utils.py, class Config)
# lists them as ImageNet-1k class indices; label c of a subset is the c-th entry
# of that list. Indices were turned into WordNet ids with the standard sorted
# ImageNet-1k synset order (index i = i-th wnid in sorted order), names are the
# first WordNet lemma. Label order below = MTT's order.
IMAGENET_SUBSETS: dict[str, tuple[tuple[str, str], ...]] = {
    "imagenette": (  # MTT indices 0 217 482 491 497 566 569 571 574 701
        ("n01440764", "tench"), ("n02102040", "English springer"),
        ("n02979186", "cassette player"), ("n03000684", "chain saw"),
        ("n03028079", "church"), ("n03394916", "French horn"),
        ("n03417042", "garbage truck"), ("n03425413", "gas pump"),
        ("n03445777", "golf ball"), ("n03888257", "parachute"),
    ),
    "imagewoof": (  # 193 182 258 162 155 167 159 273 207 229
        ("n02096294", "Australian terrier"), ("n02093754", "Border terrier"),
        ("n02111889", "Samoyed"), ("n02088364", "beagle"),
        ("n02086240", "Shih-Tzu"), ("n02089973", "English foxhound"),
        ("n02087394", "Rhodesian ridgeback"), ("n02115641", "dingo"),
        ("n02099601", "golden retriever"), ("n02105641", "Old English sheepdog"),
    ),
    "imagefruit": (  # 953 954 949 950 951 957 952 945 943 948
        ("n07753275", "pineapple"), ("n07753592", "banana"),
        ("n07745940", "strawberry"), ("n07747607", "orange"),
        ("n07749582", "lemon"), ("n07768694", "pomegranate"),
        ("n07753113", "fig"), ("n07720875", "bell pepper"),
        ("n07718472", "cucumber"), ("n07742313", "Granny Smith"),
    ),
    "imageyellow": (  # 309 986 954 951 987 779 599 291 72 11
        ("n02206856", "bee"), ("n12057211", "yellow lady's slipper"),
        ("n07753592", "banana"), ("n07749582", "lemon"),
        ("n12144580", "corn"), ("n04146614", "school bus"),
        ("n03530642", "honeycomb"), ("n02129165", "lion"),
        ("n01773157", "black and gold garden spider"), ("n01531178", "goldfinch"),
    ),
    "imagemeow": (  # 281 282 283 284 285 291 292 290 289 287
        ("n02123045", "tabby"), ("n02123159", "tiger cat"),
        ("n02123394", "Persian cat"), ("n02123597", "Siamese cat"),
        ("n02124075", "Egyptian cat"), ("n02129165", "lion"),
        ("n02129604", "tiger"), ("n02128925", "jaguar"),
        ("n02128757", "snow leopard"), ("n02127052", "lynx"),
    ),
    "imagesquawk": (  # 84 130 88 144 145 22 96 9 100 89
        ("n01806143", "peacock"), ("n02007558", "flamingo"),
        ("n01818515", "macaw"), ("n02051845", "pelican"),
        ("n02056570", "king penguin"), ("n01614925", "bald eagle"),
        ("n01843383", "toucan"), ("n01518878", "ostrich"),
        ("n01860187", "black swan"), ("n01819313", "sulphur-crested cockatoo"),
    ),
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
            raise _missing(req, f"{self.subset} (ImageNet subset)",
                           f"an ImageNet folder imagenet/train/<wnid>/ with the wnids {' '.join(self.wnids)}")
        train_dirs = _subset_dirs(folder / "train", self.wnids)
        test_root = next((folder / s for s in ("val", "test") if (folder / s).is_dir()), None)
        test_dirs = _subset_dirs(test_root, self.wnids) if test_root is not None else None
        if test_dirs is None:
            raise FyiError(f"{folder} has no val/<wnid>/ folders for all of {' '.join(self.wnids)}; "
                           "sort the ImageNet validation images into one folder per wnid")
        size = req.image_size or 128
        train_samples = _list_folder(folder / "train", train_dirs)
        test_samples = _list_folder(test_root, test_dirs)
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
            train, _ = _split_from_samples(train_samples, size, 10)
            test, _ = _split_from_samples(test_samples, size, 10)
            return replace(info, image_size=size), train, test

        return _cached(req, _stat_fingerprint(files, folder),
                       f"{self.subset} (ImageNet subset of MTT) from {folder}", decode)


for _subset in IMAGENET_SUBSETS:
    register_dataset(_subset, ImageNetSubset(_subset))
