"""The benchmarks use public names of fyi_apps only (ARCHITECTURE.md, "Benchmarks: the harness").

The public surface: the facade ``fyi_apps``, its top-level modules and packages (``fyi_apps.runtime``,
``fyi_apps.distill``) and the task modules (``fyi_apps.tasks.nas``); a module inside a package
(``fyi_apps.distill.dm``) is not part of it.  A name is public when it does not start with ``_`` and, where its
module lists ``__all__``, is listed there.  Checked on the source: every import (inside functions too) and every
attribute read from a module bound by an import (``fyi.evaluate``, ``nas.plan``).
"""
from __future__ import annotations

import ast
import importlib
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = sorted((ROOT / "benchmarks").glob("*.py"))


def public_module(name: str) -> bool:
    parts = name.split(".")
    if parts[0] != "fyi_apps" or any(p.startswith("_") for p in parts):
        return False
    return len(parts) <= 2 or (len(parts) == 3 and parts[1] == "tasks")


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def public_name(module: str, name: str) -> bool:
    if name.startswith("_"):
        return False
    listed = getattr(importlib.import_module(module), "__all__", None)
    return listed is None or name in listed


def problems(source: str, where: str = "<source>") -> list[str]:
    """Every use of a name outside the public surface in ``source``."""
    tree = ast.parse(source)
    bound: dict[str, str] = {}  # local name -> the fyi_apps module it is bound to
    out: list[str] = []

    def module_use(module: str, line: int) -> bool:
        if not public_module(module):
            out.append(f"{where}:{line}: module {module} is not public")
            return False
        return True

    def name_use(module: str, name: str, line: int) -> str | None:
        """Check ``module.name``; return the submodule it is, if it is one."""
        sub = f"{module}.{name}"
        if _is_module(sub) and name not in (getattr(importlib.import_module(module), "__all__", None) or ()):
            return sub if module_use(sub, line) else None  # a submodule (not a name its package exports)
        if not public_name(module, name):
            out.append(f"{where}:{line}: {module}.{name} is not public")
        return None

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "fyi_apps" and module_use(a.name, node.lineno):
                    bound[a.asname or "fyi_apps"] = a.asname and a.name or "fyi_apps"
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "fyi_apps":
            if module_use(node.module, node.lineno):
                for a in node.names:
                    sub = name_use(node.module, a.name, node.lineno)
                    if sub:
                        bound[a.asname or a.name] = sub
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in bound:
            name_use(bound[node.value.id], node.attr, node.lineno)
    return out


@pytest.mark.parametrize("path", BENCHMARKS, ids=lambda p: p.name)
def test_benchmarks_import_public_names_only(path):
    assert problems(path.read_text(), path.name) == []


def test_the_check_finds_private_modules_and_names():
    src = ("from fyi_apps.distill.dm import real_chunk\n"
           "from fyi_apps.runtime import _json_default\n"
           "import fyi_apps as fyi\n"
           "from fyi_apps.tasks import nas\n"
           "def f():\n"
           "    from fyi_apps.distill import experts\n"
           "    fyi._LAZY, nas.plan, nas.runner\n")
    found = problems(src)
    assert any("fyi_apps.distill.dm is not public" in p for p in found)
    assert any("fyi_apps.runtime._json_default is not public" in p for p in found)
    assert any("fyi_apps._LAZY is not public" in p for p in found)
    assert any("fyi_apps.distill.experts is not public" in p for p in found)
    assert any("fyi_apps.tasks.nas.runner is not public" in p for p in found)
    assert not any("nas.plan" in p for p in found)
    assert problems("import fyi_apps as fyi\nfrom fyi_apps.distill import real_gradient\nfyi.evaluate\n") == []
