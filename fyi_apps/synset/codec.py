"""Encodings of stored images: how a set's ``encoding`` turns into training images.

A synthetic set records ``encoding = {"type": NAME, ...}``; :meth:`SyntheticSet.decoded`
asks the codec registered under ``NAME`` for the training images and labels.
``"plain"`` (images as stored) is built in; a method that stores images
differently registers its codec when its module is imported::

    register_codec("multiformation", decode, check=check)

``decode(images, labels, encoding) -> (images, labels)``;
``check(images, encoding, where)`` raises :class:`FyiError` when the stored
images and the encoding's parameters do not fit (called by validation).

Plugin discovery: a file may name a codec whose module nobody imported yet (a
set loaded with only ``fyi_apps.synset`` imported).  :data:`CODEC_MODULES` maps
the codec names fyi-apps ships to the module that registers them; the first
lookup of such a name imports that module by name.  This keeps the synthetic-set
layer free of imports of the methods above it (IDC's multi-formation lives in
``fyi_apps.distill.idc_codec``).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from torch import Tensor

from ..errors import FyiError

Decode = Callable[[Tensor, Tensor, Mapping[str, Any]], "tuple[Tensor, Tensor]"]
Check = Callable[[Tensor, Mapping[str, Any], str], None]

#: Codec name -> module that registers it when imported (plugin discovery, see above).
CODEC_MODULES: dict[str, str] = {
    "multiformation": "fyi_apps.distill.idc_codec",
}


@dataclass(frozen=True)
class Codec:
    """One encoding: ``decode`` (stored -> training images and labels) and an optional ``check``."""

    name: str
    decode: Decode
    check: Check | None = None


_CODECS: dict[str, Codec] = {}


def register_codec(name: str, decode: Decode, *, check: Check | None = None) -> Codec:
    """Register (or replace) the codec of encoding type ``name``."""
    codec = Codec(str(name), decode, check)
    _CODECS[codec.name] = codec
    return codec


def codec_names() -> tuple[str, ...]:
    """Known encoding types: the registered ones and those :data:`CODEC_MODULES` can load."""
    return tuple(dict.fromkeys([*_CODECS, *CODEC_MODULES]))


def get_codec(name: str) -> Codec | None:
    """The codec of encoding type ``name`` (importing its module if it is a known plugin), or None."""
    if name not in _CODECS and name in CODEC_MODULES:
        importlib.import_module(CODEC_MODULES[name])
    return _CODECS.get(name)


def _plain(images: Tensor, labels: Tensor, encoding: Mapping[str, Any]) -> tuple[Tensor, Tensor]:
    return images, labels


register_codec("plain", _plain)


def decode_images(images: Tensor, labels: Tensor, encoding: Mapping[str, Any]) -> tuple[Tensor, Tensor]:
    """Training images and labels of stored ``images``/``labels`` under ``encoding``."""
    kind = encoding.get("type", "plain")
    codec = get_codec(kind)
    if codec is None:
        raise FyiError(f"unknown synthetic-set encoding {kind!r}; this fyi-apps knows {', '.join(codec_names())}")
    return codec.decode(images, labels, encoding)


def check_encoding(images: Tensor, encoding: Any, where: str) -> None:
    """Refuse an encoding that is unknown or does not fit the stored images."""
    kind = encoding.get("type", "plain") if isinstance(encoding, Mapping) else None
    codec = get_codec(kind) if isinstance(kind, str) else None
    if codec is None:
        raise FyiError(f"{where}: unknown encoding {encoding!r}; use one of {', '.join(codec_names())}")
    if codec.check is not None:
        codec.check(images, encoding, where)
