"""The documentation is true: its code runs, its site builds strictly, the README stays a short guide.

* Every ```python block of README.md and docs/*.md runs: the blocks of one page run
  in order, each in a fresh namespace, in one fresh interpreter per page, in an
  empty working folder (files a block writes, such as ``dm_fyi.safetensors``, are
  there for the page's later blocks, as for a reader following the page) with
  ``FYI_CACHE`` in the test's temporary folder.  The only block exempt is the
  drop-in snippet between ``<!-- cl-snippet -->`` markers, a fragment that needs the
  reader's model and benchmark: tests/test_cl_snippet.py runs it.
* ``mkdocs build --strict`` passes (skipped where the ``docs`` extra is not installed), and
  the API reference shows no raw Sphinx role: docs/hooks/sphinx_roles.py makes the
  docstrings' ``:func:`x``` cross-references or code spans (its conversion is tested here
  without mkdocs, its Griffe look-up where Griffe is installed).
* README.md is at most about 350 lines, starts with the two set-up commands that
  ``.ci/run`` reads, and its links into docs/ point at pages and headings that exist.
"""
from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
MAX_README_LINES = 350
SETUP_COMMANDS = [
    'python3 -m venv .venv && .venv/bin/pip install -e ".[dev]" && .venv/bin/fyi quickstart',
    ".venv/bin/python -m pytest -q",
]
PAGE_TIMEOUT_S = 300

FENCE = re.compile(r"^```([\w+-]*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
TESTED_ELSEWHERE = re.compile(r"<!-- cl-snippet -->.*?<!-- /cl-snippet -->", re.S)

# Runs the block files given on its command line in order, each as __main__ in a fresh namespace;
# the first failure prints which block and its traceback and exits 1.  The docs use today's names:
# a fyi-apps deprecation warning (an old name) is an error.
RUNNER = """
import runpy, sys, traceback, warnings
from fyi_apps.deprecated import FyiDeprecationWarning
warnings.simplefilter("error", FyiDeprecationWarning)
for path in sys.argv[1:]:
    try:
        runpy.run_path(path, run_name="__main__")
    except BaseException:
        traceback.print_exc()
        sys.exit(f"snippet failed: {path}")
"""


def python_blocks(text: str) -> list[tuple[int, str]]:
    """``(line number, code)`` of every ```python block outside the tested-elsewhere markers."""
    exempt = [m.span() for m in TESTED_ELSEWHERE.finditer(text)]
    blocks = []
    for m in FENCE.finditer(text):
        if m.group(1) != "python" or any(a <= m.start() < b for a, b in exempt):
            continue
        blocks.append((text.count("\n", 0, m.start()) + 2, m.group(2)))
    return blocks


def run_blocks(name: str, blocks: list[tuple[int, str]], tmp_path: Path) -> subprocess.CompletedProcess:
    """Run the blocks of one page as described in the module docstring."""
    work, snippets = tmp_path / "work", tmp_path / "snippets"
    work.mkdir(exist_ok=True)
    snippets.mkdir(exist_ok=True)
    stem = re.sub(r"\W", "_", name)
    paths = []
    for line, code in blocks:
        path = snippets / f"{stem}_line{line}.py"
        path.write_text(code)
        paths.append(str(path))
    env = {**os.environ, "FYI_CACHE": str(tmp_path / "cache"), "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1",
           "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-c", RUNNER, *paths], cwd=work, env=env, capture_output=True,
                          text=True, timeout=PAGE_TIMEOUT_S)


def _page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


PAGES_WITH_CODE = [p for p in PAGES if python_blocks(p.read_text())]


@pytest.mark.parametrize("page", PAGES_WITH_CODE, ids=_page_id)
def test_every_python_snippet_runs(page, tmp_path):
    blocks = python_blocks(page.read_text())
    done = run_blocks(_page_id(page), blocks, tmp_path)
    assert done.returncode == 0, f"{_page_id(page)}: {done.stderr[-4000:]}"


def test_the_snippet_runner_reports_a_broken_block(tmp_path):
    text = "intro\n\n```python\nx = 1\n```\n\n```python\nprint(x)  # a fresh namespace: x is gone\n```\n"
    blocks = python_blocks(text)
    assert [line for line, _ in blocks] == [4, 8]
    done = run_blocks("broken.md", blocks, tmp_path)
    assert done.returncode != 0
    assert "NameError" in done.stderr and "broken_md_line8.py" in done.stderr


def test_only_fenced_python_counts_and_the_cl_snippet_is_exempt():
    text = ("```bash\nfyi quickstart\n```\n```py\nnot run\n```\n<!-- cl-snippet -->\n```python\nfragment(model)\n```\n"
            "<!-- /cl-snippet -->\n```python\nran = True\n```\n")
    assert python_blocks(text) == [(13, "ran = True\n")]


def test_every_page_is_tested():
    assert README in PAGES_WITH_CODE and len(python_blocks(README.read_text())) >= 6  # the jobs' snippets
    assert (DOCS / "python.md") in PAGES_WITH_CODE


# ------------------------------------------------------------------ the README as a guide

def test_readme_is_a_short_guide_that_starts_with_the_setup_commands():
    text = README.read_text()
    assert len(text.splitlines()) <= MAX_README_LINES, "README.md is the user guide: move details to docs/"
    first = FENCE.search(text)
    assert first.group(1) == "bash" and first.group(2).splitlines() == SETUP_COMMANDS  # .ci/run reads these
    assert "## Reproduction status" in text


def slug(heading: str) -> str:
    """The anchor of a heading, as python-markdown's toc (mkdocs) and GitHub both make it for plain headings."""
    text = re.sub(r"[^\w\s-]", "", heading.strip().lower())
    return re.sub(r"[-\s]+", "-", text).strip("-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text())
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*#*$", text, re.M)}


def test_readme_links_into_docs_resolve():
    links = re.findall(r"\]\((docs/[^)#\s]*)(?:#([^)\s]+))?\)", README.read_text())
    assert links
    for target, anchor in links:
        path = ROOT / target
        assert path.exists(), f"README links to missing {target}"
        if anchor:
            assert anchor in anchors(path), f"README links to {target}#{anchor}: no such heading"


def _status_rows(text: str, link_prefix: str) -> list[str]:
    body = text.split("## Reproduction status", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in body.splitlines() if line.startswith("| ")]
    return [row.replace(f"]({link_prefix}", "](") for row in rows]


def test_the_status_table_is_the_same_in_readme_and_docs():
    readme = _status_rows(README.read_text(), "docs/")
    assert len(readme) >= 10
    assert _status_rows((DOCS / "results.md").read_text(), "") == readme


# ------------------------------------------------------------------ the site

@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site, built once with ``mkdocs build --strict`` (skips where the ``docs`` extra is not installed)."""
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    pytest.importorskip("material")
    out = tmp_path_factory.mktemp("site")
    # no --quiet: it hides the warnings from --strict, which then passes a broken link
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
                           "-d", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


def test_the_site_builds_strictly(site):
    api = (site / "api" / "index.html").read_text()
    for name in ("load_dataset", "DistillConfig", "Callback", "EvalResult", "evaluate_images", "SyntheticSet",
                 "save_synset", "list_models", "unequalness", "make_memory", "RankingResult", "NasConfig"):
        assert name in api, f"the API reference lacks {name}"


# ------------------------------------------------------------------ Sphinx roles in the API reference

# a role as it would come through, before or after Markdown; without its first colon where a Returns
# section's "type: description" split took it
RAW_ROLE = re.compile(r"\b(?:func|meth|class|exc|mod|data|attr|const|obj|type):(?:`|<code>)")


def _sphinx_roles():
    spec = importlib.util.spec_from_file_location("sphinx_roles", DOCS / "hooks" / "sphinx_roles.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sphinx_roles_become_optional_cross_references_or_code_spans():
    roles = _sphinx_roles()
    known = {"SyntheticSet": "fyi_apps.synset.core.SyntheticSet", "load_synset": "fyi_apps.synset.fileformat.load_synset",
             ".report": "fyi_apps.tasks.nas.report"}
    asked = []

    def resolve(role, target):
        asked.append((role, target))
        return known.get(target.rpartition(".")[2] if target.startswith("fyi_apps") else target)

    text = ("A :class:`~fyi_apps.synset.SyntheticSet` from :py:func:`load_synset`, see :mod:`.report`;\n"
            ":func:`scipy.stats.bootstrap`, :meth:`the loader <load_synset>`, :class:`!SyntheticSet`.\n"
            "```python\n:func:`in_a_code_block`\n```\n``:func:`literal` `` stays.")
    assert roles.convert_roles(text, resolve) == (
        'A <autoref identifier="fyi_apps.synset.core.SyntheticSet" optional><code>SyntheticSet</code></autoref> from '
        '<autoref identifier="fyi_apps.synset.fileformat.load_synset" optional><code>load_synset()</code></autoref>, '
        'see <autoref identifier="fyi_apps.tasks.nas.report" optional><code>report</code></autoref>;\n'
        '`scipy.stats.bootstrap()`, <autoref identifier="fyi_apps.synset.fileformat.load_synset" optional>'
        '<code>the loader</code></autoref>, `SyntheticSet`.\n'
        "```python\n:func:`in_a_code_block`\n```\n``:func:`literal` `` stays.")
    assert ("class", "SyntheticSet") not in asked  # ! suppresses the link: not even looked up


def test_relative_role_targets_are_looked_up_innermost_first():
    roles = _sphinx_roles()
    scopes = ["fyi_apps.synset.core.SyntheticSet.show", "fyi_apps.synset.core.SyntheticSet", "fyi_apps.synset.core",
              "fyi_apps.synset", "fyi_apps"]
    assert roles.candidate_paths("decoded", scopes, "fyi_apps.synset.core", False) == [
        *(f"{scope}.decoded" for scope in scopes), "decoded"]
    assert roles.candidate_paths(".codec", scopes[2:], "fyi_apps.synset.core", False) == ["fyi_apps.synset.codec"]
    assert roles.candidate_paths(".codec", scopes[3:], "fyi_apps.synset", True) == ["fyi_apps.synset.codec"]
    assert roles.candidate_paths("..data.Dataset", scopes[2:], "fyi_apps.synset.core", False) == [
        "fyi_apps.data.Dataset"]


def test_every_role_in_the_package_is_converted():
    """No docstring of fyi_apps holds a role that the conversion misses (a new role, one split over lines ...)."""
    roles = _sphinx_roles()
    found = 0
    for path in sorted((ROOT / "fyi_apps").rglob("*.py")):
        text = path.read_text()
        found += len(roles.ROLE.findall(text))
        left = RAW_ROLE.findall(roles.convert_roles(text, lambda role, target: None))
        assert not left, f"{path.relative_to(ROOT)}: {left} not converted"
    assert found > 100


def test_the_griffe_extension_resolves_the_roles_of_the_package():
    griffe = pytest.importorskip("griffe")
    loader = griffe.GriffeLoader(search_paths=[str(ROOT)], extensions=griffe.load_extensions(
        str(DOCS / "hooks" / "sphinx_roles.py")))
    pkg = loader.load("fyi_apps")

    def doc(path):
        return pkg[path.removeprefix("fyi_apps.")].docstring.value

    link = '<autoref identifier="{}" optional><code>{}</code></autoref>'.format
    # ~ and an alias: the canonical path
    assert link("fyi_apps.synset.core.SyntheticSet", "SyntheticSet") in doc("fyi_apps.api.distill")
    # a method named bare in a function of another module: the one such name in the package
    assert link("fyi_apps.synset.core.SyntheticSet.decoded", "decoded()") in doc(
        "fyi_apps.synset.exporters.export_imagefolder")
    # .name in a package's __init__: its submodule
    assert link("fyi_apps.synset.codec", "codec") in doc("fyi_apps.synset")
    # outside the package: a code span; a module where :func: asks for a function: a code span
    assert "`scipy.stats.bootstrap()`" in doc("fyi_apps.tasks.nas.stats")
    assert "`fyi_apps.evaluate()`" in doc("fyi_apps.evaluate.evaluate_synset")
    assert not RAW_ROLE.search(doc("fyi_apps.tasks.nas"))


def test_the_api_reference_shows_no_raw_sphinx_role(site):
    api = (site / "api" / "index.html").read_text()
    assert not RAW_ROLE.findall(api), f"raw Sphinx roles in the API reference: {RAW_ROLE.findall(api)[:5]}"
    assert "<autoref" not in api and "&lt;autoref" not in api  # every optional reference was resolved or dropped
    link = re.compile(r'<a class="autorefs autorefs-internal"[^>]*href="#fyi_apps\.synset\.SyntheticSet">'
                      r"<code>SyntheticSet</code></a>")
    assert len(link.findall(api)) >= 3, "the roles naming SyntheticSet do not link to its entry"
    assert re.search(r'<span title="fyi_apps\.errors\.FyiError"><code>FyiError</code></span>', api)  # not on the site
