"""What every benchmark shares: options and presets, IPC lists, sets and evaluations, Table 1, the ending.

Usage, the record cache and the public-names rule: ARCHITECTURE.md, "Benchmarks: the harness".
"""
from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from fyi_apps import errors
from fyi_apps.errors import FyiError
from fyi_apps.records import RecordCache  # noqa: F401 - the one record cache and the one key helper, for the
from fyi_apps.runtime import cache_key  # noqa: F401 - benchmarks (H.RecordCache, H.cache_key)
from fyi_apps.validate import int_list  # noqa: F401 - the package's rule for "1,10" (H.int_list(text, flag))

#: where the benchmarks' committed results live (a --quick run writes to a ``-quick`` folder beside them)
RESULTS = Path(__file__).resolve().parent / "results"

# --------------------------------------------------------------------------- the paper's Table 1
#: The FYI paper ("FYI: Flip Your Images for Dataset Distillation", ECCV 2024), Table 1: CIFAR-10, ConvNet-3,
#: test accuracy (%) at (IPC 1, IPC 10); None where the table has no number.  The DC, DSA and DM rows are the
#: original papers' numbers (original DSA: one random operation); the "+fyi" rows are FYI's, with the FYI code's DSA.
TABLE1: dict[str, tuple[float | None, float | None]] = {
    "dc": (28.3, 44.9), "dc+fyi": (30.0, 49.5), "dsa": (28.8, 52.1), "dsa+fyi": (30.6, 54.7),
    "dm": (26.0, 48.9), "dm+fyi": (28.7, 53.1),
    "mtt": (46.3, 65.3), "mtt+fyi": (None, 68.2), "ftd": (46.8, 66.6), "ftd+fyi": (None, 68.1),
}
TABLE1_IPCS = (1, 10)


def table1(method: str, fyi: bool, ipc: int, dataset: str = "cifar10") -> float | None:
    """The paper's Table 1 accuracy (%) of ``method`` (+FYI) at ``ipc`` on ``dataset``; None where it has none."""
    name = dataset.lower()
    if not name.startswith("cifar10") or name.startswith("cifar100") or ipc not in TABLE1_IPCS:
        return None
    row = TABLE1.get(method + ("+fyi" if fyi else ""))
    return row[TABLE1_IPCS.index(ipc)] if row else None


# --------------------------------------------------------------------------- options and presets
#: the options most benchmarks have, spelled one way; :func:`add_common_arguments` adds them by name
COMMON: dict[str, dict[str, Any]] = {
    "quick": dict(action="store_true", help="tiny budgets on digits: checks the pipeline in minutes"),
    "dataset": dict(default=None, help="dataset name"),
    "device": dict(default="auto", help="auto (CUDA when visible), cpu or cuda[:N]"),
    "data_root": dict(default=None, help="folder holding the dataset files (else $FYI_DATA, ./data, ../shared/data)"),
    "seeds": dict(type=int, default=None, help="evaluation seeds 0..N-1"),
    "seed": dict(type=int, default=0, help="distillation seed"),
    "threads": dict(type=int, default=None, help="torch threads"),
    "out": dict(default=None, help="output folder"),
    "ipcs": dict(default="1,10", help="images per class, comma-separated"),
    "batch_real": dict(type=int, default=None, help="real images per class per iteration"),
    "eval_epochs": dict(type=int, default=None, help="evaluation epochs"),
    "no_progress": dict(action="store_true", help="no progress bars"),
}


def parser(doc: str | None, *, prog: str | None = None, first_paragraph: bool = False,
           formatter: type[argparse.HelpFormatter] = argparse.RawDescriptionHelpFormatter,
           epilog: str | None = None) -> argparse.ArgumentParser:
    """The benchmark's parser, described by its module docstring (whole, or its first paragraph)."""
    text = (doc or "").split("\n\n")[0] if first_paragraph else doc
    return argparse.ArgumentParser(prog=prog, description=text, formatter_class=formatter, epilog=epilog)


def add_common_arguments(p: argparse.ArgumentParser, *names: str, **changed: Mapping[str, Any]) -> None:
    """Add the :data:`COMMON` options ``names`` and, with their settings changed, the keywords' ones.

    ``add_common_arguments(p, "device", seeds={"default": 3})`` adds ``--device`` as it is and
    ``--seeds`` with the default 3.
    """
    for name in (*names, *changed):
        p.add_argument("--" + name.replace("_", "-"), **{**COMMON[name], **changed.get(name, {})})


def apply_preset(args: argparse.Namespace, full: Mapping[str, Any], quick: Mapping[str, Any] | None = None
                 ) -> argparse.Namespace:
    """``--quick`` handled one way: every option left unset (None) takes the preset's value (``quick`` with --quick)."""
    preset = quick if quick is not None and getattr(args, "quick", False) else full
    for k, v in preset.items():
        if getattr(args, k, None) is None:
            setattr(args, k, v)
    return args


def quick_path(path: str | Path, quick: bool) -> str:
    """``path`` with ``-quick`` added to its last part under ``--quick`` (quick runs never touch full results)."""
    p = Path(path)
    return str(p.with_name(p.name + "-quick")) if quick else str(path)


def names(text: str) -> list[str]:
    """A comma-separated list, blanks dropped: ``"dm, dsa,"`` -> ``["dm", "dsa"]``."""
    return [t.strip() for t in str(text).split(",") if t.strip()]


def per_ipc(text: str, ipcs: Sequence[int], flag: str) -> dict[int, int]:
    """A value for every IPC of ``ipcs``, in the one IPC-list syntax of the benchmarks.

    ``"2000"``: every IPC; ``"500,300"``: one value per IPC, in the order of
    ``ipcs``; ``"1:500,10:2000"``: by IPC (every IPC of ``ipcs`` needs one);
    ``"100,20"`` with other than two IPCs: the first for IPC 1, the second for
    every larger IPC (the trajectory benchmark's presets).
    """
    items = names(text)
    try:
        if any(":" in i for i in items):
            table = {int(k): int(v) for k, v in (i.split(":") for i in items)}
            if missing := [ipc for ipc in ipcs if ipc not in table]:
                raise FyiError(f"{flag} {text!r} gives no value for IPC {missing}")
            return {ipc: table[ipc] for ipc in ipcs}
        values = [int(v) for v in items]
    except ValueError:
        values = []
    if len(values) == 1 or (len(values) == 2 and len(ipcs) != 2):  # every IPC alike; IPC 1 and the larger ones
        values = [values[min(ipc > 1, len(values) - 1)] for ipc in ipcs]
    if values and len(values) == len(ipcs):
        return dict(zip(ipcs, values))
    raise FyiError(f"{flag} takes N, one value per IPC ({len(ipcs)}) or IPC:N pairs (e.g. 1:500,10:2000), "
                   f"got {text!r}")


def int_pair(text: str, flag: str) -> tuple[int, int]:
    """``"OUTER,INNER"`` -> two integers (loops)."""
    try:
        a, b = (int(v) for v in str(text).split(","))
    except ValueError:
        raise FyiError(f"{flag} takes OUTER,INNER (e.g. 5,10), got {text!r}") from None
    return a, b


# --------------------------------------------------------------------------- sets, evaluations, the ending
def distilled(path: str | Path, cfg: Any, dataset: Any, device: str = "auto", progress: bool = True) -> Any:
    """The synthetic set at ``path``: loaded when it exists, else distilled with ``cfg`` (resuming a checkpoint)."""
    import fyi_apps as fyi

    if Path(path).exists():
        return fyi.load_synset(path)
    return fyi.Distiller(cfg, dataset, device=device).run(path, resume=True, progress=progress)


def evaluation_record(synset: Any, dataset: Any, cfg: Any, seeds: Sequence[int], device: str = "auto") -> dict:
    """The paper's protocol on ``synset`` and its unequalness score: the fields every evaluation record has."""
    import fyi_apps as fyi

    t = time.perf_counter()
    r = fyi.evaluate(synset, dataset, cfg=cfg, seeds=seeds, device=device, progress=True)
    images, labels = synset.decoded()
    score = fyi.unequalness(images, labels, synset.num_classes, num_nets=3, device=device)["score"]
    return {"accs": r.accs, "mean": r.mean, "std": r.std, "eval_seconds": time.perf_counter() - t,
            "unequalness_dm": score, "distill_seconds": synset.extra.get("seconds"),
            "final_loss": synset.extra.get("final_loss")}


def command_line(name: str, argv: Sequence[str] | None = None) -> str:
    """``python -m benchmarks.NAME ARGS``: the arguments given to ``main``, else the process's."""
    return " ".join(["python -m benchmarks." + name, *(sys.argv[1:] if argv is None else argv)])


def show_table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """Print the table (plain text) and return it as markdown, for the result file."""
    from fyi_apps.report import table

    print(table(rows, headers))
    return table(rows, headers, markdown=True)


def write_result(path: str | Path, record: dict, *, what: str = "result") -> Path:
    """Write the benchmark's result file (the record plus the package versions) and say where."""
    from fyi_apps.runtime import package_versions, write_json

    out = write_json(path, {**record, "versions": record.get("versions") or package_versions()}, what=what)
    print(f"written {out}")
    return out


def reports_errors(name: str) -> Callable[[Callable[..., int | None]], Callable[..., int]]:
    """Decorate a benchmark's ``main``: a user error (:class:`fyi_apps.FyiError`) is one ``NAME: error:`` line, exit 2."""
    def wrap(main: Callable[..., int | None]) -> Callable[..., int]:
        @functools.wraps(main)
        def guarded(*args: Any, **kwargs: Any) -> int:
            try:
                with errors.command_line():  # a benchmark is a command: its errors read in the command line's words
                    return main(*args, **kwargs) or 0
            except FyiError as e:
                print(f"{name}: error: {e.args[0]}", file=sys.stderr)
                return 2
        return guarded
    return wrap
