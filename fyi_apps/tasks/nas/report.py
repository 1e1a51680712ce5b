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


def summary_rows(report: dict) -> tuple[list[list], list[str]]:
    """One row per proxy: rho, tau, top-k figures, proxy's best, cost ratio."""
    ks = sorted({k for p in report["proxies"] for k in p["stats"]["top"]}, key=int)
    connected = any("stats_connected" in p for p in report["proxies"])
    headers = ["proxy", "images", "epochs", "rho", "tau"]
    if connected:
        headers += ["rho / tau (connected cells)"]
    for k in ks:
        headers += [f"rho@{k}", f"tau@{k}", f"overlap@{k}"]
    headers += ["best: truth acc % (rank)", "oracle %", "proxy compute (s)", "compute saved"]
    rows = []
    for p in report["proxies"]:
        s = p["stats"]
        row = [p["label"], p["set"]["num_images"] or "-", p["epochs"] or "-", _fmt(s["spearman"]), _fmt(s["kendall"])]
        if connected:
            sc = p.get("stats_connected") or s
            row += [f"{_fmt(sc['spearman'])} / {_fmt(sc['kendall'])}"]
        for k in ks:
            t = s["top"].get(k)
            row += [_fmt(t and t["spearman"]), _fmt(t and t["kendall"]), _fmt(t and t["overlap"], 2)]
        b = s["best"]
        saved = p["cost"]["saved"]
        row += [f"{100 * b['truth_acc']:.2f} ({b['truth_rank']}/{s['n']})", f"{100 * b['oracle_acc']:.2f}",
                f"{p['cost']['proxy_seconds']:.0f}", "-" if saved is None else f"{saved:.1f}x"]
        rows.append(row)
    return rows, headers


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


def write_report(report: dict, out_dir: str | os.PathLike, *, name: str = "nas", command: str | None = None) -> dict:
    """``<name>.json``, ``<name>.md`` (tables) and ``<name>.png`` (proxy vs truth scatter) in ``out_dir``."""
    from ...plots import rank_scatter
    from ...report import table

    out = Path(out_dir)
    report, json_path = write_json_report(report, out / f"{name}.json", command)
    panels = []
    for p in report["proxies"]:
        ok = [c for c in report["candidates"] if c in p["accs"] and c in report["truth"]["accs"]]
        panels.append({"label": p["label"], "proxy": [p["accs"][c] for c in ok],
                       "truth": [report["truth"]["accs"][c] for c in ok],
                       "ranks": [p["stats"]["truth_rank"][c] for c in ok], "stats": p["stats"],
                       "best": p["stats"]["best"]["candidate"], "names": ok,
                       **({"xscale": 1.0, "xlabel": p["label"], "xlog": True} if p.get("kind") == "score" else
                          {"xscale": 1.0, "xlabel": p["label"]} if p.get("kind") == "zerocost" else {})})
    png = rank_scatter(panels, out / f"{name}.png",
                       title=f"{report['dataset']}: proxy vs ground truth ({report['truth']['label']}, "
                             f"{report['truth']['epochs']} epochs); numbers = ground-truth rank")
    srows, sheads = summary_rows(report)
    crows, cheads = candidate_rows(report)
    md = (f"Ranking of {len(report['candidates'])} candidates on {report['dataset']}; ground truth: "
          f"{report['truth']['label']} ({report['truth']['set']['num_images']} images, {report['truth']['epochs']} "
          f"epochs); seeds {report['seeds']}.\n\n" + table(srows, sheads, markdown=True) + "\n\n"
          + table(crows, cheads, markdown=True) + "\n")
    return {"json": json_path, "png": png, "md": write_markdown(md, out / f"{name}.md", command)}


def write_json_report(report: dict, path: Path, command: str | None = None) -> tuple[dict, Path]:
    """``report`` (plus the ``command`` that made it, if given) as JSON at ``path``: ``(report, path)``."""
    from ...runtime import write_json

    if command:
        report = {**report, "command": command}
    return report, write_json(path, report)


def write_markdown(md: str, path: Path, command: str | None = None) -> Path:
    """The Markdown text ``md`` (plus a ``Command:`` line, if given) at ``path``, written atomically."""
    from ...runtime import atomic_path

    if command:
        md += f"\nCommand: `{command}`\n"
    with atomic_path(path) as tmp:
        tmp.write_text(md)
    return path
