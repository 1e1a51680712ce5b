"""Griffe extension: the Sphinx roles of the docstrings render in the API reference.

The docstrings of ``fyi_apps`` name other objects with Sphinx roles (``:func:`load_synset```,
``:class:`~fyi_apps.synset.SyntheticSet```, ``:mod:`.report```), which is how ``help()``
and pydoc readers see them.  mkdocstrings would show them as raw text, so this extension
(``extensions:`` of the mkdocstrings python handler in mkdocs.yml) rewrites the copy of
each docstring that Griffe holds for the site, never the source:

* a target that is an object of the loaded package becomes an optional autorefs
  cross-reference to its canonical path: a link where the site documents that object
  (directly or under one of its aliases), a code span where it does not, so that an
  unresolved target never fails ``mkdocs build --strict``;
* any other target (``scipy.stats.bootstrap``, a name found nowhere) becomes a code span.

A relative target is looked up as Sphinx does: in the scope of the documented object
first (its class, its module), then in each enclosing package up to the top level, then as
a full path; ``.name`` is relative to the documented module's package (as in a relative
import).  A candidate of the wrong kind (a module for ``:func:``) is passed over.  Last,
a target that the look-up misses links to the one object of the package whose path ends
in it, if only one does.  The title follows Sphinx: ``~`` keeps the last component,
``title <target>`` is an explicit title, ``!`` suppresses the link, and ``:func:`` /
``:meth:`` titles end in ``()``.  Converted before the Google-style parsing, a role no
longer loses its first colon to a Returns section's ``type: description`` split.

The conversion itself (:func:`convert_roles`, :func:`candidate_paths`) needs no Griffe, so
tests/test_docs.py checks it where the docs extra is not installed.
"""
from __future__ import annotations

import html
import re
from typing import Callable, Iterable, Optional

try:
    from griffe import Extension
except ImportError:  # no docs extra: the pure functions below stay importable for the tests
    Extension = object

ROLE = re.compile(r"(?<![\w`]):(?:py:)?(?P<role>func|meth|class|exc|mod|data|attr|const|obj|type):"
                  r"`(?P<text>[^`\n]+)`(?!`)")
FENCED = re.compile(r"(^[ \t]*```.*?^[ \t]*```[ \t]*$)", re.M | re.S)  # code blocks keep their text
EXPLICIT_TITLE = re.compile(r"^(?P<title>.+?)\s*<(?P<target>[^<>]+)>$")
PARENTHESIZED = {"func", "meth"}
# the Griffe kinds a role may name (None: any); a candidate of another kind is passed over
ROLE_KINDS = {
    "func": {"function"}, "meth": {"function"},
    "class": {"class"}, "exc": {"class"},
    "mod": {"module"},
    "data": {"attribute", "type alias"}, "const": {"attribute"}, "type": {"class", "type alias", "attribute"},
    "attr": {"attribute", "function"},  # a property is a Griffe function
    "obj": None,
}

# resolve(role, target) -> the path to link to, or None for a plain code span
Resolver = Callable[[str, str], Optional[str]]


def split_role_text(role: str, text: str) -> tuple[str, str, bool]:
    """``(title, target, link)`` of a role's text, with Sphinx's rules for titles."""
    text = text.strip()
    link = not text.startswith("!")
    text = text.lstrip("!")
    explicit = EXPLICIT_TITLE.match(text)
    if explicit:
        return explicit["title"], explicit["target"].strip(), link
    target = text.lstrip("~")
    title = target.lstrip(".")
    if text.startswith("~"):
        title = title.rsplit(".", 1)[-1]
    if role in PARENTHESIZED and not title.endswith(")"):
        title += "()"
    return title, target, link


def convert_roles(text: str, resolve: Resolver) -> str:
    """``text`` with every Sphinx role made Markdown: a cross-reference where ``resolve`` finds the target.

    ``resolve(role, target)`` returns the full path to link to, or None for a plain code span.
    The link is an optional autorefs reference: it renders as a code span where the site
    documents no such object.
    """
    def replace(match: re.Match) -> str:
        role = match["role"]
        title, target, link = split_role_text(role, match["text"])
        code = f"<code>{html.escape(title)}</code>"
        path = resolve(role, target) if link else None
        if not path:
            return f"`{title}`"
        return f'<autoref identifier="{html.escape(path)}" optional>{code}</autoref>'

    parts = FENCED.split(text)
    return "".join(part if i % 2 else ROLE.sub(replace, part) for i, part in enumerate(parts))


def candidate_paths(target: str, scopes: list[str], module: str, is_package: bool) -> list[str]:
    """The full paths ``target`` may name, first the likeliest.

    ``scopes`` are the paths of the documented object and of its parents, innermost first
    (``fyi_apps.synset.core.SyntheticSet``, ``fyi_apps.synset.core``, ``fyi_apps.synset``,
    ``fyi_apps``); ``module`` is the documented object's module, ``is_package`` whether
    that module is a package (its ``__init__``), which sets what ``.name`` is relative to.
    """
    if target.startswith("."):
        rest = target.lstrip(".")
        base = module if is_package else module.rpartition(".")[0]
        for _ in range(len(target) - len(rest) - 1):  # each further dot goes one package up
            base = base.rpartition(".")[0]
        return [f"{base}.{rest}" if base else rest]
    return [f"{scope}.{target}" for scope in scopes] + [target]


class SphinxRoles(Extension):
    """Rewrites the Sphinx roles of every docstring of a loaded package (see the module docstring)."""

    def on_package(self, *, pkg, loader, **kwargs) -> None:
        objects = list(_objects(pkg))
        by_name: dict[str, list] = {}
        for obj in objects:
            by_name.setdefault(obj.name, []).append(obj)
        for obj in objects:
            if obj.docstring is not None and ":" in obj.docstring.value:
                resolve = _resolver(obj, loader.modules_collection, by_name)
                obj.docstring.value = convert_roles(obj.docstring.value, resolve)


def _objects(obj) -> Iterable:
    """``obj`` and its members, recursively, without the aliases (their targets are documented where defined)."""
    yield obj
    for member in list(obj.members.values()):
        if not member.is_alias:
            yield from _objects(member)


def _resolver(obj, collection, by_name: dict[str, list]) -> Resolver:
    """Sphinx's look-up from ``obj`` (:func:`candidate_paths`), and last the one object of the package
    whose path ends in the target (``decoded`` for ``SyntheticSet.decoded``), if only one does."""
    scopes = []
    scope = obj
    while scope is not None:
        scopes.append(scope.path)
        scope = scope.parent
    module = obj.module

    def resolve(role: str, target: str) -> str | None:
        kinds = ROLE_KINDS[role]
        for path in candidate_paths(target, scopes, module.path, module.is_init_module):
            found = _lookup(collection, path)
            if found is not None and (kinds is None or found[1] in kinds):
                return found[0]
        suffix = "." + target.lstrip(".")
        named = [o for o in by_name.get(suffix.rpartition(".")[2], [])
                 if o.path.endswith(suffix) and (kinds is None or o.kind.value in kinds)]
        return named[0].path if len(named) == 1 else None

    return resolve


def _lookup(collection, path: str) -> tuple[str, str] | None:
    """``(canonical path, kind)`` of the object at ``path``, or None where it is not in the loaded packages."""
    from griffe import AliasResolutionError, CyclicAliasError

    try:
        found = collection.get_member(path)
        return found.canonical_path, found.kind.value
    except (KeyError, ValueError, AliasResolutionError, CyclicAliasError):  # not there, or outside the loaded packages
        return None
