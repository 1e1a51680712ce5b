"""What a distillation run is: :class:`DistillConfig`, the methods' typed options, and their resolution.

``DistillConfig`` checks its own fields (one :class:`~fyi_apps.errors.FyiError`
line naming the field, the rule and the fix); each method declares its options
as a frozen :class:`MethodOptions` dataclass of :func:`option` fields.
:func:`resolve_config` fills what was left at None from the method's defaults
and :mod:`.presets` (dataset and IPC), refuses unknown or ill-typed options
with one line naming the valid ones, and freezes the result; it is done once
(a resolved config is returned as it is).  Methods register themselves here
(:func:`register_method`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from .. import validate
from ..augment import DEFAULT_STRATEGY
from ..errors import FyiError
from ..registry import Registry
from .fyi import get_view

if TYPE_CHECKING:
    from .base import Method

#: method name -> its :class:`~.base.Method` subclass (``register_method``; ``list_methods()`` names them)
METHODS: Registry[type["Method"]] = Registry("method")


def register_method(cls: type["Method"] | None = None, *, replace: bool = False):
    """Class decorator: make a method available to ``distill()`` and ``fyi distill`` by its ``name``.

    ``@register_method`` on a :class:`~.base.Method` subclass with a ``name``;
    a name is registered once (``@register_method(replace=True)`` swaps a method).
    """
    if cls is None:
        return lambda c: METHODS.register(c.name, replace=replace)(c)
    return METHODS.register(cls.name)(cls)


@dataclass
class DistillConfig:
    """Everything that defines a distillation run (stored in the synthetic-set file)."""

    method: str
    dataset: str
    ipc: int
    fyi: str | None = None  # None: off; "flip" (paper), "vflip", "rot15", "scale"
    iterations: int | None = None  # None: the method's preset
    lr_img: float | None = None
    batch_real: int | None = None
    init: str = "real"  # real | noise
    arch: str = "convnet"
    dsa: bool | None = None  # None: the method's default
    dsa_strategy: str = DEFAULT_STRATEGY
    dsa_mode: str = "single"
    seed: int = 0
    extend_flip: bool = False
    checkpoint_every: int = 100
    eval_every: int = 0
    eval_epochs: int = 300
    score_every: int = 0
    bf16: bool = False  # every network pass in bf16 autocast (the old switch; see precision for the safe one)
    channels_last: bool = False
    options: dict = field(default_factory=dict)  # method-specific knobs (outer_loop, lr_net, ...)
    # auto: bf16 for the passes of runtime.BF16_PASSES where the device runs bf16 natively, else fp32
    precision: str = "fp32"

    def __post_init__(self) -> None:
        self.check()

    def __setattr__(self, name: str, value: Any) -> None:
        if getattr(self, "_resolved", False):
            raise FyiError(f"cannot set {name}: a resolved DistillConfig is frozen; "
                           f"make a changed copy with dataclasses.replace(cfg, {name}=...)")
        object.__setattr__(self, name, value)

    def check(self) -> None:
        """Refuse ill-typed or out-of-range fields (one FyiError line naming the field, the rule and the fix)."""
        v = validate
        self.method = v.text(self.method, "method").strip().lower()
        self.dataset = v.text(self.dataset, "dataset").strip()
        self.ipc = v.ipc(self.ipc, "ipc")
        if (self.fyi is not None and not isinstance(self.fyi, (bool, str))) or (isinstance(self.fyi, str)
                                                                               and not self.fyi.strip()):
            raise FyiError(f"fyi must be None, True/False or a view name (flip, vflip, rot15, scale), got {self.fyi!r}")
        for name, lo in (("iterations", 1), ("batch_real", 1)):
            if getattr(self, name) is not None:
                setattr(self, name, v.integer(getattr(self, name), name, min=lo))
        if self.lr_img is not None:
            self.lr_img = v.number(self.lr_img, "lr_img", min=0.0, min_open=True)
        self.init = v.choice(self.init, "init (--init)", ("real", "noise"))
        self.arch = v.text(self.arch, "arch")
        if self.dsa is not None:
            self.dsa = v.boolean(self.dsa, "dsa")
        self.dsa_strategy = v.text(self.dsa_strategy, "dsa_strategy")
        self.dsa_mode = v.choice(self.dsa_mode, "dsa_mode", ("single", "fyi", "all"))
        self.seed = v.integer(self.seed, "seed", min=0)
        for name in ("extend_flip", "bf16", "channels_last"):
            setattr(self, name, v.boolean(getattr(self, name), name))
        from ..runtime import PRECISIONS

        self.precision = v.choice(self.precision, "precision", PRECISIONS)
        self.checkpoint_every = v.integer(self.checkpoint_every, "checkpoint_every", min=1)
        self.eval_epochs = v.integer(self.eval_epochs, "eval_epochs", min=1)
        for name in ("eval_every", "score_every"):
            setattr(self, name, v.integer(getattr(self, name), name, min=0, fix="use 0 (off) or a positive number"))
        if not isinstance(self.options, Mapping):
            raise FyiError(f"options must be a dict of method options, got {self.options!r}")
        self.options = dict(self.options)

    def identity(self) -> dict:
        """The fields that must agree for a checkpoint to be resumed."""
        d = dataclasses.asdict(self)
        for k in ("checkpoint_every", "eval_every", "eval_epochs", "score_every"):
            d.pop(k)
        if d.get("precision") == "fp32":  # checkpoints written before the field existed stay resumable
            d.pop("precision")
        return d


def option(default: Any, *, min: float | None = None, max: float | None = None, min_open: bool = False,
           max_open: bool = False, choices: tuple[str, ...] | None = None, doc: str = "") -> Any:
    """A field of a method's options dataclass with its rule (checked by :meth:`MethodOptions.build`)."""
    meta = {"min": min, "max": max, "min_open": min_open, "max_open": max_open, "choices": choices, "doc": doc}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class MethodOptions:
    """The typed options of a method (a frozen dataclass; subclasses add :func:`option` fields).

    :meth:`build` takes the merged defaults, presets and user values, refuses
    unknown keys and ill-typed or out-of-range values with one line naming the
    valid options, and returns the typed instance.
    """

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def build(cls, method: str, values: Mapping[str, Any], *, also_valid: tuple[str, ...] = ()) -> "MethodOptions":
        import difflib
        import typing

        names = cls.names()
        listed = ", ".join(names) if names else "none"
        for key in values:
            if key not in names:
                close = difflib.get_close_matches(str(key), names + list(also_valid), n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                owners = [m for m, c in sorted(METHODS.items()) if key in c.Options.names()]
                if owners and not close:
                    hint = f" (it is an option of {', '.join(owners)})"
                raise FyiError(f"{method} has no option {key!r}{hint}; its options: {listed}")
        hints = typing.get_type_hints(cls)
        out = {}
        for f in dataclasses.fields(cls):
            if f.name not in values:
                continue
            m = f.metadata
            out[f.name] = validate.typed(
                values[f.name], hints[f.name], f"{method} option {f.name}", min=m.get("min"), max=m.get("max"),
                min_open=m.get("min_open", False), max_open=m.get("max_open", False), choices=m.get("choices"))
        opts = cls(**out)
        opts.check(method)
        return opts

    def check(self, method: str) -> None:
        """Rules that involve several options (override in a subclass)."""

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


#: the DistillConfig fields a method's presets fill when they are left at None
PRESET_FIELDS = ("iterations", "lr_img", "batch_real", "dsa")


def resolve_config(cfg: DistillConfig) -> DistillConfig:
    """The run's config: fields left at None and the method's options filled from its presets, checked, frozen.

    Done once: a resolved config is returned as it is.  Option values come from
    the method's ``Options`` defaults, then :func:`.presets.preset` (dataset and
    IPC), then ``cfg.options``; unknown or ill-typed ones are refused.
    """
    from .presets import preset

    if getattr(cfg, "_resolved", False):
        return cfg
    cfg.check()
    if cfg.method not in METHODS:
        raise FyiError(f"unknown method {cfg.method!r}; use one of {', '.join(sorted(METHODS))}")
    cls = METHODS[cfg.method]
    p = {**cls.defaults, **preset(cfg.method, cfg.dataset, cfg.ipc)}
    changes: dict[str, Any] = {}
    for f in PRESET_FIELDS:
        if getattr(cfg, f) is None:
            if f not in p:
                raise FyiError(f"method {cfg.method} has no default for {f}; pass it explicitly")
            changes[f] = p[f]
    values = {**{k: v for k, v in p.items() if k not in PRESET_FIELDS}, **cfg.options}
    fields = tuple(f.name for f in dataclasses.fields(DistillConfig))
    changes["options"] = cls.Options.build(cfg.method, values, also_valid=fields).as_dict()
    if cfg.fyi is not None:
        view = get_view(cfg.fyi)
        changes["fyi"] = view.name if view else None
    out = dataclasses.replace(cfg, **changes)
    object.__setattr__(out, "_resolved", True)
    return out


def option_names(method: str) -> list[str]:
    """The options ``method`` accepts (e.g. to keep only those from a dict shared by several methods)."""
    if method not in METHODS:
        raise FyiError(f"unknown method {method!r}; use one of {', '.join(sorted(METHODS))}")
    return METHODS[method].Options.names()


def default_output(cfg: DistillConfig, out_dir: str | Path = "fyi-runs") -> Path:
    tag = cfg.method + (f"-fyi{'' if cfg.fyi == 'flip' else '-' + cfg.fyi}" if cfg.fyi else "")
    flip = "-flipext" if cfg.extend_flip else ""
    name = validate.safe_name(cfg.dataset)
    return Path(out_dir) / "distill" / f"{tag}_{name}{flip}_ipc{cfg.ipc}_seed{cfg.seed}.safetensors"
