"""The result of a ranking as an object: :class:`RankingResult` and :class:`ProxyStats`.

:func:`fyi_apps.tasks.nas.run_ranking` (``fyi.rank``) returns a
:class:`RankingResult`.  It reads like the JSON report it wraps (it is a
read-only mapping over it, so ``result["proxies"]`` still works) and adds typed
views::

    res = fyi.rank(cfg, cache_dir="runs/nas-cache")
    res.stats["synflow"].spearman           # rho over all candidates
    res.stats["synflow"].spearman_ci        # (low, high), bootstrap 95 %
    res.curve("dm ipc10")[-1].spearman      # at the last learning-curve point
    print(res.table())                      # one row per proxy
    res.to_json("ranking.json")
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Iterator


@dataclass(frozen=True)
class ProxyStats:
    """How well one proxy (at one compute budget) ranks the candidates against the ground truth.

    Correlations are ``None`` where undefined (a constant proxy); accuracies in
    ``best`` and ``search`` are fractions in [0, 1] as in the JSON report.
    """

    label: str
    kind: str
    n: int
    spearman: float | None
    kendall: float | None
    spearman_p: float | None = None
    kendall_p: float | None = None
    spearman_ci: tuple[float, float] | None = None
    kendall_ci: tuple[float, float] | None = None
    top: dict = field(default_factory=dict)
    search: dict = field(default_factory=dict)
    best: dict = field(default_factory=dict)
    seconds: float | None = None  # proxy compute per candidate (training or scoring), measured
    image_passes: int | None = None  # training images seen per candidate (None: no training)
    epochs: float | None = None

    @classmethod
    def from_stats(cls, label: str, kind: str, stats: dict, **extra: Any) -> "ProxyStats":
        ci = stats.get("ci") or {}
        return cls(label=label, kind=kind, n=int(stats["n"]), spearman=stats.get("spearman"),
                   kendall=stats.get("kendall"), spearman_p=stats.get("spearman_p"), kendall_p=stats.get("kendall_p"),
                   spearman_ci=tuple(ci["spearman"]) if ci.get("spearman") else None,
                   kendall_ci=tuple(ci["kendall"]) if ci.get("kendall") else None,
                   top=stats.get("top", {}), search=stats.get("search", {}), best=stats.get("best", {}), **extra)


def _per_candidate(values: dict) -> float | None:
    return sum(values.values()) / len(values) if values else None


class RankingResult(Mapping):
    """A finished ranking: the JSON report (as a read-only mapping) plus typed statistics.

    Attributes:
        stats: ``{proxy label: ProxyStats}`` at each proxy's full budget.
        candidates: the ranked candidate names.
        truth: ``{candidate: ground-truth accuracy}``.
    """

    def __init__(self, report: dict):
        self._report = dict(report)

    # ------------------------------------------------------------- mapping
    def __getitem__(self, key: str) -> Any:
        return self._report[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._report)

    def __len__(self) -> int:
        return len(self._report)

    def __repr__(self) -> str:
        best = max(self.stats.values(), key=lambda s: -2 if s.spearman is None else s.spearman, default=None)
        lead = f", best rho {best.spearman:.3f} ({best.label})" if best and best.spearman is not None else ""
        return (f"RankingResult({len(self.candidates)} candidates on {self._report.get('dataset')}, "
                f"{len(self.stats)} proxies{lead})")

    # ------------------------------------------------------------- views
    @property
    def candidates(self) -> list[str]:
        return list(self._report["candidates"])

    @property
    def truth(self) -> dict[str, float]:
        return dict(self._report["truth"]["accs"])

    @property
    def proxies(self) -> list[str]:
        return [p["label"] for p in self._report["proxies"]]

    @property
    def stats(self) -> dict[str, ProxyStats]:
        out = {}
        for p in self._report["proxies"]:
            n = p["set"].get("num_images") or 0
            trains = p.get("epochs") is not None
            out[p["label"]] = ProxyStats.from_stats(
                p["label"], p.get("kind", ""), p["stats"], seconds=_per_candidate(p.get("seconds") or {}),
                image_passes=int(n * p["epochs"]) if trains and n else None, epochs=p.get("epochs"))
        return out

    def curve(self, label: str) -> list[ProxyStats]:
        """The proxy's statistics at each point of its learning curve (empty without ``--curve``)."""
        for p in self._report["proxies"]:
            if p["label"] == label:
                return [ProxyStats.from_stats(label, p.get("kind", ""), c["stats"], seconds=c.get("seconds"),
                                              image_passes=c.get("image_passes"), epochs=c.get("epochs"))
                        for c in p.get("curve", [])]
        raise KeyError(f"no proxy {label!r}; the proxies are {', '.join(self.proxies)}")

    def to_dict(self) -> dict:
        """The JSON report as a plain dict."""
        return dict(self._report)

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        """The report as JSON text; also written atomically to ``path`` when given."""
        text = json.dumps(self._report, indent=2, default=str)
        if path is not None:
            from ...runtime import write_json

            write_json(path, self._report)
        return text

    def table(self, markdown: bool = False) -> str:
        """One row per proxy: rho and tau with their 95 % intervals and p-values, top-k, the pick, the search."""
        from ...report import table
        from .report import summary_rows

        rows, headers = summary_rows(self._report)
        return table(rows, headers, markdown=markdown)
