"""Synthetic sets: one portable, self-describing, verified file per set.

A :class:`SyntheticSet` holds the distilled images (normalised float32, what the
networks see), their hard labels and everything needed to use them later: the
dataset, class names, mean/std, the method and FYI view, the learned learning
rate (MTT/FTD), the IDC encoding, the full config, seed, versions and time.

File layout (``save_synset``) — one safetensors file, by convention named
``*.fyi.safetensors``:

* tensors ``images`` (float32 ``[N, C, H, W]``), ``labels`` (int64 ``[N]``) and,
  only when present, ``soft_labels`` (float32 ``[N, K]``, e.g. DATM);
* safetensors ``__metadata__`` (string -> string):

  - ``format``: ``"fyi-apps.synset"``
  - ``format_version``: ``"1"``
  - ``fyi_apps``: JSON object with every other field of :class:`SyntheticSet`
    (``dataset, class_names, mean, std, method, fyi, ipc, lr, config, seed,
    encoding, extra, versions, created``) and ``format_version``;
  - ``sha256``: hex digest over the tensors (name, dtype, shape, raw bytes, in
    sorted name order) followed by the canonical JSON (sorted keys, compact) of
    the ``fyi_apps`` object.  ``load_synset`` recomputes and compares it.

``import_synset`` converts files people already have: DatasetCondensation
``res_*.pt`` (DC/DSA/DM), MTT/DATM ``images_best.pt``/``labels_best.pt``/``lr_best.pt``
and ImageFolders of PNG/JPEG images.

Layout: :mod:`.core` (the set), :mod:`.fileformat` (save/load, hash,
validation), :mod:`.importers`, :mod:`.exporters` (PNG grid, ImageFolder) and
:mod:`.codec` (encodings of the stored images, a registry: ``plain``, and IDC's
``multiformation`` from :mod:`.multiformation`, registered when this package is
imported).
"""
from __future__ import annotations

from .codec import CODECS, Codec, codec_names, get_codec, register_codec
from . import multiformation  # noqa: F401,I001  (registers the multiformation encoding)
from .core import FORMAT_VERSION, SUFFIX, SyntheticSet
from .exporters import export_grid, export_imagefolder
from .fileformat import load_synset, save_synset
from .importers import import_synset

__all__ = [
    "SyntheticSet", "save_synset", "load_synset", "import_synset", "export_grid", "export_imagefolder",
    "register_codec", "get_codec", "codec_names", "Codec", "CODECS", "SUFFIX", "FORMAT_VERSION",
]
