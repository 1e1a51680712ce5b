"""Callable modules, so that ``fyi_apps.distill(...)`` and ``fyi_apps.evaluate(...)`` work.

``fyi_apps.distill`` is a subpackage and ``fyi_apps.evaluate`` a module; once
imported, Python binds the package attribute to the module, which would hide a
function of the same name in the facade.  Making the module itself callable
(delegating to its main function) keeps both spellings: ``fyi.distill(...)``
and ``from fyi_apps.distill import DistillConfig``.
"""
from __future__ import annotations

import sys
import types


def make_callable(module_name: str, function_name: str) -> None:
    """Let ``module(...)`` call ``module.<function_name>(...)``."""

    class _CallableModule(types.ModuleType):
        def __call__(self, *args, **kwargs):
            return getattr(self, function_name)(*args, **kwargs)

    sys.modules[module_name].__class__ = _CallableModule
