"""Ground truths of a ranking: training on real data (``full``, ``real:N``) or the NAS-Bench-201 table.

A training ground truth is a :class:`~fyi_apps.tasks.nas.sets.SetSpec` that
every candidate is trained on for ``full_epochs``; ``nb201`` reads the
benchmark's 200-epoch full-data accuracies instead (:mod:`.nb201_table`), so
nothing is trained for it.
"""
from __future__ import annotations

from ...errors import FyiError
from .sets import SetSpec, content_hash, resolve_set


def benchmark_table(cfg, dataset_name: str):
    """The NAS-Bench-201 table when ``cfg`` needs it (``truth="nb201"`` or ``stratified``), else None."""
    table = None
    if cfg.truth.strip().lower() == "nb201" or cfg.stratified:
        from .nb201_table import BenchmarkTable, column_for

        column_for(dataset_name)  # refuse a dataset the table has no column for, before reading 3 MB
        table = BenchmarkTable.read(cfg.nb201, cfg.data_root)
    return table


def truth_set(cfg, dataset, cands, table) -> SetSpec:
    """The ground-truth set of ``cfg.truth`` for the candidates ``cands`` (``table``: :func:`benchmark_table`)."""
    info = dataset.info
    if table is not None and cfg.truth.strip().lower() == "nb201":
        accs = table.truth(info.name, cands)
        truth = SetSpec(label="NAS-Bench-201 (200 epochs, full data)", kind="table", dataset=info.name,
                        digest=content_hash(str(table.path), sorted(accs.items())), num_images=len(dataset.train), epochs=200,
                        source=str(table.path), values=tuple(sorted(accs.items())))
    else:
        truth = resolve_set(cfg.truth, dataset, seed=cfg.seed)
    if truth.kind == "synset":
        raise FyiError("the ground truth must be real data: --truth full, real:N or nb201")
    return truth
