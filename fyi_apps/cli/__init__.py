"""The ``fyi`` command line: the table of commands, the parser, ``main``.

Each command's arguments live beside its code, as ``add_<command>_arguments(sp)``
and a run function in one module: the core commands in this package
(:mod:`.data`, :mod:`.eval`, :mod:`.sets`, :mod:`.score`, :mod:`.experts`), the
big subsystems inside their own package (``distill/cli.py``,
``tasks/continual/cli.py``, ``tasks/nas/cli.py``, ``tasks/xarch.py``,
``quickstart.py``).  Options several commands share are in :mod:`.common`.
Adding a command is one :class:`Command` row in :data:`COMMANDS` and its loader (a three-line
function that imports the command's two functions).

Every user mistake ends with one line ``fyi: error: ...`` and exit code 2: argument
types and ranges are checked by :mod:`fyi_apps.validate` as they are parsed,
output targets before any compute starts.
"""
from __future__ import annotations

import argparse
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


Functions = "tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], None]]"


@dataclass(frozen=True)
class Command:
    """One ``fyi`` command: ``load()`` imports its module and returns ``(add_arguments, run)``.

    ``load`` is a small function with an import statement inside (the
    architecture test sees the edge; ``fyi --help`` imports nothing heavy).
    """

    name: str
    help: str
    load: Callable[[], Functions]
    aliases: tuple[str, ...] = ()
    #: check that ``--out`` is a writable folder before running
    needs_out: bool = False
    #: how a stopped run continues: "flag" (the same command with --resume), "rerun" (the same command) or ""
    resume: str = ""

    def function(self, which: str) -> Callable:
        """``"arguments"``: the function that adds the command's arguments; ``"run"``: the one that runs it."""
        arguments, run = self.load()
        return {"arguments": arguments, "run": run}[which]


# one loader per command: the import happens when the command is used
def _data() -> Functions:
    from .data import add_data_arguments, cmd_data
    return add_data_arguments, cmd_data


def _baseline() -> Functions:
    from .data import add_baseline_arguments, cmd_baseline
    return add_baseline_arguments, cmd_baseline


def _eval() -> Functions:
    from .eval import add_eval_arguments, cmd_eval
    return add_eval_arguments, cmd_eval


def _show() -> Functions:
    from .sets import add_show_arguments, cmd_show
    return add_show_arguments, cmd_show


def _export() -> Functions:
    from .sets import add_export_arguments, cmd_export
    return add_export_arguments, cmd_export


def _import() -> Functions:
    from .sets import add_import_arguments, cmd_import
    return add_import_arguments, cmd_import


def _score() -> Functions:
    from .score import add_score_arguments, cmd_score
    return add_score_arguments, cmd_score


def _quickstart() -> Functions:
    from ..quickstart import add_quickstart_arguments, run_quickstart_command
    return add_quickstart_arguments, run_quickstart_command


def _distill() -> Functions:
    from ..distill.cli import add_distill_arguments, run_distill_command
    return add_distill_arguments, run_distill_command


def _experts() -> Functions:
    from .experts import add_experts_arguments, cmd_experts
    return add_experts_arguments, cmd_experts


def _cl() -> Functions:
    from ..tasks.continual.cli import add_cl_arguments, run_cl_command
    return add_cl_arguments, run_cl_command


def _nas() -> Functions:
    from ..tasks.nas.cli import add_nas_arguments, run_nas_command
    return add_nas_arguments, run_nas_command


def _xarch() -> Functions:
    from ..tasks.xarch import add_xarch_arguments, run_xarch_command
    return add_xarch_arguments, run_xarch_command


COMMANDS: tuple[Command, ...] = (
    Command("data", "list datasets, or check that one is readable and print its shape and class counts", _data),
    Command("baseline", "write a random or herding real subset as a synthetic-set file", _baseline),
    Command("eval", "evaluate synthetic sets (or random/herding/full real data) with the paper's protocol", _eval),
    Command("show", "save a PNG grid of a synthetic set (one row per class)", _show),
    Command("export", "export a synthetic set as an ImageFolder of PNGs", _export),
    Command("import", "import res_*.pt (DC/DSA/DM), images_best.pt (MTT/DATM) or an ImageFolder", _import),
    Command("score", "unequalness score D(R, flip(R)) of a synthetic set, or of real subsets of growing size", _score),
    Command("quickstart", "a 5-minute tour on the bundled digits: DM vs DM+FYI vs random, with a report",
            _quickstart),
    Command("distill", "distil a synthetic set (dc, dsa, dm, idc, mtt, ftd), optionally with FYI", _distill,
            resume="flag"),
    # `fyi buffers`: the command's old name, kept as a deprecated alias (fyi_apps.deprecated.COMMANDS)
    Command("experts", "train expert trajectories for MTT/FTD (resumable: rerun the same command)", _experts,
            aliases=("buffers",), resume="rerun"),
    Command("cl", "continual learning: synthetic sets as Avalanche replay memories on Split benchmarks", _cl,
            resume="rerun"),
    Command("nas", "rank architectures on a proxy (synthetic set or real subset) against a ground truth; "
                   "resumable, --workers N or torchrun", _nas, needs_out=True, resume="rerun"),
    Command("xarch", "cross-architecture matrix: train every set on every architecture (paper Table 3)", _xarch,
            needs_out=True, resume="rerun"),
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


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """argparse's ``(default: X)`` after each option's help, unless the help already says its default."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text.lower():
            return text
        return super()._get_help_string(action)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; given ``argv``, only the named command's arguments are built (``fyi --help`` imports no torch)."""
    common = global_options()
    p = Parser(prog="fyi", parents=[common],
               description="Dataset distillation with FYI (Flip Your Images) and its applications.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    chosen = selected_command(argv) if argv is not None else None
    for command in COMMANDS:
        sp = sub.add_parser(command.name, parents=[common], aliases=list(command.aliases), help=command.help,
                            description=command.help, formatter_class=DefaultsHelpFormatter)
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
    previous = _on_sigterm()
    try:
        parser = build_parser(argv)  # imports the command's module (torch): seconds in which Ctrl-C may come
        args = parser.parse_args(argv)
    except FyiError as e:
        print(f"fyi: error: {e}", file=sys.stderr)
        return _restore_sigterm(previous, 2)
    except (KeyboardInterrupt, Terminated) as e:  # nothing has run yet: nothing new kept
        kept = ("; what an earlier run kept (checkpoint, records) is untouched: run the same command again to "
                "continue") if "--resume" in argv else ""
        print(f"fyi: {_stopped(e)} while starting (nothing ran){kept}", file=sys.stderr)
        return _restore_sigterm(previous, _stop_code(e))
    for k, v in GLOBAL_DEFAULTS.items():
        if not hasattr(args, k):
            setattr(args, k, v)
    if not getattr(args, "command", None):
        parser.print_help()
        return _restore_sigterm(previous, 0)
    command = selected_command(argv)
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
        print(f"fyi: {_stopped(e)}{_resume_hint(command, argv)}", file=sys.stderr)
        return _stop_code(e)
    except BrokenPipeError:  # `fyi ... | head`: the reader went away; stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        sys.stderr = stderr
        _restore_sigterm(previous)
    return 0


class Terminated(BaseException):
    """SIGTERM (what schedulers send) turned into an exception, so that the run stops like on Ctrl-C."""


def _stopped(e: BaseException) -> str:
    return "stopped by SIGTERM" if isinstance(e, Terminated) else "interrupted"


def _stop_code(e: BaseException) -> int:
    return 143 if isinstance(e, Terminated) else 130


def _restore_sigterm(previous, code: int = 0) -> int:
    """Put back the SIGTERM handler :func:`_on_sigterm` replaced; returns ``code``."""
    if previous is not None:
        import signal

        signal.signal(signal.SIGTERM, previous)
    return code


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
