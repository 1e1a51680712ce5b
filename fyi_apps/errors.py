"""The one exception type users see.

Every mistake a user can make (unknown dataset, missing path, IPC larger than a
class, corrupt synthetic-set file, NaN loss ...) is raised as :class:`FyiError`
with a single line that names the problem and the fix.  The ``fyi`` command
prints that line and exits with code 2; Python users can catch it.

Messages are written once, in the command line's words (``use --ipc 5 or
less``).  Outside the command line (:func:`command_line` not active) they read
in Python's words: ``--ipc 5`` becomes ``ipc=5`` and ``--proxy-epochs``
``proxy_epochs`` (:data:`FLAG_ARGUMENTS` lists the flags whose argument is
spelled otherwise).
"""
from __future__ import annotations

import contextlib
import contextvars
import re
from typing import Iterator

_CLI = contextvars.ContextVar("fyi_command_line", default=False)

#: command-line flags whose Python argument (config field) has another name
FLAG_ARGUMENTS = {
    "proxy": "proxies", "memory": "memories", "buffer": "memories", "buffers": "memories", "ensemble": "ensembles",
    "nets": "num_nets", "data-root": "root",
}

# words after a flag that are prose, not its value ("--seeds must be ...", "--nb201 or --truth")
_PROSE = frozenset("""a an and apply applies are at augments but by cannot for from given in is it must names not of
on only or read reads sets takes than the to was were when which with without""".split())
_FLAG = re.compile(r"(?<![\w-])--([a-z][a-z0-9-]*)(?: (?!-)([^\s,;:()]+))?")


def python_spelling(message: str) -> str:
    """``message`` with its command-line flags as Python argument names (``--ipc 5`` -> ``ipc=5``)."""

    def one(m: re.Match) -> str:
        name = FLAG_ARGUMENTS.get(m.group(1), m.group(1).replace("-", "_"))
        value = m.group(2)
        if m.group(1) == "option" and value and "=" in value:  # --option k=v: a method option, k=v in Python
            return value
        if value is None:
            return name
        if value.lower() in _PROSE:
            return f"{name} {value}"
        return f"{name}={value}"

    return _FLAG.sub(one, message)


@contextlib.contextmanager
def command_line() -> Iterator[None]:
    """Inside: errors read in the command line's words (the ``fyi`` command runs in this)."""
    token = _CLI.set(True)
    try:
        yield
    finally:
        _CLI.reset(token)


def command_line_active() -> bool:
    """Whether the ``fyi`` command runs this (it adds what a failed run keeps and how to resume)."""
    return _CLI.get()


class FyiError(Exception):
    """A user-facing error whose message names the problem and the fix."""

    exit_code = 2

    def __init__(self, message: str):
        # Keep the message on one line: it is what the CLI prints.
        super().__init__(" ".join(str(message).split()))

    def __str__(self) -> str:
        text = super().__str__()
        return text if _CLI.get() else python_spelling(text)


class DamagedFile(FyiError):
    """A file that is there but damaged (corrupt, truncated, changed since it was written).

    ``reason`` says what is wrong without the message's advice, for a caller
    that knows what to do instead: a cache entry is simply made again.
    """

    def __init__(self, message: str, reason: str = ""):
        super().__init__(message)
        self.reason = " ".join(str(reason or message).split())
