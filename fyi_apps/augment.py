"""Differentiable Siamese Augmentation (DSA; Zhao & Bilen, ICML 2021).

Six differentiable operations on normalised image batches ``[N, C, H, W]``:

=========  ==================================================================
``color``  brightness ``x + b``, ``b ~ U(-0.5, 0.5) * brightness``; then
           saturation: deviation from the per-pixel channel mean scaled by
           ``U(0, 1) * saturation``; then contrast: deviation from the
           per-image mean scaled by ``U(0, 1) + contrast``.
``crop``   translation by an integer ``(dy, dx)`` with ``|d| <= int(size *
           crop + 0.5)``; pixels entering from outside are zero.
``cutout`` a ``int(size * cutout + 0.5)`` square around a random centre is
           zeroed (clipped at the borders).
``flip``   horizontal mirror with probability ``flip``.
``scale``  affine resampling with ``sx, sy ~ U(1 / scale, scale)``.
``rotate`` affine resampling by an angle ``~ U(-rotate, rotate)`` degrees
           (positive = anticlockwise on screen).
=========  ==================================================================

A strategy is a ``_``-joined list of op names (``DEFAULT_STRATEGY``).  Modes:

* ``single`` -- the original DSA: every call applies ONE op picked uniformly
  from the strategy;
* ``fyi`` -- the FYI official code: if ``flip`` is in the strategy, a random
  flip is always applied first, followed by one op picked uniformly from the
  others (without ``flip`` it is ``single``);
* ``all`` -- every op of the strategy, in the order written.

*Siamese* parameters (``sample(..., siamese=True)``) hold one value per draw
and broadcast over any batch size, so the same transform can be applied to a
real and a synthetic batch (:meth:`DSA.pair`).  Per-image parameters
(``siamese=False``) hold one value per image; that is what training on a
synthetic set during evaluation uses.

Random numbers come only from the ``generator`` given (the global RNG is used
only when none is).  Sampled tensors live on the requested device; ``apply``
never synchronises with the device and never loops over images.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor

from .errors import FyiError

__all__ = ["DEFAULT_STRATEGY", "OPS", "MODES", "DSAConfig", "AugParams", "DSA", "parse_strategy"]

DEFAULT_STRATEGY = "color_crop_cutout_flip_scale_rotate"
OPS = ("color", "crop", "cutout", "flip", "scale", "rotate")
MODES = ("single", "fyi", "all")
_PARAM_TENSORS = ("brightness", "saturation", "contrast", "shift", "cutout", "flip", "scale", "rotate")
_MODE_ALIASES = {"single": "single", "s": "single", "fyi": "fyi", "all": "all", "m": "all", "multiple": "all"}


@dataclass
class DSAConfig:
    """Strengths of the operations (defaults: DSA / FYI papers)."""

    scale: float = 1.2        # sx, sy ~ U(1/scale, scale)
    rotate: float = 15.0      # degrees, angle ~ U(-rotate, rotate)
    flip: float = 0.5         # probability of a horizontal flip
    crop: float = 0.125       # max translation as a fraction of the size
    cutout: float = 0.5       # side of the zeroed square as a fraction of the size
    brightness: float = 1.0   # b ~ (U(0,1) - 0.5) * brightness
    saturation: float = 2.0   # factor ~ U(0,1) * saturation
    contrast: float = 0.5     # factor ~ U(0,1) + contrast

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if not isinstance(v, (int, float)) or not math.isfinite(float(v)) or float(v) < 0:
                raise FyiError(f"DSAConfig.{f.name}={v!r} is not a finite non-negative number; fix the value")
        if self.scale < 1.0:
            raise FyiError(f"DSAConfig.scale={self.scale} must be >= 1 (ratios are drawn from [1/scale, scale])")
        if self.flip > 1.0:
            raise FyiError(f"DSAConfig.flip={self.flip} is a probability; use a value in [0, 1]")
        if self.crop >= 1.0 or self.cutout > 1.0:
            raise FyiError("DSAConfig.crop must be < 1 and DSAConfig.cutout <= 1 (fractions of the image size)")


@dataclass
class AugParams:
    """The random draws of one augmentation call (picklable).

    ``ops`` are applied in order.  Each op's tensor has a leading dimension of
    1 (``siamese=True``: shared by the whole batch, broadcast to any batch
    size) or N (one value per image).  Only the tensors of the ops in ``ops``
    are needed.  Hand-made parameters are allowed, e.g.
    ``AugParams(("rotate",), rotate=torch.tensor([90.0]))``.

    * ``brightness`` [m] float, added; ``saturation`` [m] and ``contrast`` [m]
      float factors;
    * ``shift`` [m, 2] long ``(dy, dx)``: ``out[h, w] = x[h + dy, w + dx]``;
    * ``cutout`` [m, 2] long centre ``(cy, cx)`` of the zeroed square;
    * ``flip`` [m] bool;
    * ``scale`` [m, 2] float ``(sx, sy)`` (affine-grid ratios; > 1 shrinks);
    * ``rotate`` [m] float, degrees.
    """

    ops: tuple[str, ...] = ()
    siamese: bool = True
    image_size: tuple[int, int] | None = None
    brightness: Tensor | None = None
    saturation: Tensor | None = None
    contrast: Tensor | None = None
    shift: Tensor | None = None
    cutout: Tensor | None = None
    flip: Tensor | None = None
    scale: Tensor | None = None
    rotate: Tensor | None = None

    def __post_init__(self) -> None:
        self.ops = tuple(self.ops)
        unknown = [op for op in self.ops if op not in OPS]
        if unknown:
            raise FyiError(f"unknown DSA operation(s) {unknown} in AugParams; use {'/'.join(OPS)}")
        if self.image_size is not None:
            self.image_size = _pair_size(self.image_size)

    @property
    def n(self) -> int | None:
        """Leading size of the tensors (1 when siamese), None for the identity."""
        for name in _PARAM_TENSORS:
            t = getattr(self, name)
            if t is not None:
                return int(t.shape[0])
        return None

    def to(self, device: torch.device | str) -> "AugParams":
        moved = {}
        for name in _PARAM_TENSORS:
            t = getattr(self, name)
            if t is not None:
                moved[name] = t.to(device)
        return replace(self, **moved)


def parse_strategy(strategy: str | None) -> tuple[str, ...]:
    """``'color_crop'`` -> ``('color', 'crop')``; ``''``/``'none'`` -> ``()``."""
    text = (strategy or "").strip().lower()
    if text in ("", "none"):
        return ()
    ops = tuple(p for p in text.split("_") if p)
    unknown = [p for p in ops if p not in OPS]
    if unknown:
        raise FyiError(f"unknown DSA operation(s) {unknown} in strategy {strategy!r}; "
                       f"join some of {', '.join(OPS)} with '_' (e.g. {DEFAULT_STRATEGY})")
    dup = sorted({p for p in ops if ops.count(p) > 1})
    if dup:
        raise FyiError(f"DSA strategy {strategy!r} lists {dup} more than once; name each operation once")
    return ops


def _pair_size(image_size) -> tuple[int, int]:
    if isinstance(image_size, (str, torch.device)):
        raise FyiError("DSA.sample(n, image_size, device, ...) got a device where the image size belongs; "
                       "pass image_size (int or (H, W)) before the device")
    if isinstance(image_size, int):
        return (image_size, image_size)
    try:
        h, w = (int(s) for s in image_size)
    except (TypeError, ValueError):
        raise FyiError(f"image_size {image_size!r} is not an int or an (H, W) pair; pass e.g. 32 or (32, 32)")
    if h < 1 or w < 1:
        raise FyiError(f"image_size {image_size!r} must be positive")
    return (h, w)


@lru_cache(maxsize=64)
def _arange(n: int, device: torch.device) -> Tensor:
    """Cached ``arange(n)`` (long) per device; read-only."""
    return torch.arange(n, device=device)


class DSA:
    """Differentiable siamese augmentation; see the module docstring."""

    def __init__(self, strategy: str = DEFAULT_STRATEGY, mode: str = "single", config: DSAConfig | None = None):
        self.ops = parse_strategy(strategy)
        self.strategy = "_".join(self.ops) if self.ops else "none"
        key = str(mode).strip().lower()
        if key not in _MODE_ALIASES:
            raise FyiError(f"unknown DSA mode {mode!r}; use one of {', '.join(MODES)}")
        self.mode = _MODE_ALIASES[key]
        if config is not None and not isinstance(config, DSAConfig):
            raise FyiError("DSA(config=...) must be a DSAConfig")
        self.config = config or DSAConfig()

    def __repr__(self) -> str:
        return f"DSA(strategy={self.strategy!r}, mode={self.mode!r}, config={self.config})"

    @property
    def is_identity(self) -> bool:
        return not self.ops

    # ------------------------------------------------------------------ sizes
    def crop_shift(self, image_size) -> tuple[int, int]:
        """Largest translation (rows, cols) in pixels."""
        h, w = _pair_size(image_size)
        return int(h * self.config.crop + 0.5), int(w * self.config.crop + 0.5)

    def cutout_size(self, image_size) -> tuple[int, int]:
        """Side (rows, cols) of the zeroed square in pixels."""
        h, w = _pair_size(image_size)
        return int(h * self.config.cutout + 0.5), int(w * self.config.cutout + 0.5)

    # --------------------------------------------------------------- sampling
    def _choose_ops(self, g: torch.Generator | None) -> tuple[str, ...]:
        if not self.ops:
            return ()
        if self.mode == "all":
            return self.ops

        def pick(pool: tuple[str, ...]) -> str:
            return pool[int(torch.randint(len(pool), (1,), generator=g, device=_gen_device(g)).item())]

        if self.mode == "fyi" and "flip" in self.ops:
            rest = tuple(op for op in self.ops if op != "flip")
            return ("flip", pick(rest)) if rest else ("flip",)
        return (pick(self.ops),)

    def sample(self, n: int, image_size: int | tuple[int, int], device=None,
               generator: torch.Generator | None = None, siamese: bool = True) -> AugParams:
        """Draw the op(s) and their parameters.

        ``siamese=True``: one value per draw (tensors of leading size 1) that
        ``apply`` broadcasts to any batch; ``siamese=False``: ``n`` values.
        All randomness comes from ``generator`` (global RNG if None).
        """
        size = _pair_size(image_size)
        n = int(n)
        if n < 1 and not siamese:
            raise FyiError(f"cannot sample per-image DSA parameters for n={n} images; pass n >= 1")
        device = torch.device(device) if device is not None else torch.device("cpu")
        g = generator
        gdev = _gen_device(g)
        m = 1 if siamese else n
        cfg = self.config
        h, w = size

        def rand(*shape: int) -> Tensor:
            return torch.rand(*shape, generator=g, device=gdev)

        def randint(low: int, high: int) -> Tensor:
            return torch.randint(low, high, (m,), generator=g, device=gdev)

        ops = self._choose_ops(g)
        vals: dict[str, Tensor] = {}
        for op in ops:
            if op == "color":
                vals["brightness"] = (rand(m) - 0.5) * cfg.brightness
                vals["saturation"] = rand(m) * cfg.saturation
                vals["contrast"] = rand(m) + cfg.contrast
            elif op == "crop":
                sh, sw = self.crop_shift(size)
                vals["shift"] = torch.stack([randint(-sh, sh + 1), randint(-sw, sw + 1)], dim=1)
            elif op == "cutout":
                ch, cw = self.cutout_size(size)
                # Centre range as in DSA: even sides may also sit one past the last pixel.
                vals["cutout"] = torch.stack([randint(0, h + 1 - ch % 2), randint(0, w + 1 - cw % 2)], dim=1)
            elif op == "flip":
                vals["flip"] = rand(m) < cfg.flip
            elif op == "scale":
                lo = 1.0 / cfg.scale
                vals["scale"] = rand(m, 2) * (cfg.scale - lo) + lo
            elif op == "rotate":
                vals["rotate"] = (rand(m) - 0.5) * (2.0 * cfg.rotate)
        vals = {k: v.to(device) for k, v in vals.items()}
        return AugParams(ops=ops, siamese=bool(siamese), image_size=size, **vals)

    # --------------------------------------------------------------- applying
    def apply(self, x: Tensor, params: AugParams) -> Tensor:
        """Apply ``params`` to ``x`` ``[N, C, H, W]`` (differentiable w.r.t. ``x``)."""
        if not params.ops:
            return x
        if x.dim() != 4:
            raise FyiError(f"DSA expects images shaped [N, C, H, W], got {tuple(x.shape)}; add a batch dimension")
        if params.image_size is not None and tuple(x.shape[-2:]) != params.image_size:
            raise FyiError(f"DSA parameters were sampled for {params.image_size[0]}x{params.image_size[1]} "
                           f"images but got {x.shape[-2]}x{x.shape[-1]}; sample with the batch's image size")
        m = params.n
        if m is not None and m != 1 and m != x.shape[0]:
            raise FyiError(f"per-image DSA parameters for {m} images applied to a batch of {x.shape[0]}; "
                           "sample with n=len(batch) or use siamese parameters")
        for op in params.ops:
            x = getattr(self, f"_{op}")(x, params)
        return x.contiguous()

    def __call__(self, x: Tensor, generator: torch.Generator | None = None, siamese: bool = False) -> Tensor:
        """Sample (per image unless ``siamese``) and apply in one go."""
        if not self.ops:
            return x
        if x.dim() != 4:
            raise FyiError(f"DSA expects images shaped [N, C, H, W], got {tuple(x.shape)}; add a batch dimension")
        params = self.sample(x.shape[0], tuple(x.shape[-2:]), x.device, generator, siamese=siamese)
        return self.apply(x, params)

    def pair(self, x_real: Tensor, x_syn: Tensor,
             generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """The same (siamese) transform applied to a real and a synthetic batch."""
        if not self.ops:
            return x_real, x_syn
        if x_real.dim() != 4 or x_syn.dim() != 4 or x_real.shape[1:] != x_syn.shape[1:]:
            raise FyiError(f"DSA.pair needs real and synthetic batches of the same image shape, got "
                           f"{tuple(x_real.shape)} and {tuple(x_syn.shape)}")
        params = self.sample(1, tuple(x_real.shape[-2:]), x_real.device, generator, siamese=True)
        return self.apply(x_real, params), self.apply(x_syn, params)

    # -------------------------------------------------------------------- ops
    @staticmethod
    def _need(params: AugParams, name: str) -> Tensor:
        t = getattr(params, name)
        if t is None:
            raise FyiError(f"AugParams lists a DSA op that needs '{name}' but has no '{name}' tensor; "
                           "sample the parameters with DSA.sample")
        return t

    def _color(self, x: Tensor, p: AugParams) -> Tensor:
        b = self._need(p, "brightness").to(x.device, x.dtype).view(-1, 1, 1, 1)
        s = self._need(p, "saturation").to(x.device, x.dtype).view(-1, 1, 1, 1)
        c = self._need(p, "contrast").to(x.device, x.dtype).view(-1, 1, 1, 1)
        x = x + b
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * s + mean
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        return (x - mean) * c + mean

    def _crop(self, x: Tensor, p: AugParams) -> Tensor:
        shift = self._need(p, "shift").to(x.device)
        n, ch, h, w = x.shape
        # Output (i, j) reads x[i + dy, j + dx]; sources outside the image give 0.
        rows = _arange(h, x.device).view(1, -1) + shift[:, 0:1]   # [m, H]
        cols = _arange(w, x.device).view(1, -1) + shift[:, 1:2]   # [m, W]
        valid = ((rows >= 0) & (rows < h)).unsqueeze(2) & ((cols >= 0) & (cols < w)).unsqueeze(1)
        rows = rows.clamp(0, h - 1).view(-1, 1, h, 1).expand(n, ch, h, w)
        cols = cols.clamp(0, w - 1).view(-1, 1, 1, w).expand(n, ch, h, w)
        out = torch.gather(torch.gather(x, 2, rows), 3, cols)
        return out * valid.unsqueeze(1).to(x.dtype)

    def _cutout(self, x: Tensor, p: AugParams) -> Tensor:
        centre = self._need(p, "cutout").to(x.device)
        h, w = x.shape[-2:]
        sh, sw = self.cutout_size((h, w))
        top = (centre[:, 0] - sh // 2).view(-1, 1)
        left = (centre[:, 1] - sw // 2).view(-1, 1)
        r = _arange(h, x.device).view(1, -1)
        c = _arange(w, x.device).view(1, -1)
        in_rows = (r >= top) & (r < top + sh)      # [m, H]
        in_cols = (c >= left) & (c < left + sw)    # [m, W]
        keep = ~(in_rows.unsqueeze(2) & in_cols.unsqueeze(1))
        return x * keep.unsqueeze(1).to(x.dtype)

    def _flip(self, x: Tensor, p: AugParams) -> Tensor:
        flag = self._need(p, "flip").to(x.device).view(-1, 1, 1, 1)
        return torch.where(flag, x.flip(3), x)

    def _scale(self, x: Tensor, p: AugParams) -> Tensor:
        s = self._need(p, "scale").to(x.device, torch.float32)
        theta = torch.zeros(s.shape[0], 2, 3, device=x.device, dtype=torch.float32)
        theta[:, 0, 0] = s[:, 0]
        theta[:, 1, 1] = s[:, 1]
        return _warp(x, theta)

    def _rotate(self, x: Tensor, p: AugParams) -> Tensor:
        a = torch.deg2rad(self._need(p, "rotate").to(x.device, torch.float32))
        cos, sin = torch.cos(a), torch.sin(a)
        zero = torch.zeros_like(a)
        theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
        return _warp(x, theta)


def _warp(x: Tensor, theta: Tensor) -> Tensor:
    """Bilinear resampling with zero padding, ``align_corners=True`` as in DSA.

    ``theta`` is ``[m, 2, 3]`` with m = 1 (shared) or N.
    """
    n, c, h, w = x.shape
    # The grid is built in float64 so that identity parameters hit pixel centres
    # exactly after rounding to the image dtype (float32 grids are off by ~1e-5).
    gdtype = torch.float32 if x.device.type == "mps" else torch.float64
    with torch.autocast(device_type=x.device.type, enabled=False):
        grid = F.affine_grid(theta.to(gdtype), [theta.shape[0], c, h, w], align_corners=True)
    if grid.shape[0] != n:
        grid = grid.expand(n, h, w, 2)
    return F.grid_sample(x, grid.to(x.dtype), mode="bilinear", padding_mode="zeros", align_corners=True)


def _gen_device(g: torch.Generator | None) -> torch.device:
    return g.device if g is not None else torch.device("cpu")
