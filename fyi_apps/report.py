"""Human-readable tables (terminal and Markdown) for results that are also written as JSON."""
from __future__ import annotations

from typing import Any, Sequence


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str], markdown: bool = False) -> str:
    """Align ``rows`` under ``headers``; ``markdown=True`` gives a GitHub table."""
    cells = [[_cell(v) for v in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    if markdown:
        lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths)) + " |",
                 "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
        lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in cells]
    else:
        lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)),
                 "  ".join("-" * w for w in widths)]
        lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)


def pct(mean: float, std: float | None = None) -> str:
    """``48.90 +- 0.60`` from fractions."""
    if std is None:
        return f"{100 * mean:.2f}"
    return f"{100 * mean:.2f} +- {100 * std:.2f}"
