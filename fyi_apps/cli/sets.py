"""``fyi show`` / ``fyi export`` / ``fyi import``: synthetic-set files as pictures, folders and from other tools."""
from __future__ import annotations

import argparse
from pathlib import Path

from .. import validate as V
from ..errors import FyiError
from .common import existing


def cmd_show(args) -> None:
    from ..synset import export_grid, load_synset

    s = load_synset(existing(args.synset, "synthetic-set file"))
    out = args.output or str(Path(args.synset).with_suffix("").with_suffix("")) + ".png"
    V.output_file(out, "PNG file")
    export_grid(s, out, max_per_class=args.max_per_class)
    counts = s.images_per_class if hasattr(s, "images_per_class") else None
    print(f"{s.method}{' + FYI (' + s.fyi + ')' if s.fyi else ''} on {s.dataset}: {len(s.labels)} images, "
          f"ipc {s.ipc}, {s.channels}x{s.image_size}x{s.image_size}" + (f", per class {counts}" if counts else ""))
    print(f"grid written to {out}")


def cmd_export(args) -> None:
    from ..synset import export_imagefolder, load_synset

    s = load_synset(existing(args.synset, "synthetic-set file"))
    V.output_dir(args.folder, "export folder")
    try:
        out = export_imagefolder(s, args.folder)
    except OSError as e:
        from ..runtime import write_failure

        raise write_failure(args.folder, e, "export folder") from None
    print(f"{len(s.labels)} PNG images written to {out}/<class>/")


def cmd_import(args) -> None:
    from ..synset import import_synset, save_synset

    src = Path(args.path)
    if not src.exists():
        raise FyiError(f"path {src} does not exist; check the path to the file or folder to import")
    if args.output:
        V.output_file(args.output, "synthetic-set file")
    s = import_synset(src, format=args.format, dataset=args.dataset, trust=args.trust)
    out = args.output or str(Path(args.out) / f"imported_{V.safe_name(s.method)}_{V.safe_name(s.dataset)}_ipc{s.ipc}"
                                              ".safetensors")
    V.output_file(out, "synthetic-set file")
    digest = save_synset(out, s)
    print(f"imported {len(s.labels)} images ({s.method}, {s.dataset}, ipc {s.ipc}) -> {out} (sha256 {digest[:12]})")


def add_show_arguments(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("synset")
    sp.add_argument("-o", "--output", help="PNG path (default: next to the set)")
    sp.add_argument("--max-per-class", type=V.positive_int, default=10)


def add_export_arguments(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("synset")
    sp.add_argument("folder")


def add_import_arguments(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("path")
    sp.add_argument("--format", default="auto", choices=["auto", "dc", "mtt", "imagefolder"])
    sp.add_argument("--dataset", help="dataset the images belong to (needed for ImageFolder; guessed for res_*.pt)")
    sp.add_argument("--trust", action="store_true",
                    help="allow full unpickling of res_*.pt / images_best.pt files that hold Python objects "
                         "(can run arbitrary code: only for files whose origin you trust)")
    sp.add_argument("-o", "--output")
