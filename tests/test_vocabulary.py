"""One word per concept (ARCHITECTURE.md, "Vocabulary"): the old names live in fyi_apps/deprecated.py only,
each still works and warns, and the library's own code uses the new ones."""
import ast
import importlib
import re
from pathlib import Path

import pytest

from fyi_apps import deprecated
from fyi_apps.deprecated import FyiDeprecationWarning

PKG = Path(__file__).resolve().parents[1] / "fyi_apps"
#: old names that are also words of prose (the GDumb method, a protocol): only their definitions are refused
PROSE_WORDS = {"GDumb", "Protocol"}


@pytest.mark.parametrize("module,old,new", [(m, o, n) for m, table in deprecated.NAMES.items()
                                            for o, n in table.items()])
def test_every_old_name_warns_and_is_the_new_object(module, old, new):
    mod = importlib.import_module(module)
    with pytest.warns(FyiDeprecationWarning, match=rf"{re.escape(module)}\.{old} is deprecated; use .*\.{new}"):
        value = getattr(mod, old)
    assert value is getattr(mod, new)


def test_an_old_name_warns_where_it_is_used():
    """The warning points at the user's line (``stacklevel``), for a module and for the lazy package alike."""
    import fyi_apps.tasks.continual as cl
    from fyi_apps.distill import experts

    for mod, old in [(cl, "make_buffer"), (experts, "BufferConfig")]:
        with pytest.warns(FyiDeprecationWarning) as record:
            getattr(mod, old)
        assert record[0].filename == __file__


def test_an_unknown_name_is_still_an_attribute_error():
    import fyi_apps.tasks.continual as cl
    from fyi_apps.distill import experts

    for mod in (cl, experts):
        with pytest.raises(AttributeError, match="no attribute 'nothing_like_this'"):
            mod.nothing_like_this  # noqa: B018


def test_a_moved_module_warns_on_import():
    import subprocess
    import sys

    code = ("import warnings\nwarnings.simplefilter('error')\n"
            "try:\n    import fyi_apps.distill.idc_codec\nexcept FutureWarning as w:\n    print(w)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "fyi_apps.distill.idc_codec is deprecated; use fyi_apps.synset.multiformation" in out


def _sources():
    for path in sorted(PKG.rglob("*.py")):
        if path.name != "deprecated.py" or path.parent != PKG:
            yield path, path.read_text()


def test_the_library_uses_the_new_names_only():
    """No old name (module attributes, file names, the British spelling) outside fyi_apps/deprecated.py."""
    words = {old for table in deprecated.NAMES.values() for old in table} - PROSE_WORDS
    words |= {old for old in deprecated.FILES if "/" not in old}
    pattern = re.compile(r"(?<![\w.])(" + "|".join(map(re.escape, sorted(words))) + r")(?!\w)|summaris", re.I)
    found = [f"{path.relative_to(PKG.parent)}:{n}: {line.strip()}" for path, text in _sources()
             for n, line in enumerate(text.splitlines(), 1) if pattern.search(line)]
    assert found == []


def test_no_class_shadows_avalanches_gdumb_or_typing_protocol():
    """Our protocol classes are CLProtocol and GDumbProtocol: ``GDumb`` is Avalanche's, ``Protocol`` typing's."""
    defined = []
    for path, text in _sources():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.ClassDef, ast.FunctionDef)) and node.name in PROSE_WORDS:
                defined.append(f"{path.relative_to(PKG.parent)}: {node.name}")
            if isinstance(node, ast.Assign):
                defined += [f"{path.relative_to(PKG.parent)}: {t.id} =" for t in node.targets
                            if isinstance(t, ast.Name) and t.id in PROSE_WORDS]
    assert defined == []


def test_old_field_names_are_not_used_inside():
    """A renamed config field (``CLConfig.buffers``) is not passed or read by the library."""
    found = []
    for owner, table in deprecated.FIELDS.items():
        package = PKG.parent.joinpath(*owner.split(".")[:-2])
        for old in table:
            pattern = re.compile(rf"(\.{old}\b|\b{old}=|[\"']{old}[\"'])")
            found += [f"{p.relative_to(PKG.parent)}:{n}" for p in sorted(package.rglob("*.py"))
                      for n, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert found == []


def test_the_mtt_option_is_experts_and_buffers_still_works(tmp_path):
    from fyi_apps.deprecated import FyiDeprecationWarning
    from fyi_apps.distill import DistillConfig, resolve_config

    folder = tmp_path / "e"
    folder.mkdir()
    new = resolve_config(DistillConfig("ftd", "digits", 1, options={"experts": str(folder)}))
    with pytest.warns(FyiDeprecationWarning, match="'experts'"):
        old = resolve_config(DistillConfig("ftd", "digits", 1, options={"buffers": str(folder)}))
    assert old.options.experts == new.options.experts == str(folder) and "buffers" not in old.options
