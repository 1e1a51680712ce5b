"""mkdocs hook: the result figures committed under ``benchmarks/results/`` appear in the site.

The pages link a figure as ``../benchmarks/results/NAME.png``, the path that works
when the Markdown is read in the repository.  The site has no such folder, so
this hook adds every figure a page links to the site as ``figures/NAME.png``
and points the links there.  A link to a missing figure stays as it is, and
``mkdocs build --strict`` fails on it.
"""
from __future__ import annotations

import re
from pathlib import Path

from mkdocs.structure.files import File

LINK = re.compile(r"\]\(\.\./benchmarks/results/([^)\s]+)\)")
SITE_FOLDER = "figures/"


def _results_dir(config) -> Path:
    return Path(config["config_file_path"]).resolve().parent / "benchmarks" / "results"


def on_files(files, config):
    results = _results_dir(config)
    linked = set()
    for page in Path(config["docs_dir"]).glob("*.md"):
        linked.update(LINK.findall(page.read_text(encoding="utf-8")))
    for rel in sorted(linked):
        source = results / rel
        if source.is_file():
            files.append(File.generated(config, SITE_FOLDER + rel, abs_src_path=str(source)))
    return files


def on_page_markdown(markdown, page, config, files):
    results = _results_dir(config)

    def relink(match):
        rel = match.group(1)
        return f"]({SITE_FOLDER}{rel})" if (results / rel).is_file() else match.group(0)

    return LINK.sub(relink, markdown)
