"""Rank statistics: how well a proxy's accuracies rank the candidates against the ground truth.

Spearman's rho and Kendall's tau (:mod:`scipy.stats`) over all candidates and
over the top-k by ground truth, top-k overlap, and the ground-truth accuracy
and rank of the proxy's favourite.
"""
from __future__ import annotations

import math
from typing import Sequence

from ...errors import FyiError


def _finite_or_none(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def rank_stats(
    proxy: Sequence[float],
    truth: Sequence[float],
    *,
    names: Sequence[str] | None = None,
    ks: Sequence[int] = (5, 10, 20),
) -> dict:
    """How well ``proxy`` accuracies rank candidates compared with ``truth`` accuracies.

    * ``spearman``/``kendall`` (and p-values) over all candidates;
    * ``top`` ``{k: {spearman, kendall, overlap}}`` over the k best candidates
      by ground truth (k larger than the number of candidates is left out);
      ``overlap`` = |top-k by truth and top-k by proxy| / k;
    * ``best``: the proxy's favourite, its ground-truth accuracy and rank
      (1 = best; ties share the best rank) and the regret against the truly best.

    Constant inputs give ``None`` correlations (undefined), not NaN.
    """
    import numpy as np
    from scipy import stats

    p = np.asarray(proxy, dtype=float)
    t = np.asarray(truth, dtype=float)
    if p.shape != t.shape or p.ndim != 1:
        raise FyiError(f"proxy and truth need one accuracy per candidate; got {p.shape} and {t.shape}")
    n = int(p.size)
    if n < 2:
        raise FyiError(f"ranking needs at least 2 candidates with results, got {n}; sample more candidates")
    if not (np.isfinite(p).all() and np.isfinite(t).all()):
        raise FyiError("accuracies must be finite numbers; drop failed candidates first")
    names = list(names) if names is not None else [str(i) for i in range(n)]

    def corr(a, b) -> dict:
        if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
            return {"spearman": None, "spearman_p": None, "kendall": None, "kendall_p": None}
        rho = stats.spearmanr(a, b)
        tau = stats.kendalltau(a, b)
        return {"spearman": _finite_or_none(rho.statistic), "spearman_p": _finite_or_none(rho.pvalue),
                "kendall": _finite_or_none(tau.statistic), "kendall_p": _finite_or_none(tau.pvalue)}

    by_truth = np.argsort(-t, kind="stable")
    by_proxy = np.argsort(-p, kind="stable")
    truth_rank = stats.rankdata(-t, method="min").astype(int)
    top = {}
    for k in sorted({int(k) for k in ks}):
        if k < 1 or k > n:
            continue
        idx = by_truth[:k]
        overlap = len(set(idx.tolist()) & set(by_proxy[:k].tolist())) / k
        top[str(k)] = {**corr(p[idx], t[idx]), "overlap": overlap,
                       "proxy_top": [names[i] for i in by_proxy[:k]], "truth_top": [names[i] for i in idx]}
    b = int(by_proxy[0])
    return {
        "n": n,
        **corr(p, t),
        "top": top,
        "best": {
            "candidate": names[b], "proxy_acc": float(p[b]), "truth_acc": float(t[b]),
            "truth_rank": int(truth_rank[b]), "oracle": names[int(by_truth[0])],
            "oracle_acc": float(t[by_truth[0]]), "regret": float(t[by_truth[0]] - t[b]),
        },
        "truth_rank": {names[i]: int(truth_rank[i]) for i in range(n)},
    }


def topk_counts(topk: Sequence, n: int) -> list[int]:
    """``[5, "10%", "20%"]`` -> counts for ``n`` candidates (a percentage rounds, at least 2)."""
    out = []
    for k in topk:
        text = str(k).strip()
        try:
            out.append(max(2, round(n * float(text[:-1]) / 100)) if text.endswith("%") else int(text))
        except ValueError:
            raise FyiError(f"--topk takes counts or percentages (5,10%,20%), got {k!r}") from None
    return sorted(set(out))


def is_connected_candidate(name: str) -> bool:
    """False only for NAS-Bench-201 cells whose output is cut off from the input."""
    if not name.lower().startswith("nb201:"):
        return True
    from ...networks.nb201 import is_connected, split_name

    return is_connected(split_name(name)[0])
