"""The ``fyi`` command line: the table of commands, the parser, ``main``.

Each command's arguments live beside its code, as ``add_<command>_arguments(sp)``
and a run function in one module: the core commands in this package
(:mod:`.data`, :mod:`.eval`, :mod:`.sets`, :mod:`.score`, :mod:`.experts`), the
big subsystems inside their own package (``distill/cli.py``,
``tasks/continual/cli.py``, ``tasks/nas/cli.py``, ``tasks/xarch.py``,
``quickstart.py``).  Options several commands share are in :mod:`.common`.
Adding a command is one :class:`Command` row in :data:`COMMANDS`.

Every user mistake ends with one line ``fyi: error: ...`` and exit code 2: argument
types and ranges are checked by :mod:`fyi_apps.validate` as they are parsed,
output targets before any compute starts.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import dataclass
from typing import Callable

from .. import validate as V
from ..errors import FyiError
from .common import GLOBAL_DEFAULTS, global_options

__all__ = ["COMMANDS", "Command", "Parser", "UsageError", "build_parser", "main", "selected_command"]


class UsageError(FyiError):
    """A command-line argument argparse refused (unknown flag, missing or ill-typed value)."""


class Parser(argparse.ArgumentParser):
    """An ``argparse`` parser whose errors are one ``fyi: error:`` line (exit 2), not usage + message."""

    def error(self, message: str):  # type: ignore[override]
        raise UsageError(f"{message} (see `{self.prog} --help`)")


@dataclass(frozen=True)
class Command:
    """One ``fyi`` command: ``arguments`` and ``run`` are ``"module:function"`` (run is imported when used)."""

    name: str
    help: str
    arguments: str
    run: str
    aliases: tuple[str, ...] = ()
    #: check that ``--out`` is a writable folder before running
    needs_out: bool = False
    #: how a stopped run continues: "flag" (the same command with --resume), "rerun" (the same command) or ""
    resume: str = ""

    def function(self, which: str) -> Callable:
        module, _, name = getattr(self, which).partition(":")
        return getattr(importlib.import_module(module), name)


COMMANDS: tuple[Command, ...] = (
    Command("data", "list datasets, or check that one is readable and print its shape and class counts",
            "fyi_apps.cli.data:add_data_arguments", "fyi_apps.cli.data:cmd_data"),
    Command("baseline", "write a random or herding real subset as a synthetic-set file",
            "fyi_apps.cli.data:add_baseline_arguments", "fyi_apps.cli.data:cmd_baseline"),
    Command("eval", "evaluate synthetic sets (or random/herding/full real data) with the paper's protocol",
            "fyi_apps.cli.eval:add_eval_arguments", "fyi_apps.cli.eval:cmd_eval"),
    Command("show", "save a PNG grid of a synthetic set (one row per class)",
            "fyi_apps.cli.sets:add_show_arguments", "fyi_apps.cli.sets:cmd_show"),
    Command("export", "export a synthetic set as an ImageFolder of PNGs",
            "fyi_apps.cli.sets:add_export_arguments", "fyi_apps.cli.sets:cmd_export"),
    Command("import", "import res_*.pt (DC/DSA/DM), images_best.pt (MTT/DATM) or an ImageFolder",
            "fyi_apps.cli.sets:add_import_arguments", "fyi_apps.cli.sets:cmd_import"),
    Command("score", "unequalness score D(R, flip(R)) of a synthetic set, or of real subsets of growing size",
            "fyi_apps.cli.score:add_score_arguments", "fyi_apps.cli.score:cmd_score"),
    Command("quickstart", "a 5-minute tour on the bundled digits: DM vs DM+FYI vs random, with a report",
            "fyi_apps.quickstart:add_quickstart_arguments", "fyi_apps.quickstart:run_quickstart_command"),
    Command("distill", "distil a synthetic set (dc, dsa, dm, idc, mtt, ftd), optionally with FYI",
            "fyi_apps.distill.cli:add_distill_arguments", "fyi_apps.distill.cli:run_distill_command", resume="flag"),
    Command("experts", "train expert trajectories for MTT/FTD (resumable: rerun the same command)",
            "fyi_apps.cli.experts:add_experts_arguments", "fyi_apps.cli.experts:cmd_experts", aliases=("buffers",),
            resume="rerun"),
    Command("cl", "continual learning: synthetic sets as Avalanche replay memories on Split benchmarks",
            "fyi_apps.tasks.continual.cli:add_cl_arguments", "fyi_apps.tasks.continual.cli:run_cl_command",
            resume="rerun"),
    Command("nas", "rank architectures on a proxy (synthetic set or real subset) against a ground truth; "
                   "resumable, --workers N or torchrun",
            "fyi_apps.tasks.nas.cli:add_nas_arguments", "fyi_apps.tasks.nas.cli:run_nas_command", needs_out=True,
            resume="rerun"),
    Command("xarch", "cross-architecture matrix: train every set on every architecture (paper Table 3)",
            "fyi_apps.tasks.xarch:add_xarch_arguments", "fyi_apps.tasks.xarch:run_xarch_command", needs_out=True,
            resume="rerun"),
)


def _runner(command: Command) -> Callable:
    def run(args) -> None:
        if command.needs_out:
            V.output_dir(args.out, "--out folder")
        command.function("run")(args)

    return run


#: global options that take a value (to find the command name in argv without parsing it)
_VALUED_GLOBALS = ("--device", "--seed", "--data-root", "--out")


def selected_command(argv: list[str]) -> Command | None:
    """The command ``argv`` names (after any global options), or None."""
    skip = False
    for tok in argv:
        if skip:
            skip = False
            continue
        if tok.startswith("-"):
            skip = tok in _VALUED_GLOBALS
            continue
        return next((c for c in COMMANDS if tok == c.name or tok in c.aliases), None)
    return None


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; given ``argv``, only the named command's arguments are built (``fyi --help`` imports no torch)."""
    common = global_options()
    p = Parser(prog="fyi", parents=[common],
               description="Dataset distillation with FYI (Flip Your Images) and its applications.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    chosen = selected_command(argv) if argv is not None else None
    for command in COMMANDS:
        sp = sub.add_parser(command.name, parents=[common], aliases=list(command.aliases), help=command.help,
                            description=command.help, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        sp.set_defaults(func=_runner(command))
        if argv is None or command is chosen:
            command.function("arguments")(sp)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the ``fyi`` command line with ``argv`` (default: ``sys.argv[1:]``); the exit code."""
    from ..errors import command_line

    with command_line():  # errors name flags (--ipc), not Python arguments (ipc=)
        return _main(argv)


def _main(argv: list[str] | None) -> int:
    import warnings

    # Avalanche imports qpsolvers, which warns on stderr that it found no QP solver (only Avalanche's GEM
    # would need one): not something a fyi user can act on, and it would break the one-line error rule.
    warnings.filterwarnings("ignore", message="no QP solver found", category=UserWarning)
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    try:
        args = parser.parse_args(argv)
    except FyiError as e:
        print(f"fyi: error: {e}", file=sys.stderr)
        return 2
    for k, v in GLOBAL_DEFAULTS.items():
        if not hasattr(args, k):
            setattr(args, k, v)
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    command = selected_command(argv)
    previous = _on_sigterm()
    stderr = sys.stderr
    from ..runtime import LogLines, is_terminal

    if not is_terminal(stderr):  # a log file: progress as a line every 30 s, not a redraw per update
        sys.stderr = LogLines(stderr)
    try:
        from ..runtime import resolve_device

        args.device = str(resolve_device(args.device))
        args.func(args)
    except FyiError as e:
        tail = _resume_hint(command, argv) if getattr(e, "write_failure", False) else ""
        print(f"fyi: error: {e}{tail}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, Terminated) as e:
        what = "stopped by SIGTERM" if isinstance(e, Terminated) else "interrupted"
        print(f"fyi: {what}{_resume_hint(command, argv)}", file=sys.stderr)
        return 143 if isinstance(e, Terminated) else 130
    except BrokenPipeError:  # `fyi ... | head`: the reader went away; stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        sys.stderr = stderr
        if previous is not None:
            import signal

            signal.signal(signal.SIGTERM, previous)
    return 0


class Terminated(BaseException):
    """SIGTERM (what schedulers send) turned into an exception, so that the run stops like on Ctrl-C."""


def _on_sigterm():
    """Make SIGTERM raise :class:`Terminated` in the main thread; returns the previous handler (None elsewhere)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        raise Terminated()

    return signal.signal(signal.SIGTERM, handler)


def _resume_hint(command: Command | None, argv: list[str]) -> str:
    """``; kept ...; to resume run: fyi ...`` for what the stopped command leaves behind (empty when nothing)."""
    import shlex

    from ..runtime import kept_notes

    kept = kept_notes()
    if not kept or command is None or not command.resume:
        return ""
    args = list(argv)
    if command.resume == "flag" and "--resume" not in args:
        args.append("--resume")
    return f"; kept {'; '.join(kept)}; to resume, run: fyi {shlex.join(args)}"
