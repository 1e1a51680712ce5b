"""Presenting a ranking report: the summary and per-candidate tables, Markdown and the scatter plots.

:func:`write_json_report` and :func:`write_markdown` also write the cross-architecture matrix
(:mod:`fyi_apps.tasks.xarch`).
"""
from __future__ import annotations

import os
from pathlib import Path


#: proxy kinds whose values are scores, not accuracies
_SCORES = ("score", "zerocost")


def _fmt(v, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _ci(stats: dict, key: str) -> str:
    ci = (stats.get("ci") or {}).get(key)
    return f"{_fmt(stats.get(key))} [{ci[0]:.2f}, {ci[1]:.2f}]" if ci and stats.get(key) is not None \
        else _fmt(stats.get(key))


def _p(v) -> str:
    return "-" if v is None else f"{v:.1g}"


def _search(stats: dict, n: str) -> str:
    s = (stats.get("search") or {}).get(n)
    return "-" if not s else f"{100 * s['mean']:.2f} +- {100 * s['std']:.2f}"


def summary_rows(report: dict) -> tuple[list[list], list[str]]:
    """One row per proxy: rho and tau with 95 % intervals and p-values, top-k figures, search, pick, cost."""
    ks = sorted({k for p in report["proxies"] for k in p["stats"]["top"]}, key=int)
    ns = sorted({n for p in report["proxies"] for n in p["stats"].get("search", {})}, key=int)
    connected = any("stats_connected" in p for p in report["proxies"])
    headers = ["proxy", "images", "epochs", "rho [95% CI]", "p", "tau [95% CI]"]
    if connected:
        headers += ["rho / tau (connected cells)"]
    for k in ks:
        headers += [f"rho@{k} [95% CI]", f"tau@{k}", f"overlap@{k}"]
    headers += [f"search N={n}: truth %" for n in ns]
    headers += ["best: truth acc % (rank)", "oracle %", "proxy compute (s)", "compute saved"]
    rows = []
    for p in report["proxies"]:
        s = p["stats"]
        row = [p["label"], p["set"].get("num_images") or "-", p["epochs"] or "-", _ci(s, "spearman"),
               _p(s.get("spearman_p")), _ci(s, "kendall")]
        if connected:
            sc = p.get("stats_connected") or s
            row += [f"{_fmt(sc['spearman'])} / {_fmt(sc['kendall'])}"]
        for k in ks:
            t = s["top"].get(k)
            row += [_ci(t, "spearman") if t else "-", _fmt(t and t["kendall"]), _fmt(t and t["overlap"], 2)]
        row += [_search(s, n) for n in ns]
        b = s["best"]
        saved = p["cost"]["saved"]
        row += [f"{100 * b['truth_acc']:.2f} ({b['truth_rank']}/{s['n']})", f"{100 * b['oracle_acc']:.2f}",
                f"{p['cost']['proxy_seconds']:.0f}", "-" if saved is None else f"{saved:.1f}x"]
        rows.append(row)
    if ns:  # the search's oracle: the best candidate of the same draws
        oracle = _oracle_row(report)
        rows.append(["oracle (best of the N drawn)"] + [""] * (len(headers) - 1 - len(ns) - 4) + oracle + [""] * 4)
    return rows, headers


def _oracle_row(report: dict) -> list[str]:
    """The search's oracle (the best of the N drawn), for the search columns."""
    for p in report["proxies"]:
        search = p["stats"].get("search") or {}
        if search:
            return [f"{100 * v['oracle_mean']:.2f} +- {100 * v['oracle_std']:.2f}" for _, v in
                    sorted(search.items(), key=lambda kv: int(kv[0]))]
    return []


def curve_rows(report: dict) -> list[tuple[str, list[list], list[str]]]:
    """One table per compute budget of the learning curves: ``[(title, rows, headers)]``.

    Each budget (proxy epochs) lists every trained proxy (and every ensemble
    that follows one) at that point, then the proxies that do not train, at
    their own cost, for comparison.
    """
    curved = [p for p in report["proxies"] if p.get("curve")]
    if not curved:
        return []
    ks = sorted({k for p in curved for c in p["curve"] for k in c["stats"]["top"]}, key=int)
    ns = sorted({n for p in curved for c in p["curve"] for n in c["stats"].get("search", {})}, key=int)
    headers = ["proxy", "image-passes / candidate", "s / candidate (incl. distillation)", "rho [95% CI]", "p",
               "tau [95% CI]"]
    headers += [f"rho@{k}" for k in ks] + [f"overlap@{k}" for k in ks] + [f"search N={n}: truth %" for n in ns]

    def row(label, point_stats, passes, seconds, extra=0.0):
        seconds = None if seconds is None else seconds + extra
        s = point_stats
        return ([label, passes if passes is not None else "-", "-" if seconds is None else f"{seconds:.2f}",
                 _ci(s, "spearman"), _p(s.get("spearman_p")), _ci(s, "kendall")]
                + [_fmt((s["top"].get(k) or {}).get("spearman")) for k in ks]
                + [_fmt((s["top"].get(k) or {}).get("overlap"), 2) for k in ks] + [_search(s, n) for n in ns])

    fixed = []
    for p in report["proxies"]:
        if not p.get("curve") and p.get("epochs") is None:
            secs = p.get("seconds") or {}
            fixed.append(row(p["label"] + " (no training)", p["stats"], p["set"].get("num_images") or 0,
                             sum(secs.values()) / len(secs) if secs else 0.0))
    out = []
    for e in sorted({c["epochs"] for p in curved for c in p["curve"]}):
        rows = [row(p["label"], c["stats"], c["image_passes"], c["seconds"], _amortized_distillation(report, p))
                for p in curved for c in p["curve"] if c["epochs"] == e]
        if ns:
            rows.append(["search oracle (best of the N drawn)", "", "", "", "", ""] + [""] * (2 * len(ks))
                        + _oracle_row(report))
        out.append((f"{e} proxy epochs", rows + fixed, headers))
    return out


def paired_rows(report: dict) -> tuple[list[list], list[str]]:
    """The paired comparisons (``report["paired"]``) as one table: a row per pair, a column per proxy budget.

    Each cell is rho(A) - rho(B) with its paired-bootstrap 95 % interval; ``*``
    marks an interval that excludes 0.
    """
    pairs = report.get("paired") or []
    budgets = sorted({pt["epochs"] for q in pairs for pt in q["points"]}, key=lambda e: (e is None, e or 0))
    headers = ["rho(A) - rho(B)", "kind"] + [("no training" if e is None else f"{e} proxy epochs") for e in budgets]
    rows = []
    for q in pairs:
        by = {pt["epochs"]: pt for pt in q["points"]}
        cells = []
        for e in budgets:
            pt = by.get(e)
            if pt is None or pt.get("diff") is None:
                cells.append("-")
                continue
            ci = pt.get("ci")
            sig = "*" if ci and (ci[0] > 0 or ci[1] < 0) else ""
            cells.append(f"{pt['diff']:+.3f}{sig}" + (f" [{ci[0]:+.2f}, {ci[1]:+.2f}]" if ci else ""))
        rows.append([f"{q['a']} - {q['b']}", q["kind"]] + cells)
    return rows, headers


def _amortized_distillation(report: dict, p: dict) -> float:
    """Seconds of making the proxy's set(s), divided over the candidates (an ensemble adds its parts')."""
    by_label = {q["label"]: q for q in report["proxies"]}
    parts = [by_label[c] for c in p.get("components", []) if c in by_label] or [p]
    total = sum(q.get("distill_seconds") or 0.0 for q in parts)
    return total / max(1, len(report["candidates"]))


def curve_series(report: dict) -> list[dict]:
    """The points of :func:`fyi_apps.plots.rank_curves` for every proxy of the report.

    The seconds axis counts a distilled set's making, amortized over the
    candidates it ranks (``distill_seconds`` / candidates).
    """
    series = []
    for p in report["proxies"]:
        extra = _amortized_distillation(report, p)
        pts = p.get("curve") or [{"image_passes": 0 if p.get("epochs") is None and p.get("kind") != "zerocost"
                                  else (p["set"].get("num_images") or 0) * (p.get("epochs") or 1),
                                  "seconds": (sum((p.get("seconds") or {}).values()) / len(p["seconds"]))
                                  if p.get("seconds") else 0.0, "stats": p["stats"]}]
        series.append({"label": p["label"], "points": [
            {"image_passes": c["image_passes"], "seconds": None if c["seconds"] is None else c["seconds"] + extra,
             "rho": c["stats"].get("spearman"),
             "low": ((c["stats"].get("ci") or {}).get("spearman") or [None, None])[0],
             "high": ((c["stats"].get("ci") or {}).get("spearman") or [None, None])[1]} for c in pts]})
    return series


def candidate_rows(report: dict) -> tuple[list[list], list[str]]:
    """One row per candidate: ground-truth accuracy and rank, each proxy's accuracy."""
    t = report["truth"]["accs"]
    ranks = report["proxies"][0]["stats"]["truth_rank"] if report["proxies"] else {}
    macs = report.get("mmacs") or {}
    headers = ["candidate", "M MACs", f"truth ({report['truth']['label']}) %", "rank"]
    headers += [p["label"] + ("" if p.get("kind") in _SCORES else " %") for p in report["proxies"]]
    order = sorted(report["candidates"], key=lambda c: -t.get(c, -1))
    rows = []
    for c in order:
        row = [c, _fmt(macs.get(c), 1), _fmt(100 * t[c], 2) if c in t else "failed", ranks.get(c, "-")]
        row += [("failed" if c not in p["accs"] else f"{p['accs'][c]:.4g}" if p.get("kind") in _SCORES
                 else _fmt(100 * p["accs"][c], 2)) for p in report["proxies"]]
        rows.append(row)
    return rows, headers


def short_name(candidate: str) -> str:
    """A compact label of a candidate for plots (NB201 cells as their six ops, ConvNets by their knobs)."""
    if candidate.lower().startswith("nb201:"):
        abbrev = {"none": "0", "skip_connect": "s", "nor_conv_1x1": "1", "nor_conv_3x3": "3", "avg_pool_3x3": "p"}
        cell = candidate[6:].split(";")[0]
        return "".join(abbrev.get(e.split("~")[0], "?") for node in cell.split("+") for e in node.strip("|").split("|"))
    return candidate.split(":", 1)[-1][:24]


def write_report(report: dict, out_dir: str | os.PathLike, *, name: str = "nas", command: str | None = None,
                 point_labels: str = "rank") -> dict:
    """``<name>.json``, ``<name>.md`` (tables) and ``<name>.png`` (proxy vs truth scatter) in ``out_dir``.

    ``point_labels``: what is written next to each scatter point: ``rank`` (its ground-truth rank), ``name``
    (:func:`short_name`; NB201 cells as six letters, one per edge: 0 none, s skip, 1/3 conv, p pool) or ``none``.
    """
    if point_labels not in ("rank", "name", "none"):
        from ...errors import FyiError

        raise FyiError(f"point_labels must be rank, name or none, got {point_labels!r}")
    from ...plots import rank_scatter
    from ...report import table

    out = Path(out_dir)
    report = dict(report)  # a RankingResult or a plain report
    report, json_path = write_json_report(report, out / f"{name}.json", command)
    panels = []
    if point_labels != "none" and len(report["candidates"]) > 200:
        point_labels = "none"  # a label per point is unreadable beyond a few hundred candidates
    for p in report["proxies"]:
        ok = [c for c in report["candidates"] if c in p["accs"] and c in report["truth"]["accs"]]
        xs = [p["accs"][c] for c in ok]
        if p.get("kind") in ("zerocost", "ensemble"):  # heavy-tailed scores: plot their rank percentile
            from scipy.stats import rankdata

            xs = list(rankdata(xs) / max(1, len(xs)) * 100.0)
        panels.append({"label": p["label"], "proxy": xs,
                       "truth": [report["truth"]["accs"][c] for c in ok],
                       "ranks": [p["stats"]["truth_rank"][c] for c in ok] if point_labels == "rank" else None,
                       "point_labels": [short_name(c) for c in ok] if point_labels == "name" else None,
                       "stats": p["stats"],
                       "best": p["stats"]["best"]["candidate"], "names": ok,
                       **({"xscale": 1.0, "xlabel": p["label"], "xlog": True} if p.get("kind") == "score" else
                          {"xscale": 1.0, "xlabel": f"{p['label']} (rank percentile)"}
                          if p.get("kind") in ("zerocost", "ensemble") else {})})
    png = rank_scatter(panels, out / f"{name}.png",
                       title=f"{report['dataset']}: proxy vs ground truth ({report['truth']['label']}, "
                             f"{report['truth']['epochs']} epochs)" + {"rank": "; numbers = ground-truth rank",
                                                                      "name": "; labels = candidates",
                                                                      "none": ""}[point_labels])
    srows, sheads = summary_rows(report)
    crows, cheads = candidate_rows(report)
    curves = curve_rows(report)
    paths = {"json": json_path, "png": png}
    curve_md = ""
    if curves:
        from ...plots import rank_curves

        paths["curves_png"] = rank_curves(curve_series(report), out / f"{name}-curves.png",
                                          title=f"{report['dataset']}: rank correlation against proxy compute "
                                                f"({len(report['candidates'])} candidates)")
        curve_md = "".join(f"\n\n### {title}\n\n" + table(rows, heads, markdown=True) for title, rows, heads in curves)
    if report.get("paired"):
        prows, pheads = paired_rows(report)
        curve_md += ("\n\n### Paired differences\n\nrho of proxy A minus rho of proxy B on the same candidates, "
                     "95 % interval from a paired bootstrap over the candidates (1,000 resamples); * = the "
                     "interval excludes 0.\n\n" + table(prows, pheads, markdown=True))
    md = (f"Ranking of {len(report['candidates'])} candidates on {report['dataset']}; ground truth: "
          f"{report['truth']['label']} ({report['truth']['set']['num_images']} images, {report['truth']['epochs']} "
          f"epochs); seeds {report['seeds']}. Intervals: percentile bootstrap over the candidates (1,000 "
          f"resamples); p: the test of no correlation (scipy.stats); search N: the true accuracy of the proxy's "
          f"pick among N random candidates, mean +- std over 1,000 draws.\n\n"
          + table(srows, sheads, markdown=True) + curve_md + "\n\n" + table(crows, cheads, markdown=True) + "\n")
    paths["md"] = write_markdown(md, out / f"{name}.md", command)
    return paths


def write_json_report(report: dict, path: Path, command: str | None = None) -> tuple[dict, Path]:
    """``report`` (plus the ``command`` that made it, if given) as JSON at ``path``: ``(report, path)``."""
    from ...runtime import write_json

    report = {**report, "command": command} if command else dict(report)
    return report, write_json(path, report)


def write_markdown(md: str, path: Path, command: str | None = None) -> Path:
    """The Markdown text ``md`` (plus a ``Command:`` line, if given) at ``path``, written atomically."""
    from ...runtime import atomic_path

    if command:
        md += f"\nCommand: `{command}`\n"
    with atomic_path(path) as tmp:
        tmp.write_text(md)
    return path
