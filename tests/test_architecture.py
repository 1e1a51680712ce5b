"""The layout rules of ARCHITECTURE.md, checked on the source: layers, no import cycles, file size.

Every module of ``fyi_apps`` belongs to a layer (``LAYERS``, lowest first); a
module may import from its own layer or lower ones, never from a higher one,
and no set of modules may import each other in a circle.  Imports inside
functions count; imports under ``if TYPE_CHECKING:`` (annotations only) do not.

Modules imported from strings (``importlib.import_module("fyi_apps.x")``,
``__import__``, ``"fyi_apps.x:function"`` specs) are refused, and count as
imports for the layer and cycle checks: an import statement would do, and the
checks could not see the edge otherwise.

``python tests/test_architecture.py`` prints each module's layer and imports.
"""
from __future__ import annotations

import ast
import re
import sys
from typing import Collection
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "fyi_apps"

#: (module prefix, layer); the longest matching prefix wins
LAYERS = [
    # L0: no dependencies inside the library but each other
    ("fyi_apps.errors", 0), ("fyi_apps.runtime", 0), ("fyi_apps.validate", 0), ("fyi_apps.report", 0),
    ("fyi_apps.plots", 0),
    ("fyi_apps.registry", 0), ("fyi_apps.deprecated", 0), ("fyi_apps.records", 0),
    ("fyi_apps.options", 0), ("fyi_apps.distributed", 0),
    # L1: tensors in, tensors out: augmentation, whitening, networks
    ("fyi_apps.augment", 1), ("fyi_apps.zca", 1), ("fyi_apps.networks", 1),
    # L2: datasets
    ("fyi_apps.data", 2),
    # L3: synthetic-set files, training primitives
    ("fyi_apps.synset", 3), ("fyi_apps.training", 3),
    # L4: the paper's protocol, baselines and distillation
    ("fyi_apps.evaluate", 4), ("fyi_apps.baselines", 4), ("fyi_apps.distill", 4),
    # L5: the tasks that consume synthetic sets
    ("fyi_apps.tasks", 5),
    # L6: entry points: command line, quickstart, the facade
    ("fyi_apps.cli", 6), ("fyi_apps.quickstart", 6), ("fyi_apps.api", 6), ("fyi_apps", 6),
]
MAX_LINES = 500


def modules() -> dict[str, Path]:
    out = {}
    for p in sorted(PKG.rglob("*.py")):
        parts = p.relative_to(PKG.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = p
    return out


def layer_of(name: str) -> int:
    best = max((prefix for prefix, _ in LAYERS if name == prefix or name.startswith(prefix + ".")), key=len)
    return dict(LAYERS)[best]


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or \
        (isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _import_nodes(tree: ast.AST):
    stack = [tree]
    while stack:
        node = stack.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                stack.extend(child.orelse)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child
            stack.append(child)


#: a ``"module:function"`` spec naming a library module
_SPEC = re.compile(r"fyi_apps(?:\.\w+)*:\w+")


def _static_text(node: ast.AST, name: str, package: str) -> str | None:
    """The value of a string literal or an f-string made only of literals, ``__name__`` and ``__package__``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if not isinstance(node, ast.JoinedStr):
        return None
    parts = []
    for v in node.values:
        if isinstance(v, ast.Constant):
            parts.append(str(v.value))
        elif isinstance(v, ast.FormattedValue) and isinstance(v.value, ast.Name) and v.value.id in ("__name__",
                                                                                                   "__package__"):
            parts.append(name if v.value.id == "__name__" else package)
        else:
            return None
    return "".join(parts)


def _is_import_call(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and bool(node.args) and (
        (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
        or (isinstance(node.func, ast.Name) and node.func.id in ("import_module", "__import__")))


def string_imports(tree: ast.AST, name: str, package: str, known: Collection[str] = ()) -> list[tuple[int, str, str]]:
    """``(line, module, how)`` of each library module ``tree`` imports through a string.

    ``how`` is ``"call"`` (``importlib.import_module(...)`` / ``__import__(...)``
    with a literal name; relative names resolved against ``package``),
    ``"spec"`` (a ``"fyi_apps.x:function"`` string) or ``"table"`` (in a module
    that imports names computed at run time, every string naming a module of
    ``known``: the table the names come from).
    """
    out, dynamic = [], False
    for node in ast.walk(tree):
        if _is_import_call(node):
            text = _static_text(node.args[0], name, package)
            if text is not None and text.startswith("."):
                level = len(text) - len(text.lstrip("."))
                base = package.split(".")[: len(package.split(".")) - (level - 1)]
                text = ".".join(base + ([text.lstrip(".")] if text.lstrip(".") else []))
            if text is None:
                dynamic = True
            elif text.startswith("fyi_apps"):
                out.append((node.lineno, text, "call"))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _SPEC.fullmatch(node.value):
            out.append((node.lineno, node.value.partition(":")[0], "spec"))
    if dynamic:
        for node in ast.walk(tree):
            text = _static_text(node, name, package) if isinstance(node, (ast.Constant, ast.JoinedStr)) else None
            if text in known and text != name:
                out.append((node.lineno, text, "table"))
    return out


def imports() -> dict[str, set[str]]:
    """Module -> the library modules it imports (resolved to modules that exist), from strings too."""
    mods = modules()

    def known(name: str) -> str | None:
        """The module an imported name lives in (a package for its attributes); the facade only if named."""
        while name not in mods and name.count(".") > 1:
            name = name.rsplit(".", 1)[0]
        return name if name in mods else None

    graph = {}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        targets = set()
        tree = ast.parse(path.read_text())
        for node in _import_nodes(tree):
            if isinstance(node, ast.Import):
                found = [a.name for a in node.names]
            else:
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join(up + ([node.module] if node.module else []))
                subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in mods]
                found = subs if len(subs) == len(node.names) else [base, *subs]
            for t in found:
                m = known(t) if t.startswith("fyi_apps") else None
                if m and m != name:
                    targets.add(m)
        for _, t, _ in string_imports(tree, name, package, mods):  # an import from a string is an edge too
            m = known(t)
            if m and m != name:
                targets.add(m)
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(max(10000, sys.getrecursionlimit()))
    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_every_module_has_a_layer():
    """A new top-level module must be placed in ``LAYERS`` (and in ARCHITECTURE.md's table)."""
    prefixes = [p for p, _ in LAYERS if p != "fyi_apps"]
    unplaced = sorted(m for m in modules() if m != "fyi_apps"
                      and not any(m == p or m.startswith(p + ".") for p in prefixes))
    assert unplaced == []


def test_no_import_cycles():
    assert cycles(imports()) == []


def test_no_import_from_a_higher_layer():
    graph = imports()
    upward = sorted(f"{m} (L{layer_of(m)}) -> {t} (L{layer_of(t)})"
                    for m, ts in graph.items() for t in ts if layer_of(t) > layer_of(m))
    assert upward == []


def test_no_source_file_over_the_limit():
    long = {str(p.relative_to(PKG.parent)): n for p in PKG.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_the_checker_sees_a_cycle_and_an_upward_import():
    """The rules above can fail: a made-up graph with both faults is caught."""
    graph = {"fyi_apps.data": {"fyi_apps.evaluate"}, "fyi_apps.evaluate": {"fyi_apps.data"}}
    assert cycles(graph) == [["fyi_apps.data", "fyi_apps.evaluate"]]
    assert layer_of("fyi_apps.data.cifar") == 2 and layer_of("fyi_apps.evaluate") > layer_of("fyi_apps.data")


def test_no_module_is_imported_from_a_string():
    """``importlib.import_module("fyi_apps...")`` and ``"fyi_apps.x:f"`` specs hide edges: use import statements
    (inside a function when the import must wait)."""
    found = []
    for name, path in modules().items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        found += [f"{path.relative_to(PKG.parent)}:{line} imports {m} from a string"
                  for line, m, how in string_imports(ast.parse(path.read_text()), name, package) if how != "table"]
    assert found == []


def test_the_checker_sees_imports_from_strings():
    """Literal names, relative names, ``__package__`` f-strings and ``module:function`` specs are all found."""
    src = '''
import importlib
def f(name):
    importlib.import_module("fyi_apps.evaluate")
    __import__("fyi_apps.tasks.nas")
    importlib.import_module(".online", __package__)
    importlib.import_module(f"{__package__}.protocols")
    importlib.import_module(name)  # computed at run time: the module's strings naming modules are its table
    return "fyi_apps.cli.data:cmd_data", "fyi_apps is the package", "fyi_apps.quickstart"
'''
    found = string_imports(ast.parse(src), "fyi_apps.tasks.continual.registry", "fyi_apps.tasks.continual",
                           known={"fyi_apps.quickstart"})
    assert sorted((m, how) for _, m, how in found) == [
        ("fyi_apps.cli.data", "spec"), ("fyi_apps.evaluate", "call"), ("fyi_apps.quickstart", "table"),
        ("fyi_apps.tasks.continual.online", "call"), ("fyi_apps.tasks.continual.protocols", "call"),
        ("fyi_apps.tasks.nas", "call")]


def test_an_import_from_a_string_counts_for_the_layer_rule(tmp_path, monkeypatch):
    """A lower layer importing a higher one lazily, through a string, is an upward edge like any other."""
    pkg = tmp_path / "fyi_apps"
    (pkg / "data").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "evaluate.py").write_text("")
    (pkg / "data" / "__init__.py").write_text(
        "def load():\n    import importlib\n\n    return importlib.import_module('fyi_apps.evaluate')\n")
    monkeypatch.setitem(globals(), "PKG", pkg)
    assert imports()["fyi_apps.data"] == {"fyi_apps.evaluate"}
    assert layer_of("fyi_apps.evaluate") > layer_of("fyi_apps.data")


if __name__ == "__main__":
    g = imports()
    for m in sorted(g):
        print(f"L{layer_of(m)} {m} -> {', '.join(sorted(g[m])) or '-'}")
    print("cycles:", cycles(g) or "none")
