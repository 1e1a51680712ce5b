"""Checks of user input where it enters: command-line arguments, config dataclasses, method options.

One set of rules serves the ``fyi`` command line (as ``argparse`` types) and the
Python API (``DistillConfig``, ``EvalConfig``, method option dataclasses): a
count, rate, size or path that breaks its rule is refused with one line that
names the value, the rule and the fix, as :class:`~fyi_apps.errors.FyiError`
(the CLI prints it as ``fyi: error: ...`` and exits with code 2).

Scalar checks: :func:`integer`, :func:`ipc` (images per class), :func:`number`, :func:`probability`,
:func:`boolean`, :func:`choice`, :func:`typed` (any annotation such as
``int | None``); lists: :func:`int_list`; paths: :func:`existing_file`,
:func:`existing_dir`, :func:`output_file`, :func:`output_dir`; file names:
:func:`safe_name` (model names: :func:`fyi_apps.networks.check_model_names`).
``argparse`` types: :data:`positive_int`, :data:`non_negative_int`, :data:`positive_float`,
:data:`non_negative_float`, :data:`probability_arg`, :func:`int_list_arg`, :func:`file_arg`, :func:`dir_arg`.
"""
from __future__ import annotations

import argparse
import difflib
import math
import numbers
import os
import re
import tempfile
import types
import typing
from pathlib import Path
from typing import Any, Callable, Sequence

from .errors import FyiError


def _label(name: str) -> str:
    return f"{name} " if name else ""


def _shown(value: Any) -> str:
    return repr(value)


def _kind(value: Any) -> str:
    return type(value).__name__


# --------------------------------------------------------------------------- scalars
def integer(value: Any, name: str = "", *, min: int | None = None, max: int | None = None, fix: str = "",
            strings: bool = False) -> int:
    """``value`` as an int (ints, integral floats; digit strings with ``strings``) within [min, max].

    Python callers get no silent conversion of strings (``ipc="2"`` is refused);
    command-line parsing passes ``strings=True``.
    """
    rule = _int_rule(min, max)
    v: int | None = None
    if isinstance(value, bool):
        v = None
    elif isinstance(value, numbers.Integral):
        v = int(value)
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        v = int(value)
    elif strings and isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        v = int(value)
    if v is None:
        what = f" (a {_kind(value)})" if not isinstance(value, str) else ""
        raise FyiError(f"{_label(name)}must be {rule}, got {_shown(value)}{what}; {fix or 'use ' + _example(min, max)}")
    if (min is not None and v < min) or (max is not None and v > max):
        raise FyiError(f"{_label(name)}must be {rule}, got {v}; {fix or 'use ' + _example(min, max)}")
    return v


def _int_rule(min, max) -> str:
    if min is not None and max is not None:
        return f"an integer in [{min}, {max}]"
    if min == 1:
        return "a positive integer"
    if min == 0:
        return "an integer >= 0"
    if min is not None:
        return f"an integer >= {min}"
    if max is not None:
        return f"an integer <= {max}"
    return "an integer"


def _example(min, max) -> str:
    if min is not None and max is not None:
        return f"a whole number from {min} to {max}"
    if min is not None:
        return f"a whole number of {min} or more"
    if max is not None:
        return f"a whole number of at most {max}"
    return "a whole number"


#: Images per class: every class keeps at least this many images.
MIN_IPC = 1


def ipc(value: Any, name: str = "ipc", *, strings: bool = False, parsed: bool = False) -> int:
    """Images per class, the one rule for every ``ipc``: an integer >= :data:`MIN_IPC`.

    Config fields and flags get :func:`integer`'s checks and message (naming
    ``name``).  ``parsed=True`` is for code handed a count that was parsed
    already (a dataset, a replay memory): the value is compared as it is and a
    too small one reads ``--ipc must be at least 1, got N``.
    """
    if parsed:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):  # a count handed over unchecked
            raise FyiError(f"{name} must be a positive integer, got {_shown(value)} (a {_kind(value)}); use a whole "
                           f"number of {MIN_IPC} or more")
        if value < MIN_IPC:
            raise FyiError(f"--ipc must be at least {MIN_IPC}, got {value}")
        return value
    return integer(value, name, min=MIN_IPC, strings=strings)


def number(value: Any, name: str = "", *, min: float | None = None, max: float | None = None,
           min_open: bool = False, max_open: bool = False, fix: str = "", strings: bool = False) -> float:
    """``value`` as a finite float within the bounds (``*_open``: the bound itself is excluded).

    Strings are parsed only with ``strings=True`` (the command line).
    """
    lo = "" if min is None else ("> " if min_open else ">= ") + f"{min:g}"
    hi = "" if max is None else ("< " if max_open else "<= ") + f"{max:g}"
    bounds = " and ".join(b for b in (lo, hi) if b)
    rule = "a finite number" + (" " + bounds if bounds else "")
    fix = fix or ("use a value " + bounds if bounds else "use a number such as 0.1")
    v: float | None = None
    if isinstance(value, bool):
        v = None
    elif isinstance(value, numbers.Real):
        v = float(value)
    elif strings and isinstance(value, str):
        try:
            v = float(value)
        except ValueError:
            v = None
    if v is None:
        what = f" (a {_kind(value)})" if not isinstance(value, str) else ""
        raise FyiError(f"{_label(name)}must be {rule}, got {_shown(value)}{what}; {fix}")
    bad = (not math.isfinite(v) or (min is not None and (v < min or (min_open and v == min)))
           or (max is not None and (v > max or (max_open and v == max))))
    if bad:
        raise FyiError(f"{_label(name)}must be {rule}, got {value!r}; {fix}")
    return v


def probability(value: Any, name: str = "", strings: bool = False) -> float:
    return number(value, name, min=0.0, max=1.0, fix="use a probability from 0 to 1", strings=strings)


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def boolean(value: Any, name: str = "") -> bool:
    """``True``/``False``, 0/1, or the strings true/false, yes/no, on/off, 1/0."""
    if isinstance(value, bool):
        return value
    if isinstance(value, numbers.Integral) and int(value) in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise FyiError(f"{_label(name)}must be true or false, got {_shown(value)}; use true or false")


def choice(value: Any, name: str, choices: Sequence[str]) -> str:
    """``value`` (case-insensitive) if it is one of ``choices``."""
    if isinstance(value, str) and value.strip().lower() in [c.lower() for c in choices]:
        return value.strip().lower()
    close = difflib.get_close_matches(str(value).lower(), list(choices), n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise FyiError(f"{_label(name)}must be one of {', '.join(choices)}, got {_shown(value)}{hint}")


def text(value: Any, name: str = "") -> str:
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if not isinstance(value, str):
        raise FyiError(f"{_label(name)}must be a string, got {_shown(value)} (a {_kind(value)})")
    return value


def typed(value: Any, hint: Any, name: str, *, min: float | None = None, max: float | None = None,
          min_open: bool = False, max_open: bool = False, choices: Sequence[str] | None = None) -> Any:
    """Check ``value`` against a type annotation (``int``, ``float``, ``bool``, ``str``, unions with None)."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union \
        else (hint,)
    if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null") and type(None) in options):
        if type(None) in options:
            return None
        raise FyiError(f"{_label(name)}must not be None; pass a value")
    kinds = [k for k in options if k is not type(None)]
    errors = []
    for k in kinds:
        try:
            if k is bool:
                return boolean(value, name)
            if k is int:
                return integer(value, name, min=None if min is None else int(math.ceil(min)),
                               max=None if max is None else int(max))
            if k is float:
                return number(value, name, min=min, max=max, min_open=min_open, max_open=max_open)
            if k is str:
                v = text(value, name)
                return choice(v, name, choices) if choices else v
        except FyiError as e:
            errors.append(e.args[0])
            continue
        raise TypeError(f"unsupported option type {k!r} for {name}")  # a programming error, not user input
    if len(errors) == 1:
        raise FyiError(errors[0])
    names = " or ".join("a string" if k is str else f"a{'n' if k is int else ''} {k.__name__}" for k in kinds)
    raise FyiError(f"{_label(name)}must be {names}, got {_shown(value)}; {errors[0].split('; ')[-1]}")


def int_list(value: Any, name: str = "", *, min: int | None = 1) -> list[int]:
    """``"1,2,5"`` (or a sequence) -> ``[1, 2, 5]``; every entry checked by :func:`integer`; at least one."""
    parts = [p.strip() for p in value.split(",")] if isinstance(value, str) else list(value)
    parts = [p for p in parts if p != ""]
    if not parts:
        raise FyiError(f"{_label(name)}needs at least one integer, got {value!r}; write e.g. 1,2,5")
    out = []
    for p in parts:
        try:
            out.append(integer(p, "", min=min, strings=isinstance(value, str)))
        except FyiError as e:
            raise FyiError(f"{_label(name)}takes comma-separated integers; entry {p!r} in {value!r}: {e.args[0]}") from None
    return out


# --------------------------------------------------------------------------- paths
def name_list(value: Any, name: str = "", *, split: bool = True) -> list[str]:
    """One name or several: ``"a"``, ``"a,b"`` (``split``) or a sequence of strings -> ``["a", "b"]``; at least one.

    A string is never iterated character by character.
    """
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, str):
        parts = [p.strip() for p in value.split(",")] if split else [value.strip()]
    elif isinstance(value, (list, tuple)):
        parts = []
        for v in value:
            if isinstance(v, os.PathLike):
                v = os.fspath(v)
            if not isinstance(v, str):
                raise FyiError(f"{_label(name)}must be a name or a list of names, got an entry {_shown(v)} "
                               f"(a {_kind(v)})")
            parts.append(v.strip())
    else:
        raise FyiError(f"{_label(name)}must be a name or a list of names, got {_shown(value)} (a {_kind(value)})")
    parts = [p for p in parts if p]
    if not parts:
        raise FyiError(f"{_label(name)}needs at least one name, got {value!r}")
    return parts


def seed_list(value: Any, name: str = "seeds") -> list[int]:
    """A list (or tuple, or range) of integer seeds, at least one: ``[0, 1, 2]``; a bare int is refused."""
    if isinstance(value, (list, tuple, range)):
        out = [integer(v, name, min=0) for v in value]
        twice = sorted({s for s in out if out.count(s) > 1})
        if twice:  # the same run again: a spread of 0 that means nothing
            raise FyiError(f"{_label(name)}has {', '.join(map(str, twice))} more than once, and a seed gives the same "
                           f"run each time; give distinct seeds, e.g. {list(range(len(out)))}")
        if out:
            return out
        raise FyiError(f"{_label(name)}needs at least one seed, got {value!r}; e.g. [0, 1, 2]")
    raise FyiError(f"{_label(name)}must be a list of integer seeds (e.g. [0, 1, 2]), got {_shown(value)} "
                   f"(a {_kind(value)})")


def path_value(value: Any, name: str = "path") -> Path:
    """A str or os.PathLike as a Path (any other type refused with one line naming ``name``)."""
    if isinstance(value, (str, os.PathLike)) and str(value).strip():
        return Path(value)
    raise FyiError(f"{_label(name)}must be a file path, got {_shown(value)} (a {_kind(value)})")


def existing_file(path: Any, what: str = "file") -> Path:
    """An existing file (not a folder)."""
    p = Path(text(path, what))
    if not p.exists():
        raise FyiError(f"{what} {p} does not exist; check the path")
    if p.is_dir():
        raise FyiError(f"{what} {p} is a folder, not a file; give the path of the file")
    return p


def existing_dir(path: Any, what: str = "folder") -> Path:
    """An existing folder (not a file)."""
    p = Path(text(path, what))
    if not p.exists():
        raise FyiError(f"{what} {p} does not exist; check the path")
    if not p.is_dir():
        raise FyiError(f"{what} {p} is a file, not a folder; give the folder")
    return p


def _nearest_existing(p: Path) -> Path:
    p = Path(os.path.abspath(p))
    while not p.exists() and p.parent != p:
        p = p.parent
    return p


def _probe_writable(folder: Path, target: Path, what: str) -> None:
    """Create and remove an empty file in ``folder`` (catches read-only mounts and permissions, even for root)."""
    if not folder.is_dir():
        raise FyiError(f"cannot write {what} {target}: {folder} is a file, not a folder; choose another path")
    try:
        fd, probe = tempfile.mkstemp(prefix=".fyi-probe.", dir=folder)
    except OSError as e:
        from .runtime import write_failure

        raise write_failure(target, e, what) from None
    os.close(fd)
    os.unlink(probe)


def output_file(path: Any, what: str = "output file") -> Path:
    """A file that can be written: not a folder, its folder exists or can be made, and is writable.

    Nothing is created; call it before any compute starts.
    """
    p = Path(text(path, what))
    if str(p).endswith(os.sep) or p.is_dir():
        raise FyiError(f"{what} {p} is a folder; give a file name inside it, e.g. {p / 'result'}")
    _probe_writable(_nearest_existing(p.parent), p, what)
    return p


def output_dir(path: Any, what: str = "output folder") -> Path:
    """A folder that exists or can be made, and is writable (nothing is created)."""
    p = Path(text(path, what))
    if p.exists() and not p.is_dir():
        raise FyiError(f"{what} {p} is a file, not a folder; choose a folder name")
    _probe_writable(_nearest_existing(p), p, what)
    return p


_UNSAFE = re.compile(r"[^A-Za-z0-9._+=-]+")


def safe_name(name: Any) -> str:
    """A string usable as one file-name part: ``imagefolder:/a/b`` -> ``imagefolder-a-b``."""
    out = _UNSAFE.sub("-", str(name)).strip("-.")
    return out or "unnamed"


# --------------------------------------------------------------------------- argparse types
def arg_type(check: Callable[[str], Any], metavar: str) -> Callable[[str], Any]:
    """Wrap a check into an ``argparse`` type: its FyiError becomes argparse's one-line message."""

    def convert(value: str):
        try:
            return check(value)
        except FyiError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    convert.__name__ = metavar
    return convert


positive_int = arg_type(lambda v: integer(v, min=1, strings=True), "positive integer")
non_negative_int = arg_type(lambda v: integer(v, min=0, strings=True), "integer >= 0")
any_int = arg_type(lambda v: integer(v, strings=True), "integer")
positive_float = arg_type(lambda v: number(v, min=0.0, min_open=True, strings=True), "positive number")
non_negative_float = arg_type(lambda v: number(v, min=0.0, strings=True), "number >= 0")
probability_arg = arg_type(lambda v: probability(v, strings=True), "probability")


def int_list_arg(min: int | None = 1) -> Callable[[str], list[int]]:
    return arg_type(lambda v: int_list(v, min=min), "integer list")


def file_arg(what: str = "file") -> Callable[[str], Path]:
    return arg_type(lambda v: existing_file(v, what), what)


def dir_arg(what: str = "folder") -> Callable[[str], Path]:
    return arg_type(lambda v: existing_dir(v, what), what)


__all__ = [
    "name_list", "seed_list", "path_value",
    "integer", "ipc", "MIN_IPC", "number", "probability", "boolean", "choice", "text", "typed", "int_list",
    "existing_file", "existing_dir", "output_file", "output_dir", "safe_name",
    "arg_type", "positive_int", "non_negative_int", "any_int", "positive_float", "non_negative_float",
    "probability_arg", "int_list_arg", "file_arg", "dir_arg",
]
