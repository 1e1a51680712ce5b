"""Deprecated: IDC's multi-formation codec moved to :mod:`fyi_apps.synset.multiformation` (a stored-image format).

Importing this module warns (:mod:`fyi_apps.deprecated`) and gives the same functions.
"""
from __future__ import annotations

from ..deprecated import MODULES, warn
from ..synset.multiformation import multiformation_decode, multiformation_encode

warn(__name__, MODULES[__name__], stacklevel=3)  # points at the importing line

__all__ = ["multiformation_decode", "multiformation_encode"]
