"""Importers: synthetic sets in other projects' formats to :class:`SyntheticSet`
(:func:`import_synset`): DatasetCondensation ``res_*.pt`` (DC/DSA/DM), MTT/DATM
``images_best.pt``/``labels_best.pt``/``lr_best.pt``, ImageFolders of PNG/JPEG
images, and fyi-apps files.  ``.pt`` files are read with ``weights_only=True``
unless the caller trusts them.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..errors import FyiError
from .core import SUFFIX, SyntheticSet, _folder_name, _jsonable
from .fileformat import _validate, load_synset

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

_FORMATS = {
    "auto": "auto",
    "synset": "synset", "fyi": "synset", "safetensors": "synset",
    "res": "res", "dc": "res", "dsa": "res", "dm": "res", "datasetcondensation": "res",
    "mtt": "mtt", "datm": "mtt", "ftd": "mtt",
    "imagefolder": "imagefolder", "folder": "imagefolder", "images": "imagefolder",
}
_MTT_FILE = re.compile(r"^(images|labels|lr)_(?P<tag>[A-Za-z0-9]+)\.pt$")


def import_synset(
    path: str | os.PathLike,
    *,
    format: str = "auto",
    dataset: str | None = None,
    info=None,
    exp: int = 0,
    method: str | None = None,
    fyi: str | None = None,
    trust: bool = False,
) -> SyntheticSet:
    """Convert a synthetic set in another project's format into a :class:`SyntheticSet`.

    Formats (``format="auto"`` detects them):

    * ``res``: DatasetCondensation (DC/DSA/DM) ``res_<METHOD>_<DATASET>_<MODEL>_<N>ipc.pt``,
      a dict whose ``data`` is a list of ``[images, labels]`` per experiment; ``exp``
      picks one.  Method and dataset come from the file name unless given.
    * ``mtt``: MTT/DATM/FTD ``images_best.pt`` + ``labels_best.pt`` (+ ``lr_best.pt``) in
      one folder; ``path`` is the folder or any of the files (``images_<it>.pt`` works
      too).  Soft labels ``[N, K]`` (DATM) give hard labels by argmax and are kept in
      ``soft_labels``.  Note: sets distilled with ``--zca`` are in ZCA space and are
      imported as they are.
    * ``imagefolder``: ``<dir>/<class name>/*.png|jpg``; pixels are normalised with the
      dataset's mean/std.  Folders must be exactly the dataset's class names (or the
      class indices ``0..K-1``).
    * ``synset``: a fyi-apps ``*.fyi.safetensors`` file (just loaded and checked).

    ``dataset`` names a fyi-apps dataset (its class names, mean, std); ``info`` may
    instead be any object with ``name, channels, image_size, class_names, mean, std,
    num_classes``.  ``.pt`` files are read with ``weights_only=True``; a file that needs
    full unpickling is refused unless ``trust=True``.
    """
    path = Path(path)
    if not path.exists():
        raise FyiError(f"{path} does not exist; check the path to the synthetic set to import")
    kind = _FORMATS.get(str(format).lower())
    if kind is None:
        raise FyiError(f"unknown import format {format!r}; use auto, res, mtt, imagefolder or synset")
    if kind == "auto":
        kind = _detect_format(path)

    if kind == "synset":
        expect = dataset if dataset is not None else getattr(info, "name", None)
        s = load_synset(path, expect_dataset=expect)
    elif kind == "res":
        s = _import_res(path, dataset=dataset, info=info, exp=exp, trust=trust)
    elif kind == "mtt":
        s = _import_mtt(path, dataset=dataset, info=info, trust=trust)
    else:
        s = _import_imagefolder(path, dataset=dataset, info=info)
    if method is not None:
        s.method = str(method)
    if fyi is not None:
        s.fyi = str(fyi)
    _validate(s, f"import of {path}")
    return s


def _detect_format(path: Path) -> str:
    if path.is_dir():
        if any((path / f"{stem}_best.pt").exists() for stem in ("images",)):
            return "mtt"
        subdirs = [d for d in path.iterdir() if d.is_dir() and not d.name.startswith(".")]
        if subdirs and any(_image_files(d) for d in subdirs):
            return "imagefolder"
        raise FyiError(
            f"cannot tell what {path} holds: no images_best.pt and no class folders of images; "
            f"pass a res_*.pt file, an MTT folder or an ImageFolder (<dir>/<class>/*.png)"
        )
    name = path.name
    if name.endswith(".safetensors"):
        return "synset"
    if _MTT_FILE.match(name):
        return "mtt"
    if name.startswith("res_") and name.endswith(".pt"):
        return "res"
    if name.endswith(".pt") or name.endswith(".pth"):
        raise FyiError(
            f"cannot tell the format of {path} from its name; pass format='res' (DatasetCondensation "
            f"res_*.pt) or format='mtt' (images_best.pt)"
        )
    raise FyiError(
        f"cannot tell the format of {path}; fyi import reads res_*.pt, images_best.pt folders, "
        f"ImageFolders and *{SUFFIX} files"
    )


def _resolve_info(dataset: str | None, info, path: Path, guessed: str | None = None):
    if info is not None:
        missing = [a for a in ("name", "channels", "image_size", "class_names", "mean", "std") if not hasattr(info, a)]
        if missing:
            raise FyiError(f"info= object lacks {', '.join(missing)}; pass a fyi_apps.data.DatasetInfo")
        return info
    name = dataset or guessed
    if not name:
        raise FyiError(f"cannot tell which dataset {path} was distilled from; pass --dataset (e.g. cifar10)")
    try:
        from ..data import dataset_info
    except ImportError as e:
        raise FyiError(f"dataset information is unavailable ({e}); pass info= with class names, mean and std") from None
    try:
        return dataset_info(name)
    except FyiError as e:
        if dataset is None and guessed:
            raise FyiError(
                f"{path} looks like dataset {guessed!r} (from its name) but fyi-apps does not know it ({e.args[0]}); "
                f"pass --dataset with the fyi-apps name"
            ) from None
        raise


def _unreadable(path: Path, e: Exception) -> FyiError:
    first = (str(e).splitlines() or [""])[0][:160]
    return FyiError(
        f"{path} is not a readable torch file (corrupt or truncated): {type(e).__name__}: {first}; "
        f"re-create or re-download it"
    )


def _torch_load(path: Path, trust: bool):
    import pickle

    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        needs_globals = "unsupported global" in str(e).lower()
        if not trust:
            if needs_globals:
                raise FyiError(
                    f"{path} holds Python objects that need full unpickling, which can run arbitrary code; "
                    f"if you trust where the file came from, pass trust=True (fyi import --trust)"
                ) from None
            tail = str(e).split("WeightsUnpickler error:", 1)[-1]
            detail = next((ln.strip() for ln in tail.splitlines() if ln.strip()), "unreadable pickle")[:160]
            raise FyiError(
                f"{path} is not a readable torch file (corrupt or truncated): {detail}; re-create or re-download it"
            ) from None
    except Exception as e:
        raise _unreadable(path, e) from None
    try:
        return torch.load(str(path), map_location="cpu", weights_only=False)
    except Exception as e:
        raise _unreadable(path, e) from None


def _as_tensor(obj, what: str, path: Path) -> Tensor:
    if isinstance(obj, Tensor):
        return obj.detach().cpu()
    try:
        return torch.as_tensor(obj).cpu()
    except Exception:
        raise FyiError(f"{path}: {what} is a {type(obj).__name__}, not a tensor; is this the right file?") from None


def _check_against_info(images: Tensor, info, path: Path) -> None:
    if images.dim() != 4:
        raise FyiError(f"{path}: images have shape {list(images.shape)}, expected [N, C, H, W]; is this the right file?")
    c, h = int(images.shape[1]), int(images.shape[2])
    if c != int(info.channels) or h != int(info.image_size):
        raise FyiError(
            f"{path}: images are {c}x{h}x{images.shape[3]} but dataset {info.name} has "
            f"{info.channels}x{info.image_size}x{info.image_size}; pass the dataset they were distilled from"
        )


def _from_info(images, labels, info, **kw) -> SyntheticSet:
    return SyntheticSet(
        images=images.float().contiguous(),
        labels=labels.long().contiguous(),
        dataset=str(info.name),
        class_names=list(info.class_names),
        mean=list(info.mean),
        std=list(info.std),
        **kw,
    )


def _import_res(path: Path, *, dataset, info, exp: int, trust: bool) -> SyntheticSet:
    if path.is_dir():
        raise FyiError(f"{path} is a folder; pass the res_*.pt file itself")
    parts = path.stem.split("_")
    guessed_method, guessed_dataset, model = None, None, None
    if len(parts) >= 4 and parts[0] == "res":
        guessed_method = parts[1].lower()
        guessed_dataset = parts[2].lower()
        model = "_".join(parts[3:-1]) or None
    obj = _torch_load(path, trust)
    if not isinstance(obj, Mapping) or "data" not in obj:
        raise FyiError(
            f"{path} is not a DatasetCondensation result file (no 'data' entry); "
            f"pass format='mtt' or 'imagefolder' if it is something else"
        )
    data = obj["data"]
    if not isinstance(data, Sequence) or len(data) == 0:
        raise FyiError(f"{path} holds no experiments under 'data'; re-create the file")
    if not 0 <= int(exp) < len(data):
        raise FyiError(f"{path} holds {len(data)} experiment(s); choose --exp between 0 and {len(data) - 1}")
    pair = data[int(exp)]
    if not isinstance(pair, Sequence) or len(pair) < 2:
        raise FyiError(f"{path}: experiment {exp} is not an [images, labels] pair; is this the right file?")
    images = _as_tensor(pair[0], "images", path)
    labels = _as_tensor(pair[1], "labels", path)
    info = _resolve_info(dataset, info, path, guessed_dataset)
    _check_against_info(images, info, path)
    if labels.dim() == 2:
        labels = labels.argmax(dim=1)
    method = guessed_method if guessed_method in ("dc", "dsa", "dm") else "imported"
    extra: dict[str, Any] = {"source": {"format": "DatasetCondensation res_*.pt", "file": path.name, "exp": int(exp)}}
    if model:
        extra["source"]["model"] = model
    if guessed_method:
        extra["source"]["method"] = parts[1]
    accs = obj.get("accs_all_exps")
    if isinstance(accs, Mapping):
        try:
            extra["source"]["accs_all_exps"] = _jsonable(accs, "accs_all_exps")
        except FyiError:
            pass
    return _from_info(images, labels, info, method=method, extra=extra)


def _import_mtt(path: Path, *, dataset, info, trust: bool) -> SyntheticSet:
    if path.is_dir():
        folder, tag = path, "best"
    else:
        m = _MTT_FILE.match(path.name)
        if not m:
            raise FyiError(f"{path} is not named images_<it>.pt / labels_<it>.pt / lr_<it>.pt; pass the MTT folder")
        folder, tag = path.parent, m.group("tag")
    img_file, lab_file, lr_file = (folder / f"{k}_{tag}.pt" for k in ("images", "labels", "lr"))
    if not img_file.exists():
        raise FyiError(f"{img_file} not found; an MTT/DATM folder must contain images_{tag}.pt")
    info = _resolve_info(dataset, info, folder)
    images = _as_tensor(_torch_load(img_file, trust), "images", img_file)
    _check_against_info(images, info, img_file)
    n, k = int(images.shape[0]), int(info.num_classes if hasattr(info, "num_classes") else len(info.class_names))
    source: dict[str, Any] = {"format": "MTT/DATM images_*.pt", "folder": folder.name, "tag": tag}
    soft = None
    if lab_file.exists():
        labels = _as_tensor(_torch_load(lab_file, trust), "labels", lab_file)
        if labels.dim() == 2:
            if labels.shape[1] != k:
                raise FyiError(f"{lab_file}: soft labels have {labels.shape[1]} classes but {info.name} has {k}")
            soft = labels.float()
            labels = labels.argmax(dim=1)
            source["soft_labels"] = True
        elif labels.dim() != 1:
            raise FyiError(f"{lab_file}: labels have shape {list(labels.shape)}, expected [N] or [N, K]")
        if labels.shape[0] != n:
            raise FyiError(f"{lab_file} has {labels.shape[0]} labels but {img_file.name} has {n} images; re-create them together")
        if labels.is_floating_point():
            labels = labels.round()
    else:
        if n % k:
            raise FyiError(
                f"{lab_file.name} not found next to {img_file.name} and {n} images do not split evenly "
                f"over {k} classes; add the labels file"
            )
        labels = torch.arange(k).repeat_interleave(n // k)
        source["labels"] = "inferred class-ordered (no labels file)"
    lr = None
    if lr_file.exists():
        lr_obj = _torch_load(lr_file, trust)
        try:
            lr = float(_as_tensor(lr_obj, "lr", lr_file).reshape(-1)[0])
        except (IndexError, ValueError):
            raise FyiError(f"{lr_file} does not hold a scalar learning rate; remove it or re-create it") from None
    return _from_info(images, labels, info, method="mtt", lr=lr, soft_labels=soft, extra={"source": source})


def _image_files(folder: Path) -> list[Path]:
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")]
    return sorted(files, key=_natural_key)


def _natural_key(p: Path):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)]



def _import_imagefolder(path: Path, *, dataset, info) -> SyntheticSet:
    import numpy as np
    from PIL import Image

    if not path.is_dir():
        raise FyiError(f"{path} is not a folder; an ImageFolder is <dir>/<class name>/*.png")
    info = _resolve_info(dataset, info, path)
    class_names = [str(c) for c in info.class_names]
    folders = sorted(d.name for d in path.iterdir() if d.is_dir() and not d.name.startswith("."))
    by_name = {_folder_name(c): i for i, c in enumerate(class_names)}
    by_name.update({c: i for i, c in enumerate(class_names)})
    if folders and all(f.isdigit() for f in folders) and not set(folders) & set(by_name):
        by_name = {str(i): i for i in range(len(class_names))}
    unknown = [f for f in folders if f not in by_name]
    found = {by_name[f] for f in folders if f in by_name}
    missing = [class_names[i] for i in range(len(class_names)) if i not in found]
    if unknown or missing:
        bits = []
        if unknown:
            bits.append(f"folders {', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''} are not classes of {info.name}")
        if missing:
            bits.append(f"classes {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''} have no folder")
        raise FyiError(
            f"{path}: class folders do not match dataset {info.name}: {'; '.join(bits)}; "
            f"name the folders after the dataset's classes or pass the right --dataset"
        )
    c, size = int(info.channels), int(info.image_size)
    mode = "L" if c == 1 else "RGB"
    arrays, labels = [], []
    for f in folders:
        for file in _image_files(path / f):
            try:
                with Image.open(file) as im:
                    arr = np.asarray(im.convert(mode), dtype=np.uint8)
            except Exception as e:
                raise FyiError(f"{file} is not a readable image ({type(e).__name__}: {e}); remove or replace it") from None
            if arr.shape[0] != size or arr.shape[1] != size:
                raise FyiError(
                    f"{file} is {arr.shape[1]}x{arr.shape[0]} px but {info.name} images are {size}x{size}; "
                    f"resize the images first"
                )
            arrays.append(arr.reshape(size, size, c))
            labels.append(by_name[f])
    if not arrays:
        raise FyiError(f"{path} contains no images (.png/.jpg) in its class folders")
    pixels = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float().div(255.0)
    mean = torch.tensor([float(v) for v in info.mean]).view(1, -1, 1, 1)
    std = torch.tensor([float(v) for v in info.std]).view(1, -1, 1, 1)
    images = (pixels - mean) / std
    order = torch.argsort(torch.tensor(labels), stable=True)
    return _from_info(
        images[order], torch.tensor(labels)[order], info, method="imported",
        extra={"source": {"format": "imagefolder", "folder": path.name}},
    )
