"""Pictures: image grids, curves, scatter plots (matplotlib, PNG).

matplotlib is imported inside the functions (``fyi --help`` stays fast) and
figures are drawn on the Agg canvas without touching pyplot's global state, so
plotting works headless and from threads.  Every PNG is written atomically.
Helpers for new plots: :func:`new_figure` and :func:`save_figure`.
"""
from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Sequence

from . import runtime
from .errors import FyiError


# --------------------------------------------------------------------------- #
# shared helpers
# --------------------------------------------------------------------------- #
def _matplotlib():
    """Import matplotlib with a non-interactive backend (only if pyplot is not in use yet)."""
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        try:
            matplotlib.use("Agg")
        except Exception:  # a backend was already chosen elsewhere; Agg canvases still work
            pass
    return matplotlib


def new_figure(width_in: float, height_in: float, dpi: int = 100):
    """A matplotlib ``Figure`` bound to an Agg canvas (no pyplot, no GUI)."""
    _matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(width_in, 0.5), max(height_in, 0.5)), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, png_path: str | os.PathLike, **kwargs) -> Path:
    """Save ``fig`` as PNG at ``png_path`` atomically and return the path."""
    png_path = Path(png_path)
    kwargs.setdefault("bbox_inches", "tight")
    with runtime.atomic_path(png_path) as tmp:
        fig.savefig(tmp, format="png", **kwargs)
    return png_path


# --------------------------------------------------------------------------- #
# image grids
# --------------------------------------------------------------------------- #
def class_grid(
    images01,
    labels,
    num_classes: int,
    *,
    max_per_class: int | None = 10,
    padding: int = 1,
    pad_value: float = 1.0,
):
    """One row per class, up to ``max_per_class`` images each, as one ``[3, H, W]`` tensor in ``[0, 1]``.

    Built with torchvision's ``make_grid``; a class with fewer images than the
    widest row is padded with ``pad_value``.  ``images01`` is ``[N, C, H, W]`` in
    ``[0, 1]`` (C = 1 or 3), ``labels`` ``[N]``; ``max_per_class=None`` keeps all.
    """
    import torch
    from torchvision.utils import make_grid

    imgs = torch.as_tensor(images01).detach().cpu().float()
    labs = torch.as_tensor(labels).detach().cpu().long()
    if imgs.dim() != 4 or imgs.shape[1] not in (1, 3):
        raise FyiError(f"an image grid needs images [N, 1 or 3, H, W], got {list(imgs.shape)}")
    if labs.dim() != 1 or labs.shape[0] != imgs.shape[0]:
        raise FyiError(f"an image grid got {imgs.shape[0]} images but labels of shape {list(labs.shape)}")
    if max_per_class is not None and int(max_per_class) < 1:
        raise FyiError(f"max_per_class must be at least 1, got {max_per_class}")
    k = int(num_classes)
    if k < 1:
        raise FyiError("an image grid needs at least one class")
    if labs.numel() and (int(labs.min()) < 0 or int(labs.max()) >= k):
        raise FyiError(f"image labels range over {int(labs.min())}..{int(labs.max())} but there are {k} classes")
    counts = torch.bincount(labs, minlength=k)
    cols = max(1, int(counts.max()) if labs.numel() else 1)
    if max_per_class is not None:
        cols = min(cols, int(max_per_class))
    tiles = torch.full((k * cols, *imgs.shape[1:]), float(pad_value))
    for cls in range(k):
        idx = (labs == cls).nonzero().flatten()[:cols]
        tiles[cls * cols: cls * cols + len(idx)] = imgs[idx].clamp(0, 1)
    return make_grid(tiles, nrow=cols, padding=padding, pad_value=pad_value)


def grid_figure(grid, class_names: Sequence[str], *, tile: int, padding: int = 1, title: str | None = None):
    """A matplotlib ``Figure`` of a :func:`class_grid` with the class names as row labels.

    ``tile`` is the image height in pixels; each image is shown at least ~48 px
    tall with nearest-neighbour interpolation (tiny images stay crisp).
    """
    canvas = grid.permute(1, 2, 0).numpy()
    k = len(class_names)
    scale = max(1, math.ceil(48 / max(tile, 1)))
    dpi = 100
    label_in = 0.12 + 0.075 * max((len(str(s)) for s in class_names), default=1)
    width_in = canvas.shape[1] * scale / dpi + label_in
    height_in = canvas.shape[0] * scale / dpi + (0.4 if title else 0.1)
    limit = 300.0  # inches at 100 dpi -> 30 000 px, well under Agg's limit
    shrink = min(1.0, limit / max(width_in, height_in))
    fig = new_figure(width_in * shrink, height_in * shrink, dpi=dpi)
    ax = fig.add_axes([label_in / width_in, 0.0, 1 - label_in / width_in, 1.0 - (0.4 / height_in if title else 0)])
    ax.imshow(canvas, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([padding + cls * (tile + padding) + tile / 2 - 0.5 for cls in range(k)])
    ax.set_yticklabels([str(s) for s in class_names], fontsize=8)
    ax.tick_params(axis="y", length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def image_grid(
    images01,
    labels,
    class_names: Sequence[str],
    png_path: str | os.PathLike,
    max_per_class: int = 10,
    title: str | None = None,
) -> Path:
    """A PNG of :func:`class_grid` (one row per class, class names as row labels), written atomically."""
    if len(class_names) == 0:
        raise FyiError("an image grid needs at least one class name")
    grid = class_grid(images01, labels, len(class_names), max_per_class=max_per_class)
    fig = grid_figure(grid, class_names, tile=int(images01.shape[2]), title=title)
    return save_figure(fig, png_path, dpi=100)


# --------------------------------------------------------------------------- #
# curves
# --------------------------------------------------------------------------- #
def training_curves(log: Sequence[dict], png_path, title: str | None = None) -> Path:
    """Loss (log scale) against iteration, plus the unequalness score and periodic accuracy when logged."""
    keys = [k for k in ("loss", "score", "eval_acc") if any(k in row for row in log)]
    if not keys:
        raise FyiError("nothing to plot: the log has no loss, score or eval_acc entries")
    fig = new_figure(4.2 * len(keys), 3.2)
    labels = {"loss": "matching loss", "score": "unequalness D(S, flip S)", "eval_acc": "test accuracy"}
    for i, k in enumerate(keys):
        ax = fig.add_subplot(1, len(keys), i + 1)
        pts = [(row["iteration"], row[k]) for row in log if k in row]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o" if len(pts) < 30 else None, lw=1.2)
        if k in ("loss", "score") and all(p[1] > 0 for p in pts):
            ax.set_yscale("log")
        ax.set_xlabel("iteration")
        ax.set_title(labels[k], fontsize=10)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=11)
    return save_figure(fig, png_path)


def score_curve(curves: dict, png_path, title: str | None = None) -> Path:
    """Unequalness score against images per class (paper Fig. 3), one line per distance."""
    fig = new_figure(4.5 * len(curves), 3.4)
    for i, (name, rows) in enumerate(curves.items()):
        ax = fig.add_subplot(1, len(curves), i + 1)
        xs = [r["ipc"] for r in rows]
        ys = [r["score"] for r in rows]
        es = [r.get("std", 0.0) for r in rows]
        ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3)
        ax.set_xscale("log")
        if all(y > 0 for y in ys):
            ax.set_yscale("log")
        ax.set_xlabel("real images per class")
        ax.set_ylabel(f"D(R, flip R), {name} distance")
        ax.grid(alpha=0.3, which="both")
    if title:
        fig.suptitle(title, fontsize=11)
    return save_figure(fig, png_path)


# --------------------------------------------------------------------------- #
# NAS proxies
# --------------------------------------------------------------------------- #
def rank_scatter(panels: Sequence[dict], png_path, title: str | None = None) -> Path:
    """Proxy accuracy (x) against ground-truth accuracy (y), one panel per proxy.

    Each panel is a dict with ``label``, ``proxy`` and ``truth`` (accuracies in
    [0, 1], one per candidate), optional ``ranks`` (ground-truth rank written
    next to each point) or ``point_labels`` (any text per point, e.g. names), ``names`` and ``best`` (the proxy's favourite, ringed)
    and ``stats`` (``spearman``/``kendall`` shown in the panel title).
    """
    if not panels:
        raise FyiError("nothing to plot: no proxy results")
    n = len(panels)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig = new_figure(4.3 * cols, 4.0 * rows + (0.4 if title else 0))
    for i, panel in enumerate(panels):
        ax = fig.add_subplot(rows, cols, i + 1)
        xs = [panel.get("xscale", 100) * v for v in panel["proxy"]]
        ys = [100 * v for v in panel["truth"]]
        if len(xs) != len(ys):
            raise FyiError(f"panel {panel.get('label')!r} has {len(xs)} proxy but {len(ys)} truth accuracies")
        ax.scatter(xs, ys, s=18, alpha=0.8)
        marks = panel.get("point_labels") or panel.get("ranks")
        if marks:
            for x, y, r in zip(xs, ys, marks):
                ax.annotate(str(r), (x, y), textcoords="offset points", xytext=(3, 3), fontsize=6, alpha=0.8)
        names, best = panel.get("names"), panel.get("best")
        if names and best in names:
            j = names.index(best)
            ax.scatter([xs[j]], [ys[j]], s=90, facecolors="none", edgecolors="red", linewidths=1.2,
                       label="proxy's pick")
            ax.legend(loc="lower right", fontsize=7)
        st = panel.get("stats") or {}

        def f(v):
            return "n/a" if v is None else f"{v:.2f}"

        ax.set_title(f"{panel.get('label', '')}\nrho {f(st.get('spearman'))}, tau {f(st.get('kendall'))}", fontsize=9)
        ax.set_xlabel(panel.get("xlabel", "proxy test accuracy %"))
        if panel.get("xlog"):
            ax.set_xscale("log")
        ax.set_ylabel("ground-truth test accuracy %")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    if title:
        fig.suptitle(title, fontsize=10, y=1.0 + 0.05 / rows)
    return save_figure(fig, png_path)


def accuracy_vs_classes(curves: dict, png_path, title: str | None = None) -> Path:
    """Continual learning: test accuracy on all seen classes against the number of classes, one line per buffer.

    ``curves`` maps a label to ``{"classes": [...], "mean": [...], "std": [...]}``
    (accuracies as fractions; ``std`` optional, drawn as a band).
    """
    if not curves:
        raise FyiError("nothing to plot: no accuracy curves")
    fig = new_figure(5.6, 3.8)
    ax = fig.add_subplot(1, 1, 1)
    for label, c in curves.items():
        pts = [(x, m, s) for x, m, s in zip(c["classes"], c["mean"], c.get("std") or [None] * len(c["mean"]))
               if m is not None]
        if not pts:
            continue
        xs = [p[0] for p in pts]
        ys = [100 * p[1] for p in pts]
        line, = ax.plot(xs, ys, marker="o", lw=1.5, label=str(label))
        if all(p[2] is not None for p in pts):
            lo = [100 * (p[1] - p[2]) for p in pts]
            hi = [100 * (p[1] + p[2]) for p in pts]
            ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.15, lw=0)
    ticks = sorted({x for c in curves.values() for x in c["classes"]})
    if 0 < len(ticks) <= 25:
        ax.set_xticks(ticks)
    ax.set_xlabel("number of classes seen")
    ax.set_ylabel("test accuracy on seen classes (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    return save_figure(fig, png_path)


# --------------------------------------------------------------------------- #
# rank correlation against compute
# --------------------------------------------------------------------------- #
def rank_curves(series: Sequence[dict], png_path, title: str | None = None,
                axes: Sequence[tuple[str, str]] = (("image_passes", "training images seen per candidate (image-passes)"),
                                                   ("seconds", "proxy seconds per candidate (measured; distillation amortized)"))) -> Path:
    """Spearman's rho (with its 95 % interval) against proxy compute, one panel per compute axis.

    ``series``: dicts with ``label`` and ``points`` (dicts with ``rho``, ``low``,
    ``high`` and one value per axis key); a series of one point is drawn as a
    marker (a proxy that does not train: its own cost), longer ones as lines.
    Points with a cost of 0 (e.g. the parameter count) are drawn at the left
    edge of the log axis and named so in the legend.
    """
    if not series:
        raise FyiError("nothing to plot: no proxy results")
    import matplotlib

    colours = matplotlib.colormaps["tab20"].colors if len(series) > 10 else matplotlib.colormaps["tab10"].colors
    rows = -(-len(series) // 3)  # the legend below the panels, three columns
    fig = new_figure(6.5 * len(axes), 5.0 + 0.22 * rows + (0.4 if title else 0))
    handles = []
    for a, (key, xlabel) in enumerate(axes):
        ax = fig.add_subplot(1, len(axes), a + 1)
        costs = [p[key] for s in series for p in s["points"] if p.get(key)]
        floor = min(costs) / 3 if costs else 1.0
        for i, s in enumerate(series):
            pts = [p for p in s["points"] if p.get("rho") is not None and p.get(key) is not None]
            if not pts:
                continue
            xs = [p[key] if p[key] > 0 else floor for p in pts]
            ys = [p["rho"] for p in pts]
            lo = [p["rho"] - p["low"] if p.get("low") is not None else 0 for p in pts]
            hi = [p["high"] - p["rho"] if p.get("high") is not None else 0 for p in pts]
            free = all(p[key] <= 0 for p in pts)
            label = s["label"] + (" (no cost)" if free else "")
            dashed = str(s["label"]).startswith("ensemble")  # ensembles dashed, single proxies solid
            style = dict(marker="o", linestyle="--" if dashed else "-", markersize=4) if len(pts) > 1 else \
                dict(marker="Dsv^<>ph*"[i % 9], linestyle="none", markersize=7)
            h = ax.errorbar(xs, ys, yerr=[lo, hi], capsize=2, label=label, alpha=0.85,
                            color=colours[i % len(colours)], **style)
            if a == 0:
                handles.append(h)
        ax.set_xscale("log")
        ax.axhline(0.0, color="grey", linewidth=0.6)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("Spearman rho vs ground truth (95 % bootstrap interval)")
        ax.grid(True, which="both", alpha=0.25)
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=7, frameon=False)
    fig.subplots_adjust(bottom=0.12 + 0.022 * rows, top=0.9 if title else 0.95, wspace=0.25)
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, png_path)
