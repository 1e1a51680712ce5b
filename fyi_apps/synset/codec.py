"""Encodings of stored images: how a set's ``encoding`` turns into training images.

A synthetic set records ``encoding = {"type": NAME, ...}``; :meth:`SyntheticSet.decoded`
asks the codec registered under ``NAME`` for the training images and labels.
``"plain"`` (images as stored) is built in; IDC's ``"multiformation"``
(:mod:`.multiformation`) is registered when :mod:`fyi_apps.synset` is imported.
A new encoding is one decorated function::

    @register_codec("mine", check=check)
    def decode(images, labels, encoding):
        return images, labels

``decode(images, labels, encoding) -> (images, labels)``;
``check(images, encoding, where)`` raises :class:`FyiError` when the stored
images and the encoding's parameters do not fit (called by validation).
The codecs are a :class:`fyi_apps.registry.Registry` (:data:`CODECS`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from torch import Tensor

from ..errors import FyiError
from ..registry import Registry

Decode = Callable[[Tensor, Tensor, Mapping[str, Any]], "tuple[Tensor, Tensor]"]
Check = Callable[[Tensor, Mapping[str, Any], str], None]


@dataclass(frozen=True)
class Codec:
    """One encoding: ``decode`` (stored -> training images and labels) and an optional ``check``."""

    name: str
    decode: Decode
    check: Check | None = None


#: encoding type -> its :class:`Codec`
CODECS: Registry[Codec] = Registry("encoding")


def register_codec(name: str, decode: Decode | None = None, *, check: Check | None = None, replace: bool = False):
    """Register the codec of encoding type ``name``: ``register_codec(name, decode)`` or ``@register_codec(name)``.

    A name is registered once; ``replace=True`` swaps the codec.  Called with
    ``decode`` it returns the :class:`Codec`; as a decorator, the function.
    """
    if decode is None:
        def decorator(fn: Decode) -> Decode:
            register_codec(name, fn, check=check, replace=replace)
            return fn

        return decorator
    return CODECS.add(str(name), Codec(str(name), decode, check), replace=replace)


def codec_names() -> tuple[str, ...]:
    """The registered encoding types."""
    return tuple(CODECS.names())


def get_codec(name: str) -> Codec | None:
    """The codec of encoding type ``name``, or None."""
    return CODECS.get(name, None)


@register_codec("plain")
def _plain(images: Tensor, labels: Tensor, encoding: Mapping[str, Any]) -> tuple[Tensor, Tensor]:
    return images, labels


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
