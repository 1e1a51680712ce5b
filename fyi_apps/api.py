"""The public functions of ``import fyi_apps as fyi``: each takes what a user has at hand and returns a typed result.

A dataset may be given as a name (``"digits"``, ``"cifar10"``) or a loaded
:class:`~fyi_apps.data.Dataset`; a synthetic set as a path or a
:class:`~fyi_apps.synset.SyntheticSet`.  Mistakes are one
:class:`~fyi_apps.errors.FyiError` line naming the argument.  The ``fyi``
command line calls these same functions.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence, overload

from . import validate
from .errors import FyiError

if TYPE_CHECKING:
    import torch
    from matplotlib.figure import Figure

    from .data import Dataset
    from .distill.callbacks import Callback
    from .distill.score import UnequalnessResult
    from .evaluate import EvalConfig, EvalResult
    from .synset import SyntheticSet
    from .tasks.nas import NasConfig, RankingResult

__all__ = ["distill", "evaluate", "show", "score", "rank"]


def distill(
    method: str,
    dataset: "str | Dataset",
    ipc: int,
    *,
    fyi: bool | str | None = None,
    iterations: int | None = None,
    seed: int | None = None,
    arch: str | None = None,
    output: str | os.PathLike | None = None,
    resume: bool = False,
    device: str = "auto",
    progress: bool = True,
    callbacks: "Sequence[Callback]" = (),
    **options: Any,
) -> "SyntheticSet":
    """Distil ``dataset`` into ``ipc`` synthetic images per class with DC, DSA, DM, IDC, MTT or FTD.

    With FYI the matching loss sees ``cat([S, flip(S)])`` (labels repeated, the
    gradient flows through the flip into ``S``); only ``S`` is stored.  Inside an
    initialised process group (``torchrun``), DM, DC, DSA and IDC split the classes
    between the processes and give the one-process set (docs/distributed.md).

    Args:
        method: ``"dc"``, ``"dsa"``, ``"dm"``, ``"idc"``, ``"mtt"`` or ``"ftd"`` (``fyi.list_methods()``).
        dataset: a dataset name or a loaded :class:`~fyi_apps.data.Dataset`.
        ipc: synthetic images per class.
        fyi: ``None``/``False`` (off), ``True``/``"flip"`` (the paper) or a Table-4 view
            (``"vflip"``, ``"rot15"``, ``"scale"``).
        iterations: outer iterations (default: the method's published preset).
        seed: the seed of initialisation and sampling (default 0).
        arch: the network matched against (default ``"convnet"``; ``"space:nb201;cells=1"`` draws one per iteration).
        output: where to write the set (``.safetensors``); ``None`` keeps it in memory.
        resume: continue from ``output``'s checkpoint when there is one.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
        progress: show a progress bar (one line every few percent when stderr is a log file).
        callbacks: objects with ``on_iteration(distiller, iteration, row)`` (``fyi_apps.distill.Callback``).
        **options: other :class:`~fyi_apps.distill.DistillConfig` fields (``lr_img``, ``batch_real``, ``init``,
            ``precision``...) or the method's own options (``outer_loop``, ``syn_steps``, ``expert_dir``...).
            ``precision="auto"`` runs the real-image passes in bf16 where the hardware runs bf16 natively,
            ``"fp32"`` never; left out, the method's default (``fyi_apps.runtime.DEFAULT_PRECISION``: ``auto``
            where its accuracy was measured unchanged, else ``fp32``); the set records it (``precision_used``).

    Returns:
        The :class:`~fyi_apps.synset.SyntheticSet` (also written to ``output`` when given).

    Example:
        >>> import fyi_apps as fyi
        >>> s = fyi.distill("dm", "digits", ipc=1, fyi=True, iterations=20, progress=False)
        >>> s.images.shape
        torch.Size([10, 1, 8, 8])
    """
    from .distill import distill as run

    given = {"iterations": iterations, "seed": seed, "arch": arch}
    options.update({k: v for k, v in given.items() if v is not None})
    return run(method, dataset, ipc, fyi=fyi, output=output, resume=resume, device=device, progress=progress,
               callbacks=callbacks, **options)


@overload
def evaluate(synset: "str | os.PathLike | SyntheticSet", dataset: "str | Dataset | None" = None, *,
             arch: str = ..., seeds: Iterable[int] = ..., cfg: "EvalConfig | dict | None" = ...,
             device: str = ..., progress: bool = ..., **cfg_fields: Any) -> "EvalResult": ...


@overload
def evaluate(synset: "str | os.PathLike | SyntheticSet", dataset: "str | Dataset | None" = None, *,
             arch: Sequence[str], seeds: Iterable[int] = ..., cfg: "EvalConfig | dict | None" = ...,
             device: str = ..., progress: bool = ..., **cfg_fields: Any) -> "dict[str, EvalResult]": ...


def evaluate(
    synset: "str | os.PathLike | SyntheticSet",
    dataset: "str | Dataset | None" = None,
    *,
    arch: "str | Sequence[str]" = "convnet",
    seeds: Iterable[int] = (0, 1, 2),
    cfg: "EvalConfig | dict | None" = None,
    device: str = "auto",
    progress: bool = False,
    **cfg_fields: Any,
) -> "EvalResult | dict[str, EvalResult]":
    """The paper's evaluation protocol: train fresh networks on the set, report test accuracy over seeds.

    The set is decoded (IDC's multi-formation) but never flip-extended; ZCA sets
    (MTT/FTD) get a whitened test set.

    Args:
        synset: a :class:`~fyi_apps.synset.SyntheticSet` or the path of one.
        dataset: the dataset it was distilled from, by name or loaded (default: the set's own, by name).
        arch: one architecture (``"convnet"``, ``"resnet18"``, ``"timm:resnet18"``, ``"nb201:..."``) or a list.
        seeds: one network per seed.
        cfg: an :class:`~fyi_apps.evaluate.EvalConfig` or a dict of its fields (default: the paper's protocol).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``...
        progress: show a progress bar.
        **cfg_fields: :class:`~fyi_apps.evaluate.EvalConfig` fields given directly (``epochs=300``, ``lr=0.01``...);
            they override ``cfg``.

    Returns:
        An :class:`~fyi_apps.evaluate.EvalResult` (``mean_pct``, ``std_pct``, ``accs_pct``) for one ``arch``;
        a dict ``arch -> EvalResult`` for a list.

    Example:
        >>> res = fyi.evaluate("dm_fyi.safetensors", "digits", seeds=[0], epochs=20)
        >>> print(res.summary())
    """
    from .evaluate import EvalConfig, _eval_config, _synset, evaluate_synset

    s = _synset(synset)
    if dataset is None:
        dataset = s.dataset
    config = _eval_config(cfg)
    if cfg_fields:
        known = {f.name for f in dataclasses.fields(EvalConfig)}
        unknown = sorted(set(cfg_fields) - known)
        if unknown:
            raise FyiError(f"evaluate got unknown argument(s) {', '.join(unknown)}; EvalConfig's fields are "
                           f"{', '.join(sorted(known))}")
        config = dataclasses.replace(config, **cfg_fields)
    single = isinstance(arch, str)
    results = evaluate_synset(s, dataset, arch=arch, cfg=config, seeds=seeds, device=device, progress=progress)
    return results[arch] if single else results


def show(
    x: "SyntheticSet | str | os.PathLike | Dataset | torch.Tensor",
    *,
    max_per_class: int | None = 10,
    figure: bool = False,
    padding: int = 2,
    labels: "torch.Tensor | None" = None,
) -> "torch.Tensor | Figure":
    """A grid of images, one row per class (torchvision's ``make_grid``), to look at from Python.

    Args:
        x: a synthetic set or its path; a :class:`~fyi_apps.data.Dataset` (its first training images
            of each class); or a tensor ``[N, C, H, W]`` of images in ``[0, 1]`` (with ``labels``: one row
            per class; without: rows of ``max_per_class``).
        max_per_class: images per row (``None``: all of a set's images).
        figure: return a matplotlib ``Figure`` (class names as row labels) instead of the tensor.
        padding: pixels between images.

    Returns:
        A ``[3, H, W]`` float tensor in ``[0, 1]``, or a ``matplotlib.figure.Figure`` when ``figure=True``.

    Example:
        >>> grid = fyi.show("dm_fyi.safetensors")
        >>> fyi.show(fyi.load_dataset("digits"), figure=True).savefig("digits.png")
    """
    import torch

    from .data import Dataset
    from .plots import class_grid, grid_figure
    from .synset import SyntheticSet

    validate.integer(padding, "padding", min=0)
    if labels is not None and not isinstance(x, torch.Tensor):
        raise FyiError("labels applies only when x is an image tensor; a set or a dataset has its own labels")
    if isinstance(x, (str, os.PathLike)):
        from .evaluate import _synset

        x = _synset(x)
    if isinstance(x, SyntheticSet):
        return x.show(max_per_class, figure=figure, padding=padding)
    if isinstance(x, Dataset):
        split, info = x.train, x.info
        per_row = max_per_class or 10
        first = torch.cat([(split.labels == c).nonzero().flatten()[:per_row] for c in range(info.num_classes)])
        grid = class_grid(split.images[first].float() / 255.0, split.labels[first], info.num_classes,
                          max_per_class=per_row, padding=padding)
        names, title = list(info.class_names), info.name
    elif isinstance(x, torch.Tensor):
        if x.dim() != 4:
            raise FyiError(f"x must be images [N, C, H, W] in [0, 1], got a tensor of shape {list(x.shape)}")
        if labels is None:
            per_row = max_per_class or 10
            labels = torch.arange(x.shape[0]) // per_row
        labels = torch.as_tensor(labels).long()
        k = int(labels.max()) + 1 if labels.numel() else 1
        grid = class_grid(x, labels, k, max_per_class=max_per_class, padding=padding)
        names, title = [str(i) for i in range(k)], None
    else:
        raise FyiError(f"x must be a SyntheticSet, a set's path, a Dataset or an image tensor, got {type(x).__name__}")
    if not figure:
        return grid
    tile = int(x.shape[2]) if isinstance(x, torch.Tensor) else int(x.info.image_size)
    return grid_figure(grid, names, tile=tile, padding=padding, title=title)


def score(
    x: "SyntheticSet | str | os.PathLike | Dataset",
    *,
    ipc: int | None = None,
    distance: str = "dm",
    arch: str = "convnet",
    num_nets: int = 5,
    view: str = "flip",
    seed: int = 0,
    device: str = "auto",
) -> "UnequalnessResult":
    """The unequalness score ``D(R, flip(R))`` (the FYI paper's Eq. 5) of a set of images.

    How far the images are from their mirror images under a distillation method's
    matching distance; small real subsets score high and the score falls as the
    subset grows (the paper's Fig. 3).

    Args:
        x: a synthetic set or its path (its stored images), or a :class:`~fyi_apps.data.Dataset`
            (a random real subset of ``ipc`` training images per class; its ``seed``).
        ipc: real images per class when ``x`` is a dataset (default 10).
        distance: ``"dm"`` (feature-mean distance) or ``"dc"`` (gradient distance).
        arch: the random networks' architecture.
        num_nets: random networks averaged over.
        view: the view compared with (``"flip"``, ``"vflip"``, ``"rot15"``, ``"scale"``).
        seed: the seed of the networks (and of the subset).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``...

    Returns:
        An :class:`~fyi_apps.distill.score.UnequalnessResult` (``score``, ``std_over_nets``, ``per_class``).

    Example:
        >>> fyi.score("dm_fyi.safetensors").score
    """
    from .baselines import random_subset
    from .data import Dataset
    from .distill.score import UnequalnessResult, unequalness
    from .synset import SyntheticSet

    if isinstance(x, (str, os.PathLike)):
        from .evaluate import _synset

        x = _synset(x)
    if isinstance(x, Dataset):
        x = random_subset(x, validate.ipc(10 if ipc is None else ipc, "ipc"), seed=seed)
    elif ipc is not None:
        raise FyiError("ipc applies only when x is a dataset (a real subset is drawn); a set is scored whole")
    if not isinstance(x, SyntheticSet):
        raise FyiError(f"x must be a SyntheticSet, a set's path or a Dataset, got {type(x).__name__}")
    images, labels = x.decoded()
    out = unequalness(images, labels, x.num_classes, distance=distance, arch=arch, num_nets=num_nets, seed=seed,
                      view=view, device=device)
    return UnequalnessResult.from_dict(out)


def rank(
    cfg: "NasConfig | dict | None" = None,
    *,
    cache_dir: str | os.PathLike = Path("fyi-runs") / "nas-cache",
    dataset: "str | Dataset | None" = None,
    device: str = "auto",
    progress: bool = True,
    **fields: Any,
) -> "RankingResult":
    """Rank architectures by how they train on proxy data, against a ground truth (``fyi nas``).

    Args:
        cfg: a :class:`~fyi_apps.tasks.nas.NasConfig` or a dict of its fields.
        cache_dir: where each finished training run is kept (resumable; two processes may share it).
        dataset: the dataset, by name or loaded (default: ``cfg.dataset``).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``...
        progress: show a progress bar.
        **fields: :class:`~fyi_apps.tasks.nas.NasConfig` fields given directly (``proxies=["random:2"]``,
            ``space="nb201"``, ``sample=20``...); they override ``cfg``.

    Returns:
        A :class:`~fyi_apps.tasks.nas.RankingResult` (rank correlations with bootstrap intervals, top-k overlap,
        the simulated search, ``.table()``).

    Example:
        >>> r = fyi.rank(dataset="digits", proxies=["random:2", "params"], space="dc720", sample=8)
        >>> print(r.table())
    """
    from .tasks.nas import NasConfig, run_ranking

    if cfg is None:
        cfg = {}
    if isinstance(cfg, NasConfig):
        cfg = dataclasses.asdict(cfg)
    if not isinstance(cfg, dict):
        raise FyiError(f"cfg must be a NasConfig (or a dict of its fields), got {type(cfg).__name__}")
    merged = {**cfg, **fields}
    validate.text(cache_dir, "cache_dir")
    if isinstance(dataset, str):
        merged.setdefault("dataset", dataset)
        dataset = None
    elif dataset is not None:
        from .data import as_dataset

        dataset = as_dataset(dataset)
        merged.setdefault("dataset", dataset.info.name)
    return run_ranking(merged, cache_dir=cache_dir, dataset=dataset, device=device, progress=progress)
