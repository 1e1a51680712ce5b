"""What a distillation run is: :class:`DistillConfig`, the methods' typed options, and their resolution.

``DistillConfig`` is a frozen config whose fields are its options
(:mod:`fyi_apps.options`: help, bounds and choices declared once; checked by the
one validator, with one :class:`~fyi_apps.errors.FyiError` line naming the
field, the rule and the fix; ``fyi distill``'s flags are made from them).
Each method declares its options as a frozen :class:`MethodOptions` dataclass of
:func:`option` fields.  :func:`resolve_config` fills what was left at None from
the method's defaults and :mod:`.presets` (dataset and IPC), refuses unknown or
ill-typed options with one line naming the valid ones, and keeps them typed; it
is done once (a resolved config is returned as it is).  Methods register
themselves here (:func:`register_method`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping

from .. import validate
from ..augment import DEFAULT_STRATEGY, MODES
from ..errors import FyiError
from ..options import check_fields, check_value, config, key_values, opt_of, option
from ..registry import Registry
from ..runtime import DEFAULT_PRECISION, PRECISIONS, default_precision
from .fyi import VIEWS, get_view

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


#: how the synthetic images start (``init``): real images of each class, or Gaussian noise
INITS = ("real", "noise")


def _stripped(value: Any, name: str) -> str:
    return validate.text(value, name).strip()


def _lowered(value: Any, name: str) -> str:
    return _stripped(value, name).lower()


def _fyi_value(value: Any, name: str) -> str | bool | None:
    if (value is not None and not isinstance(value, (bool, str))) or (isinstance(value, str) and not value.strip()):
        raise FyiError(f"{name} must be None, True/False or a view name ({', '.join(VIEWS)}), got {value!r}")
    return value


def _options_value(value: Any, name: str) -> Mapping[str, Any]:
    """A dict of option values (the user's), or the method's typed options (a resolved config's)."""
    if isinstance(value, MethodOptions):
        return value
    if not isinstance(value, Mapping):
        raise FyiError(f"{name} must be a dict of method options, got {value!r}")
    return dict(value)


def _default_precisions() -> str:
    auto = sorted(m for m, p in DEFAULT_PRECISION.items() if p == "auto")
    return f"auto for {', '.join(auto)}, fp32 for the others" if auto else "fp32"


@config
class DistillConfig:
    """Everything that defines a distillation run (stored in the synthetic-set file; frozen).

    Each field is also a ``fyi distill`` flag (:mod:`fyi_apps.options`); the
    fields left at None are filled by :func:`resolve_config` from the method's presets.
    """

    method: str = option(choices=METHODS, convert=_lowered, help="the distillation method: {choices}")
    dataset: str = option(convert=_stripped, help="dataset name (see `fyi data`)")
    ipc: int = option(min=validate.MIN_IPC, help="images per class")
    fyi: str | bool | None = option(None, const="flip", convert=_fyi_value, help=(
        f"turn FYI on (horizontal flip, the paper); or a view for ablation: {', '.join(VIEWS)}"))
    iterations: int | None = option(None, min=1, help="outer iterations (default: the method's preset)")
    lr_img: float | None = option(None, min=0.0, min_open=True, help="learning rate of the synthetic images")
    batch_real: int | None = option(None, min=1, help="real images per class per iteration")
    init: str = option("real", choices=INITS, help="start from real images of each class or from noise")
    arch: str = option("convnet", help=(
        "network used for matching; space:NAME (e.g. space:nb201;cells=1) or space:a|b|c draws a new architecture "
        "from that space for every network (seeded, recorded in the output)"))
    dsa: bool | None = option(None, flag="--no-dsa", help="switch DSA off (DM/DSA/MTT use it by default)")
    dsa_strategy: str = option(DEFAULT_STRATEGY, help="the DSA operations, joined by _")
    dsa_mode: str = option("single", choices=MODES, help=(
        "DSA op choice: single (original), fyi (official FYI code: flip + one op), all"))
    seed: int = option(0, min=0, help="base random seed")
    extend_flip: bool = option(False, help="distil from the flip-extended training set")
    checkpoint_every: int = option(100, min=1, help="write a checkpoint every N iterations (for --resume)")
    eval_every: int = option(0, min=0, fix="use 0 (off) or a positive number",
                             help="evaluate S every N iterations (slow)")
    eval_epochs: int = option(300, min=1, help="epochs of the periodic evaluation")
    score_every: int = option(0, min=0, fix="use 0 (off) or a positive number",
                              help="log the unequalness score of S every N iterations")
    bf16: bool = option(False, help="bf16 autocast for every network pass (unsafe for some methods; prefer --precision)")
    channels_last: bool = option(False, help="channels-last memory format for the networks")
    # method-specific knobs (outer_loop, lr_net, ...): a dict; the method's typed options once resolved
    options: Mapping[str, Any] = option(
        default_factory=dict, flag="--option", append=True, metavar="KEY=VALUE", parse=key_values, cli_default=[],
        convert=_options_value, help="method option, e.g. outer_loop=10, lr_net=0.01, fyi_inner=false "
                                     "(repeatable; an unknown key is refused with the method's options listed)")
    precision: str | None = option(None, choices=PRECISIONS, help=(
        "bf16 for the real-image passes only (DM's real embeddings, the real gradients of DC/DSA/IDC); auto: bf16 "
        "where the device runs it natively (AMX/AVX512-BF16 CPUs, bf16 GPUs), else fp32 (default: the method's, "
        f"{_default_precisions()})"))

    def __post_init__(self) -> None:
        check_fields(self)

    def identity(self) -> dict:
        """The fields that must agree for a checkpoint to be resumed."""
        d = dataclasses.asdict(self)
        for k in ("checkpoint_every", "eval_every", "eval_epochs", "score_every"):
            d.pop(k)
        if d.get("precision") == "fp32":  # checkpoints written before the field existed stay resumable
            d.pop("precision")
        return d


@dataclass(frozen=True)
class MethodOptions(Mapping):
    """The typed options of a method (a frozen dataclass; subclasses add :func:`option` fields).

    :meth:`build` takes the merged defaults, presets and user values, refuses
    unknown keys and ill-typed or out-of-range values with one line naming the
    valid options, and returns the typed instance.  A resolved config keeps it
    as ``cfg.options`` (read as ``opts.name``, or like a dict: ``opts["name"]``).
    """

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def build(cls, method: str, values: Mapping[str, Any], *, also_valid: tuple[str, ...] = ()) -> "MethodOptions":
        import difflib
        import typing

        from ..deprecated import renamed_keys

        values = renamed_keys(values, cls)
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
        out = {f.name: check_value(values[f.name], hints[f.name], f"{method} option {f.name}", opt_of(f))
               for f in dataclasses.fields(cls) if f.name in values}
        opts = cls(**out)
        opts.check(method)
        return opts

    def check(self, method: str) -> None:
        """Rules that involve several options (override in a subclass)."""

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def __getitem__(self, name: str) -> Any:
        if name not in self.names():
            raise KeyError(name)
        return getattr(self, name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())


#: the DistillConfig fields a method's presets fill when they are left at None
PRESET_FIELDS = ("iterations", "lr_img", "batch_real", "dsa")


def resolve_config(cfg: DistillConfig) -> DistillConfig:
    """The run's config: fields left at None and the method's options filled from its presets, checked.

    Done once: a resolved config is returned as it is (``dataclasses.replace``
    makes an unresolved copy).  Option values come from the method's
    ``Options`` defaults, then :func:`.presets.preset` (dataset and IPC), then
    ``cfg.options``; unknown or ill-typed ones are refused; the result's
    ``options`` is the method's typed ``Options`` instance.
    """
    from .presets import preset

    if getattr(cfg, "_resolved", False):
        return cfg
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
    changes["options"] = cls.Options.build(cfg.method, values, also_valid=fields)  # typed, kept typed
    if cfg.precision is None:
        changes["precision"] = default_precision(cfg.method)
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
