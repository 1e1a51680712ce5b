"""Rank statistics: how well a proxy's accuracies rank the candidates against the ground truth.

Spearman's rho and Kendall's tau (:mod:`scipy.stats`, with p-values and
percentile-bootstrap 95 % intervals from :func:`scipy.stats.bootstrap` over
the candidates) over all candidates and over the top-k by ground truth, top-k
overlap, the ground-truth accuracy and rank of the proxy's favourite, and a
simulated search: the true accuracy of the candidate the proxy picks among N
randomly drawn ones (mean and std over many draws, beside the oracle's), as
NASWOT (Mellor et al., ICML 2021) reports.
"""
from __future__ import annotations

import math
import warnings
from typing import Sequence

from ...errors import FyiError


def _finite_or_none(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _spearman_axis(a, b, axis=-1):
    """Spearman's rho along ``axis`` (vectorised over resamples; ties get average ranks, as scipy's)."""
    import numpy as np
    from scipy.stats import rankdata

    ra = rankdata(a, axis=axis)
    rb = rankdata(b, axis=axis)
    ra = ra - ra.mean(axis=axis, keepdims=True)
    rb = rb - rb.mean(axis=axis, keepdims=True)
    den = np.sqrt((ra * ra).sum(axis=axis) * (rb * rb).sum(axis=axis))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (ra * rb).sum(axis=axis) / den


def _kendall_axis(a, b, axis=-1):
    """Kendall's tau-b along ``axis`` (vectorised over resamples; the same value as :func:`scipy.stats.kendalltau`)."""
    import numpy as np

    a = np.moveaxis(np.asarray(a, dtype=float), axis, -1)
    b = np.moveaxis(np.asarray(b, dtype=float), axis, -1)
    sa = np.sign(a[..., :, None] - a[..., None, :])
    sb = np.sign(b[..., :, None] - b[..., None, :])
    den = np.sqrt((sa * sa).sum(axis=(-2, -1)) * (sb * sb).sum(axis=(-2, -1)))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (sa * sb).sum(axis=(-2, -1)) / den


def _kendall_one(a, b) -> float:
    from scipy import stats

    return float(stats.kendalltau(a, b).statistic)


def bootstrap_intervals(proxy: Sequence[float], truth: Sequence[float], *, resamples: int = 1000, seed: int = 0,
                        confidence: float = 0.95) -> dict:
    """Percentile-bootstrap intervals of Spearman's rho and Kendall's tau, resampling candidates (pairs).

    ``{"spearman": [low, high], "kendall": [low, high]}`` (``None`` where a
    statistic is undefined, e.g. fewer than 3 candidates), from
    :func:`scipy.stats.bootstrap` with ``paired=True``.
    """
    import numpy as np

    p = np.asarray(proxy, dtype=float)
    t = np.asarray(truth, dtype=float)
    out: dict = {"spearman": None, "kendall": None}
    if p.size < 3 or resamples < 1 or np.ptp(p) == 0 or np.ptp(t) == 0:
        return out
    # Kendall's tau vectorised costs n^2 per resample: above 200 candidates scipy's O(n log n) one per resample
    small = p.size <= 200
    for name, fn, vec in (("spearman", _spearman_axis, True),
                          ("kendall", _kendall_axis if small else _kendall_one, small)):
        out[name] = _paired_interval((p, t), fn, vectorized=vec, resamples=resamples, seed=seed,
                                     confidence=confidence)
    return out


def _paired_interval(data: tuple, fn, *, vectorized: bool, resamples: int, seed: int,
                     confidence: float) -> list[float] | None:
    """The percentile-bootstrap interval of ``fn(*data)``, resampling the candidates (paired); None if undefined."""
    import numpy as np
    from scipy import stats

    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a degenerate resample gives an undefined (None) interval
        res = stats.bootstrap(data, fn, paired=True, vectorized=vectorized, n_resamples=int(resamples),
                              confidence_level=confidence, method="percentile", batch=100,
                              random_state=np.random.default_rng(seed))
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return [lo, hi] if np.isfinite(lo) and np.isfinite(hi) else None


def rho_difference(a: Sequence[float], b: Sequence[float], truth: Sequence[float], *, resamples: int = 1000,
                   seed: int = 0, confidence: float = 0.95) -> dict:
    """Spearman's rho of proxy ``a`` minus that of proxy ``b`` against ``truth``, with a paired bootstrap interval.

    Both proxies rank the same candidates, so the interval resamples candidates
    once for both (:func:`scipy.stats.bootstrap`, ``paired=True``, percentile):
    ``{"diff", "ci": [low, high] or None, "n"}``; ``diff`` is ``None`` where
    either correlation is undefined (a constant input).
    """
    import numpy as np

    x, y, t = (np.asarray(v, dtype=float) for v in (a, b, truth))
    if not (x.shape == y.shape == t.shape) or x.ndim != 1:
        raise FyiError(f"both proxies and the truth need one value per candidate; got {x.shape}, {y.shape}, {t.shape}")
    out: dict = {"diff": None, "ci": None, "n": int(x.size)}
    if x.size < 3 or min(np.ptp(x), np.ptp(y), np.ptp(t)) == 0:
        return out
    out["diff"] = float(_spearman_axis(x, t) - _spearman_axis(y, t))
    if resamples < 1:
        return out

    def fn(xa, ya, ta, axis=-1):
        return _spearman_axis(xa, ta, axis=axis) - _spearman_axis(ya, ta, axis=axis)

    out["ci"] = _paired_interval((x, y, t), fn, vectorized=True, resamples=resamples, seed=seed,
                                 confidence=confidence)
    return out


def search_simulation(proxy: Sequence[float], truth: Sequence[float], *, sizes: Sequence[int] = (10, 100),
                      draws: int = 1000, seed: int = 0) -> dict:
    """The truth of the candidate the proxy picks among N drawn at random (without replacement), per N.

    ``{N: {"draws", "mean", "std", "oracle_mean", "oracle_std"}}`` over ``draws``
    searches (ties: the first drawn); N equal to the number of candidates is one
    deterministic search (std 0), larger N is left out.
    """
    import numpy as np

    p = np.asarray(proxy, dtype=float)
    t = np.asarray(truth, dtype=float)
    n = p.size
    rng = np.random.default_rng(seed)
    out = {}
    for size in sorted({int(k) for k in sizes}):
        if size < 1 or size > n:
            continue
        k = 1 if size == n else int(draws)
        idx = np.stack([rng.permutation(n)[:size] for _ in range(k)])
        picked = t[idx[np.arange(k), np.argmax(p[idx], axis=1)]]
        oracle = t[idx].max(axis=1)
        out[str(size)] = {"draws": k, "mean": float(picked.mean()), "std": float(picked.std()),
                          "oracle_mean": float(oracle.mean()), "oracle_std": float(oracle.std())}
    return out


def rank_stats(
    proxy: Sequence[float],
    truth: Sequence[float],
    *,
    names: Sequence[str] | None = None,
    ks: Sequence[int] = (5, 10, 20),
    bootstrap: int = 1000,
    search_sizes: Sequence[int] = (10, 100),
    seed: int = 0,
) -> dict:
    """How well ``proxy`` accuracies rank candidates compared with ``truth`` accuracies.

    * ``spearman``/``kendall`` (and p-values) over all candidates;
    * ``top`` ``{k: {spearman, kendall, overlap}}`` over the k best candidates
      by ground truth (k larger than the number of candidates is left out);
      ``overlap`` = |top-k by truth and top-k by proxy| / k;
    * ``best``: the proxy's favourite, its ground-truth accuracy and rank
      (1 = best; ties share the best rank) and the regret against the truly best;
    * ``ci`` (and ``ci`` in each ``top`` entry): bootstrap 95 % intervals of rho
      and tau over ``bootstrap`` resamples of the candidates (0: none);
    * ``search``: :func:`search_simulation` for ``search_sizes``.

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
                       "ci": bootstrap_intervals(p[idx], t[idx], resamples=bootstrap, seed=seed),
                       "proxy_top": [names[i] for i in by_proxy[:k]], "truth_top": [names[i] for i in idx]}
    b = int(by_proxy[0])
    return {
        "n": n,
        **corr(p, t),
        "ci": bootstrap_intervals(p, t, resamples=bootstrap, seed=seed),
        "top": top,
        "search": search_simulation(p, t, sizes=search_sizes, seed=seed),
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
            value = float(text[:-1]) if text.endswith("%") else int(text)
        except ValueError:
            raise FyiError(f"--topk takes counts or percentages (5,10%,20%), got {k!r}") from None
        if value <= 0 or (text.endswith("%") and value > 100):
            raise FyiError(f"--topk takes positive counts or percentages up to 100% (5,10%,20%), got {k!r}")
        out.append(max(2, round(n * value / 100)) if text.endswith("%") else int(value))
    return sorted(set(out))


def is_connected_candidate(name: str) -> bool:
    """False only for NAS-Bench-201 cells whose output is cut off from the input."""
    if not name.lower().startswith("nb201:"):
        return True
    from ...networks.nb201 import is_connected, split_name

    return is_connected(split_name(name)[0])
