"""Config fields that are also command-line options: each option is declared once, as a field.

A config is a frozen dataclass (:func:`config`) whose fields are made by
:func:`option`: the default, the help text, the bounds (``min``/``max``), the
choices (the constant that owns them: ``augment.MODES``, ``runtime.PRECISIONS``,
or a function returning a registry's names), and where the command line
differs from the field, the flag (``--no-dsa``, ``--proxy``) and a parser for
its text (``"5,10,20"`` -> ``[5, 10, 20]``).  From that one declaration:

* :func:`check_fields` (the one validator, run by the config's
  ``__post_init__``) refuses an ill-typed, out-of-range or unknown value with
  one :class:`OptionError` line naming the field (``ipc must be ...``);
* :func:`add_arguments` adds a flag per field to an ``argparse`` parser (type,
  bounds and choices checked as the flag is parsed, so a refusal names the
  flag: ``argument --ipc: must be ...``; defaults shown by
  ``ArgumentDefaultsHelpFormatter``);
* :func:`from_namespace` builds the config back from the parsed arguments; a
  refusal left to the validator is re-worded to name the flag.

Adding an option to a command is one field::

    @config
    class MyConfig:
        epochs: int = option(10, min=1, help="training epochs")
        dsa_mode: str = option("single", choices=MODES, help="DSA: {choices}")
"""
from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import types
import typing
from dataclasses import MISSING, dataclass
from typing import Any, Callable, Mapping, Sequence, TypeVar

from . import validate as V
from .errors import FyiError

__all__ = ["Opt", "OptionError", "FrozenConfigError", "option", "config", "opt_of", "flag_of", "check_fields",
           "check_value", "add_arguments", "from_namespace", "default_of", "key_values", "same_option"]

T = TypeVar("T")
#: the metadata key of a field's :class:`Opt`
KEY = "fyi_option"


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


#: "not given" for :class:`Opt`'s ``const`` and ``cli_default`` (where None is a value)
UNSET: Any = _Unset()


@dataclass(frozen=True)
class Opt:
    """What a field says about itself as an option (stored in the field's metadata; see :func:`option`)."""

    #: the help text (``{choices}`` is replaced by the allowed values), or a function returning it when asked
    help: str | Callable[[], str] = ""
    min: float | None = None
    max: float | None = None
    min_open: bool = False
    max_open: bool = False
    #: allowed values: a sequence (the constant that owns them); or, looked up when needed, a registry (an object
    #: with ``names()`` and ``canonical(name)``, which refuses an unknown name in its own words), a dict (its keys)
    #: or a function returning the names
    choices: Any = None
    #: the fix named in a refusal of a number out of range (default: the allowed range)
    fix: str = ""
    #: the command-line flag if not ``--<name-with-dashes>``; ``--no-<x>`` on a bool field switches it off
    flag: str | None = None
    aliases: tuple[str, ...] = ()
    metavar: str | None = None
    #: the flag must be given even though the field has a default (for Python callers)
    required: bool = False
    #: the value of a flag given without one (``--fyi`` alone means ``flip``)
    const: Any = UNSET
    #: the flag may be repeated; the values are collected in a list
    append: bool = False
    #: command-line value -> field value (e.g. ``"5,10"`` -> ``[5, 10]``), applied by :func:`from_namespace`
    parse: Callable[[Any], Any] | None = None
    #: the flag's ``argparse`` type where its text is not the field's type (a count of seeds for a list of them)
    arg_type: Callable[[str], Any] | None = None
    #: the flag's default as the command line shows it (e.g. ``"5,10,20"``), if not the field's default
    cli_default: Any = UNSET
    #: ``convert(value, name)`` checks and normalises a Python value, instead of the check by type and bounds
    convert: Callable[[Any, str], Any] | None = None

    def names(self) -> list[str] | None:
        """The allowed values now (a registry's names are looked up when asked)."""
        c = self.choices
        if c is None:
            return None
        return list(c.names() if hasattr(c, "names") else c() if callable(c) else c)

    @property
    def fixed(self) -> bool:
        """Whether the choices are a fixed sequence (checked as the flag is parsed), not a registry or a dict."""
        c = self.choices
        return c is not None and not (hasattr(c, "names") or callable(c) or isinstance(c, Mapping))


def option(default: Any = MISSING, *, default_factory: Callable[[], Any] | Any = MISSING, help: str = "",
           doc: str | None = None, **rules: Any) -> Any:
    """A dataclass field that is also an option: its default, ``help`` and rules (the keywords of :class:`Opt`).

    ``doc`` is the same as ``help`` (the spelling methods' options used first).
    ``help`` may contain ``{choices}``, replaced by the allowed values.
    """
    meta = {KEY: Opt(help=help if doc is None else doc, **rules)}
    if default_factory is not MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _field(cls: type, name: str) -> dataclasses.Field:
    f = next((f for f in dataclasses.fields(cls) if f.name == name), None)
    if f is None:
        raise TypeError(f"{cls.__name__} has no field {name!r}")
    return f


def same_option(owner: type, name: str) -> Any:
    """A new field declared like ``owner``'s field ``name`` (same default and option): an option shared by configs."""
    f = _field(owner, name)
    if f.default_factory is not MISSING:
        return dataclasses.field(default_factory=f.default_factory, metadata=f.metadata)
    return dataclasses.field(default=f.default, metadata=f.metadata)


class OptionError(FyiError):
    """A value refused by :func:`check_fields`; ``field`` names the config field the message starts with."""

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field

    def for_flag(self, flag: str) -> FyiError:
        """The same refusal in the command line's words: the field's name replaced by ``flag``."""
        text = self.args[0]
        if text.startswith(self.field + " ") or text.startswith(self.field + ":"):
            text = flag + text[len(self.field):]
        return FyiError(text)


class FrozenConfigError(FyiError, dataclasses.FrozenInstanceError):
    """Setting a field of a config: configs are frozen (make a changed copy with ``dataclasses.replace``)."""


def _refuse_setattr(self: Any, name: str, value: Any) -> None:
    raise FrozenConfigError(f"cannot set {name}: a {type(self).__name__} is frozen; make a changed copy with "
                            f"dataclasses.replace(cfg, {name}=...)")


def _refuse_delattr(self: Any, name: str) -> None:
    raise FrozenConfigError(f"cannot delete {name}: a {type(self).__name__} is frozen")


@typing.dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field, option))
def config(cls: type[T]) -> type[T]:
    """Class decorator: a frozen dataclass whose fields are options; setting a field raises :class:`FyiError`.

    The class's ``__post_init__`` should call :func:`check_fields` (the one validator).
    """
    cls = dataclasses.dataclass(frozen=True)(cls)
    cls.__setattr__ = _refuse_setattr  # type: ignore[assignment]
    cls.__delattr__ = _refuse_delattr  # type: ignore[assignment]
    return cls


# --------------------------------------------------------------------------- the validator
def opt_of(f: dataclasses.Field) -> Opt:
    """The option of a field (a plain field is an option without help or rules)."""
    return f.metadata.get(KEY) or Opt()


def flag_of(f: dataclasses.Field) -> str:
    """The command-line flag of a field: ``Opt.flag`` or ``--<name-with-dashes>``."""
    return opt_of(f).flag or "--" + f.name.replace("_", "-")


def _kinds(hint: Any) -> tuple[Any, ...]:
    """The types a union annotation allows (``int | None`` -> ``(int, NoneType)``)."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return typing.get_args(hint)
    return (hint,)


def check_value(value: Any, hint: Any, name: str, o: Opt) -> Any:
    """``value`` checked against a field's annotation and rules; returns it normalised (raises :class:`OptionError`)."""
    try:
        if o.convert is not None:
            value = o.convert(value, name)
        else:
            value = _typed(value, hint, name, o)
        if o.choices is not None and not o.fixed and value is not None:
            canonical = getattr(o.choices, "canonical", None)
            value = canonical(value) if canonical is not None else _registered(value, name, o.names())
    except OptionError:
        raise
    except FyiError as e:
        raise OptionError(e.args[0], name) from None
    return value


def _typed(value: Any, hint: Any, name: str, o: Opt) -> Any:
    kinds = _kinds(hint)
    if Any in kinds or object in kinds:
        return value
    if value is None and type(None) in kinds:
        return None
    containers = [k for k in kinds if (typing.get_origin(k) or k) in (list, tuple, dict, Mapping, Sequence)]
    for k in containers:
        origin, inner = typing.get_origin(k) or k, typing.get_args(k)[:1]
        if origin in (dict, Mapping) and isinstance(value, Mapping):
            return dict(value)
        if origin not in (dict, Mapping) and isinstance(value, (list, tuple)):
            return [_typed(v, inner[0], name, o) if inner else v for v in value]
    scalars = tuple(k for k in kinds if k not in containers)
    if not scalars or scalars == (type(None),):
        what = " or ".join("a dict" if (typing.get_origin(k) or k) in (dict, Mapping) else "a list" for k in containers)
        raise FyiError(f"{name} must be {what}, got {value!r} (a {type(value).__name__})")
    scalar = typing.Union[scalars] if len(scalars) > 1 else scalars[0]
    if o.fix and value is not None and set(scalars) <= {int, float, type(None)}:
        if int in scalars:
            return V.integer(value, name, min=o.min, max=o.max, fix=o.fix)
        return V.number(value, name, min=o.min, max=o.max, min_open=o.min_open, max_open=o.max_open, fix=o.fix)
    return V.typed(value, scalar, name, min=o.min, max=o.max, min_open=o.min_open, max_open=o.max_open,
                   choices=o.choices if o.fixed else None)


def _registered(value: Any, name: str, names: Sequence[str]) -> Any:
    """A value that must be one of a registry's names, refused as ``unknown <name> ...; use one of ...``."""
    if str(value) in names:
        return value
    close = difflib.get_close_matches(str(value), list(names), n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise FyiError(f"unknown {name} {value!r}{hint}; use one of {', '.join(names)}")


def check_fields(obj: Any, *, apply: bool = True) -> None:
    """The one validator: every field of the dataclass ``obj`` checked (type, bounds, choices) and normalised.

    Refuses with one :class:`OptionError` line naming the field.  Works on
    frozen dataclasses (normalised values are set with ``object.__setattr__``);
    ``apply=False`` only checks (the values are left as they are).
    """
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value = check_value(getattr(obj, f.name), hints[f.name], f.name, opt_of(f))
        if apply:
            object.__setattr__(obj, f.name, value)


# --------------------------------------------------------------------------- the command line
def _scalar_kind(hint: Any) -> Any:
    kinds = [k for k in _kinds(hint) if k is not type(None)]
    for k in (bool, int, float):
        if kinds == [k]:
            return k
    return str


def _arg_type(kind: Any, o: Opt) -> Callable[[str], Any] | None:
    if kind is int:
        return V.arg_type(lambda v: V.integer(v, min=o.min, max=o.max, fix=o.fix, strings=True), "integer")
    if kind is float:
        return V.arg_type(lambda v: V.number(v, min=o.min, max=o.max, min_open=o.min_open, max_open=o.max_open,
                                             fix=o.fix, strings=True), "number")
    return None


def _required(f: dataclasses.Field) -> bool:
    return f.default is MISSING and f.default_factory is MISSING


def _default(f: dataclasses.Field) -> Any:
    if f.default_factory is not MISSING:
        return f.default_factory()
    return None if f.default is MISSING else f.default


def _negated(f: dataclasses.Field, kind: Any) -> bool:
    return kind is bool and flag_of(f).startswith("--no-")


def _dest(f: dataclasses.Field) -> str:
    return flag_of(f).lstrip("-").replace("-", "_")


def _selected(cls: type, exclude: Sequence[str], only: Sequence[str] | None) -> list[dataclasses.Field]:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted((set(exclude) | set(only or ())) - names)
    if unknown:
        raise TypeError(f"{cls.__name__} has no field(s) {', '.join(unknown)}")
    return [f for f in dataclasses.fields(cls) if f.name not in exclude and (only is None or f.name in only)]


def add_arguments(parser: argparse.ArgumentParser | Any, cls: type, *, exclude: Sequence[str] = (),
                  only: Sequence[str] | None = None) -> None:
    """One flag per field of the config class ``cls`` (all but ``exclude``; or just ``only``), in field order.

    The flag checks the field's type, bounds and choices as it is parsed; a
    field without a default is a required flag; a bool is a switch
    (``--x`` on, ``--no-x`` off); its default is the field's (or
    ``Opt.cli_default``), shown by ``ArgumentDefaultsHelpFormatter``.
    """
    hints = typing.get_type_hints(cls)
    for f in _selected(cls, exclude, only):
        o = opt_of(f)
        kind = _scalar_kind(hints[f.name])
        text = o.help() if callable(o.help) else o.help
        if "{choices}" in text:  # a registry's names are looked up only when the help shows them
            text = text.replace("{choices}", ", ".join(o.names() or ()))
        text = text.replace("%", "%%")
        kw: dict[str, Any] = {"help": text}
        if o.metavar:
            kw["metavar"] = o.metavar
        default = o.cli_default if o.cli_default is not UNSET else _default(f)
        if o.append:
            kw.update(action="append", default=default)
        elif kind is bool and o.const is UNSET:
            if _default(f) and not _negated(f, kind):
                raise TypeError(f"{cls.__name__}.{f.name} is on by default: its flag must be --no-...")
            kw.update(action="store_true")
        else:
            if o.const is not UNSET:
                kw.update(nargs="?", const=o.const)
            if o.fixed:
                kw["choices"] = o.names()
            elif o.arg_type is not None:
                kw["type"] = o.arg_type
            elif o.parse is None and (t := _arg_type(kind, o)) is not None:
                kw["type"] = t
            if _required(f) or o.required:
                kw["required"] = True
            else:
                kw["default"] = default
        parser.add_argument(flag_of(f), *o.aliases, **kw)


def from_namespace(cls: type[T], ns: argparse.Namespace | Any, *, defaults: Mapping[str, Any] | None = None,
                   **overrides: Any) -> T:
    """The config ``cls`` built from parsed arguments (``overrides`` win); refusals name the flag.

    Every field whose flag is in ``ns`` takes its value (``Opt.parse`` applied;
    a ``--no-x`` switch given sets the field to False).  A field whose flag was
    not given (None, or absent from ``ns``) takes ``defaults[name]`` (e.g. a
    preset) if there is one, else keeps its default.
    """
    defaults = defaults or {}
    kw: dict[str, Any] = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in overrides:
            kw[f.name] = overrides[f.name]
            continue
        o, dest = opt_of(f), _dest(f)
        value = getattr(ns, dest, None)
        if _negated(f, _scalar_kind(hints[f.name])):
            value = False if value else None
        elif value is not None and o.parse is not None:
            value = o.parse(value)
        if value is not None:
            kw[f.name] = value
        elif f.name in defaults:
            kw[f.name] = defaults[f.name]
        elif _required(f) and hasattr(ns, dest):
            kw[f.name] = None  # refused by the config, naming the flag
    try:
        return cls(**kw)
    except OptionError as e:
        known = e.field in {f.name for f in dataclasses.fields(cls)}
        raise (e.for_flag(flag_of(_field(cls, e.field))) if known else e) from None


def default_of(cls: type, name: str) -> Any:
    """The default of ``cls``'s field ``name`` (a fresh copy for a ``default_factory``)."""
    return _default(_field(cls, name))


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def key_values(items: Sequence[str] | None, flag: str = "--option") -> dict[str, Any]:
    """``["k=v", ...]`` (a repeated ``flag``) -> ``{k: v}``, values read as JSON where they parse (1, 0.5, true)."""
    out: dict[str, Any] = {}
    for item in items or ():
        if "=" not in item:
            raise FyiError(f"{flag} takes KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = _json_or_text(v.strip())
    return out
