"""The dataset registry: families, names and aliases, where files are looked for,
and the public entry points :func:`load_dataset`, :func:`dataset_info` and
:func:`list_datasets`.

A dataset is one :class:`DatasetFamily` object registered under a name::

    @register_dataset("mine", aliases=("my-data",))
    class MyData(DatasetFamily):
        static_info = DatasetInfo("mine", 3, 32, ("a", "b"), (0.5,) * 3, (0.25,) * 3)

        def load(self, req: LoadRequest) -> Dataset:
            ...

A plain function ``loader(req) -> Dataset`` registers too
(``register_dataset("mine", loader, info=...)``).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterable, Sequence

from ..errors import FyiError
from ..registry import Registry, normalize_name
from .base import Dataset, DatasetInfo, LoadRequest, flip_extend
from .decode import _resized

#: Where to look when neither ``root=`` nor ``$FYI_DATA`` is given (relative to the cwd).
DEFAULT_SEARCH_DIRS = ("./data", "../shared/data", "~/.cache/fyi-apps/data")

_HOW_TO_POINT = (
    "put the files there, or point at their folder with --data-root DIR or the FYI_DATA environment variable"
)

Loader = Callable[[LoadRequest], Dataset]
InfoSource = DatasetInfo | Callable[[LoadRequest], DatasetInfo] | None


class DatasetFamily:
    """One registered dataset: how to find and decode its files.

    Subclasses implement :meth:`load`; they may set ``static_info`` (so that
    :func:`dataset_info` needs no files) or override :meth:`info` (info read
    from the files without decoding them all).  ``aliases`` are extra names,
    ``system_dirs`` folders searched after the usual ones unless ``root=`` is
    given, and ``takes_option`` whether the name accepts a ``":..."`` suffix
    (``imagefolder:/path``; the suffix arrives as ``req.option``).
    ``name`` is set by :func:`register_dataset`.
    """

    name: str = ""
    aliases: tuple[str, ...] = ()
    system_dirs: tuple[Path, ...] = ()
    takes_option: bool = False
    static_info: DatasetInfo | None = None

    def load(self, req: LoadRequest) -> Dataset:
        raise NotImplementedError(f"{type(self).__name__} must implement load(req) -> Dataset")

    def info(self, req: LoadRequest) -> DatasetInfo:
        """The dataset's info; by default the loaded dataset's."""
        return self.load(req).info


class _FunctionFamily(DatasetFamily):
    """A family made of a plain ``loader(req)`` function (``register_dataset(name, fn)``)."""

    takes_option = True  # functions have always accepted a ":..." suffix

    def __init__(self, loader: Loader, info: InfoSource):
        self._loader = loader
        self._info = info
        self.static_info = info if isinstance(info, DatasetInfo) else None

    def load(self, req: LoadRequest) -> Dataset:
        return self._loader(req)

    def info(self, req: LoadRequest) -> DatasetInfo:
        if callable(self._info):
            return self._info(req)
        return self._loader(req).info


def _known_datasets() -> str:
    return f"known datasets: {', '.join(list_datasets())}"


#: dataset name -> its :class:`DatasetFamily` (names and aliases: case-insensitive, ``_`` == ``-``)
DATASETS: Registry[DatasetFamily] = Registry("dataset", choices=_known_datasets, replace_hint="replace_existing=True")


def register_dataset(name: str, loader=None, *, info: InfoSource = None, aliases: Iterable[str] = (),
                     system_dirs: Iterable[str | Path] = (), replace_existing: bool = False):
    """Add a dataset; ``register_dataset("x", obj)`` or ``@register_dataset("x")``.

    ``obj`` is a :class:`DatasetFamily` subclass (instantiated without
    arguments; the decorator returns the class), a family instance, or a plain
    function ``loader(request: LoadRequest) -> Dataset``.  ``info`` is a static
    :class:`DatasetInfo` (or a function of the request) so that
    :func:`dataset_info` need not load the data; without it, ``dataset_info``
    loads the dataset.  ``system_dirs`` are searched after the usual folders
    unless ``root=`` is given.  ``info``, ``aliases`` and ``system_dirs`` add to
    (or, for ``info``, replace) what a family class declares.
    """
    key = normalize_name(name)

    def add(obj):
        if isinstance(obj, type) and issubclass(obj, DatasetFamily):
            family = obj()
        elif isinstance(obj, DatasetFamily):
            family = obj
        elif callable(obj):
            family = _FunctionFamily(obj, info)
        else:
            raise FyiError(f"dataset loader for {name!r} must be callable")
        if info is not None and not isinstance(family, _FunctionFamily):
            family = _with_info(family, info)
        family.system_dirs = tuple(Path(p) for p in (*family.system_dirs, *system_dirs))
        family.aliases = tuple(family.aliases) + tuple(aliases)
        DATASETS.add(key, family, aliases=family.aliases, replace=replace_existing)
        family.name = key
        return obj

    if loader is None:
        return add
    return add(loader)


def _with_info(family: DatasetFamily, info: InfoSource) -> DatasetFamily:
    """``family`` with its info taken from ``info`` (a DatasetInfo or a function of the request)."""
    if isinstance(info, DatasetInfo):
        family.static_info = info
    else:
        family.static_info = None
        family.info = info  # instance attribute: called as info(req)
    return family


def list_datasets(pattern: str | None = None) -> list[str]:
    """Registered dataset names (aliases not included), in registration order.

    Args:
        pattern: only the names matching this shell-style wildcard (``"cifar*"``, ``"*mnist"``).

    Returns:
        The names :func:`load_dataset` takes (plus ``"imagefolder:/path"`` for any folder of images).

    Example:
        >>> fyi.list_datasets("cifar*")
        ['cifar10', 'cifar10-jpeg', 'cifar100']
    """
    return DATASETS.names(pattern)


def _resolve_name(name: str) -> tuple[DatasetFamily, str | None]:
    if not isinstance(name, str) or not name.strip():
        raise FyiError(f"dataset name must be a non-empty string, got {name!r}")
    text = name.strip()
    option = None
    head, sep, tail = text.partition(":")
    # "imagefolder:/path" (keep Windows drive letters out of it: require a known head)
    if sep and head in DATASETS:
        text, option = head, tail
    if text not in DATASETS:
        raise DATASETS.unknown(name)
    return DATASETS.get(text), option


def _abspath(p: str | Path) -> Path:
    return Path(os.path.normpath(os.path.abspath(os.path.expanduser(str(p)))))


def _request(family: DatasetFamily, root, option: str | None, image_size: int | None,
             cache: bool) -> LoadRequest:
    if image_size is not None:
        try:
            ok = not isinstance(image_size, bool) and int(image_size) == image_size and int(image_size) >= 1
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise FyiError(f"image_size must be a positive integer, got {image_size!r}")
        image_size = int(image_size)
    if option is not None and not family.takes_option:
        raise FyiError(f"dataset {family.name} takes no ':...' suffix; point at its files with "
                       "--data-root DIR / root=DIR or FYI_DATA")
    if root is not None:
        if not isinstance(root, (str, os.PathLike)):
            raise FyiError(f"root must be a folder path, got {root!r} (a {type(root).__name__})")
        r = Path(root).expanduser()
        if not r.exists():
            raise FyiError(f"data root {r} does not exist; pass an existing folder with "
                           "--data-root DIR / root=DIR or set FYI_DATA")
        return LoadRequest(family.name, (_abspath(r),), "argument", image_size, cache, option)
    env = os.environ.get("FYI_DATA")
    if env:
        roots = tuple(_abspath(p) for p in env.split(os.pathsep) if p.strip())
        origin = "FYI_DATA"
    else:
        roots = tuple(_abspath(p) for p in DEFAULT_SEARCH_DIRS)
        origin = "default"
    roots = roots + tuple(p for p in family.system_dirs if p not in roots)
    return LoadRequest(family.name, roots, origin, image_size, cache, option)


def dataset_info(name: str, root=None) -> DatasetInfo:
    """The dataset's :class:`DatasetInfo`; static where possible, else read from the files."""
    family, option = _resolve_name(name)
    if isinstance(family.static_info, DatasetInfo):
        return family.static_info
    return family.info(_request(family, root, option, None, True))


def as_dataset(dataset, what: str = "dataset") -> Dataset:
    """``dataset`` itself when loaded, a name loaded with :func:`load_dataset`; anything else is one line."""
    if isinstance(dataset, Dataset):
        return dataset
    if isinstance(dataset, str):
        return load_dataset(dataset)
    raise FyiError(f"{what} must be a Dataset or a dataset name (e.g. 'cifar10'), got {type(dataset).__name__}")


def load_dataset(name: str, root: str | Path | None = None, *, extend_flip: bool = False,
                 image_size: int | None = None, cache: bool = True) -> Dataset:
    """Load a dataset by name from local files (nothing downloads).

    Args:
        name: a registered name (``fyi.list_datasets()``: ``"digits"``, ``"cifar10"``, ``"fashion-mnist"``...)
            or ``"imagefolder:/path"`` (``train/`` and ``test/`` folders of class folders).
        root: a folder holding the files (else ``$FYI_DATA``, else ``./data``, ``../shared/data``,
            ``~/.cache/fyi-apps/data``).
        extend_flip: add the horizontal mirror of every training image (:func:`flip_extend`).
        image_size: resize (datasets of fixed size) or decode at that size (folders of images).
        cache: read and write the decoded cache (``$FYI_CACHE``; checked by a content hash).

    Returns:
        A :class:`~fyi_apps.data.Dataset`: uint8 ``train`` and ``test`` splits, ``info`` (channels, image size,
        class names, mean/std), ``as_torch_dataset(split)`` for a ``DataLoader``.

    Example:
        >>> ds = fyi.load_dataset("digits")
        >>> ds.info.num_classes, ds.train.images.shape
    """
    family, option = _resolve_name(name)
    req = _request(family, root, option, image_size, cache)
    ds = family.load(req)
    if not isinstance(ds, Dataset):
        raise FyiError(f"the loader of dataset {family.name!r} returned {type(ds).__name__}, "
                       "not a Dataset; fix the loader")
    if image_size is not None and ds.info.image_size != image_size:
        ds = _resized(ds, image_size)
    _check_not_constant(ds)
    if extend_flip:
        ds = Dataset(ds.info, flip_extend(ds.train), ds.test,
                     ds.source + "; training images extended with their horizontal flips")
    return ds


def _check_not_constant(ds: Dataset) -> None:
    """Refuse a training split whose images are all the same (std 0); warn about a class whose images are."""
    import sys

    info = ds.info
    if any(float(s) == 0.0 for s in info.std):
        raise FyiError(f"every training image of {info.name} has the same value in some channel (std "
                       f"{tuple(info.std)}): there is nothing to learn and normalising would divide by zero; check "
                       f"the image files ({ds.source})")
    x, y = ds.train.images, ds.train.labels
    if x.numel() == 0:
        return
    flat = x.reshape(x.shape[0], -1)
    constant = []
    for c in range(info.num_classes):
        rows = flat[y == c]
        if rows.shape[0] > 1 and bool((rows == rows[:1]).all()):
            constant.append(info.class_names[c] if c < len(info.class_names) else str(c))
    if constant:
        print(f"fyi: warning: every training image of class(es) {', '.join(map(str, constant))} of {info.name} is "
              "identical (std 0 within the class); distilling or training on it learns nothing about that class",
              file=sys.stderr)


def missing_files(req: LoadRequest, what: str, looked_for: str, where: Sequence[Path] | None = None) -> FyiError:
    """The error a family raises when its files are not found: what, where it looked, how to point at them.

    ``raise missing_files(req, "Mine", "mine/ (train/, test/)")``; ``where``: the folders searched (default
    ``req.roots``).
    """
    dirs = ", ".join(str(p) for p in (where if where is not None else req.roots))
    return FyiError(f"{what} not found: looked for {looked_for} in {dirs}; {_HOW_TO_POINT}")
