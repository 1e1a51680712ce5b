"""Synthetic-set files: round trip, verification, atomic writes, IDC encoding, imports, exports."""
from __future__ import annotations

import dataclasses
import json
import struct
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from fyi_apps import FyiError
from fyi_apps.synset.multiformation import multiformation_decode, multiformation_encode
from fyi_apps.synset import (
    SyntheticSet,
    export_grid,
    export_imagefolder,
    import_synset,
    load_synset,
    save_synset,
)

CLASSES = ["airplane", "automobile", "bird"]
MEAN = [0.4914, 0.4822, 0.4465]
STD = [0.2023, 0.1994, 0.2010]


def tiny_info(channels=3, size=8, classes=CLASSES, name="tiny3"):
    mean = MEAN[:channels] if channels == 3 else [0.1307]
    std = STD[:channels] if channels == 3 else [0.3081]
    return SimpleNamespace(
        name=name, channels=channels, image_size=size, class_names=tuple(classes),
        mean=tuple(mean), std=tuple(std), num_classes=len(classes),
    )


def make_set(n_per_class=2, size=8, seed=0, soft=False, **kw) -> SyntheticSet:
    g = torch.Generator().manual_seed(seed)
    k = len(CLASSES)
    labels = torch.arange(k).repeat_interleave(n_per_class)
    fields = dict(
        images=torch.randn(k * n_per_class, 3, size, size, generator=g),
        labels=labels,
        dataset="cifar10",
        class_names=list(CLASSES),
        mean=list(MEAN),
        std=list(STD),
        method="dm",
        fyi="flip",
        lr=0.0123,
        config={"method": "dm", "ipc": n_per_class, "nested": {"a": [1, 2.5, None], "b": "x"}},
        seed=7,
        extra={"note": "test"},
    )
    if soft:
        fields["soft_labels"] = torch.softmax(torch.randn(k * n_per_class, k, generator=g), dim=1)
    fields.update(kw)
    return SyntheticSet(**fields)


def _header_len(path: Path) -> int:
    return struct.unpack("<Q", path.read_bytes()[:8])[0]


# --------------------------------------------------------------------------- round trip
def test_round_trip_all_fields(tmp_path):
    s = make_set(soft=True, encoding={"type": "multiformation", "factor": 2})
    p = tmp_path / "a.fyi.safetensors"
    digest = save_synset(p, s)
    assert len(digest) == 64
    assert s.versions and s.created  # filled by save
    t = load_synset(p)
    assert torch.equal(t.images, s.images) and t.images.dtype == torch.float32
    assert torch.equal(t.labels, s.labels) and t.labels.dtype == torch.int64
    assert torch.equal(t.soft_labels, s.soft_labels)
    for name in ("dataset", "class_names", "mean", "std", "method", "fyi", "ipc", "lr", "config",
                 "seed", "encoding", "extra", "versions", "created"):
        assert getattr(t, name) == getattr(s, name), name
    assert t.ipc == 2 and t.num_classes == 3 and t.channels == 3 and t.image_size == 8
    assert t.images_per_class == [2, 2, 2]


def test_round_trip_without_soft_labels(tmp_path):
    s = make_set()
    save_synset(tmp_path / "a.safetensors", s)
    assert load_synset(tmp_path / "a.safetensors").soft_labels is None


def test_hash_stable_and_content_sensitive(tmp_path):
    s = make_set()
    h1 = save_synset(tmp_path / "a.safetensors", s)
    h2 = save_synset(tmp_path / "b.safetensors", s)
    assert h1 == h2
    s.images[0, 0, 0, 0] += 1e-3
    h3 = save_synset(tmp_path / "c.safetensors", s)
    assert h3 != h1
    s.images[0, 0, 0, 0] -= 1e-3
    s.lr = 0.5
    assert save_synset(tmp_path / "d.safetensors", s) not in (h1, h3)


# --------------------------------------------------------------------------- verification
def test_tampered_tensor_bytes_detected(tmp_path):
    p = tmp_path / "a.safetensors"
    save_synset(p, make_set())
    raw = bytearray(p.read_bytes())
    data_start = 8 + _header_len(p)
    raw[data_start + 17] ^= 0x01  # inside the tensor data region
    p.write_bytes(bytes(raw))
    with pytest.raises(FyiError, match="sha256"):
        load_synset(p)


def test_tampered_metadata_detected(tmp_path):
    import safetensors.torch
    from safetensors import safe_open

    p = tmp_path / "a.safetensors"
    save_synset(p, make_set())
    with safe_open(str(p), framework="pt") as fh:
        header = dict(fh.metadata())
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    meta = json.loads(header["fyi_apps"])
    meta["lr"] = 10.0  # a plausible edit that keeps the file well-formed
    header["fyi_apps"] = json.dumps(meta)
    safetensors.torch.save_file(tensors, str(p), metadata=header)
    with pytest.raises(FyiError, match="hash"):
        load_synset(p)


def test_truncated_and_garbage_files(tmp_path):
    p = tmp_path / "a.safetensors"
    save_synset(p, make_set())
    raw = p.read_bytes()
    for name, content in [("trunc.safetensors", raw[: len(raw) // 2]),
                          ("short.safetensors", raw[:5]),
                          ("garbage.safetensors", bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8))),
                          ("empty.safetensors", b"")]:
        q = tmp_path / name
        q.write_bytes(content)
        with pytest.raises(FyiError, match="corrupt or truncated"):
            load_synset(q)


def test_foreign_safetensors_and_missing_file(tmp_path):
    import safetensors.torch

    p = tmp_path / "model.safetensors"
    safetensors.torch.save_file({"w": torch.zeros(3)}, str(p))
    with pytest.raises(FyiError, match="fyi import"):
        load_synset(p)
    with pytest.raises(FyiError, match="does not exist"):
        load_synset(tmp_path / "nope.safetensors")


def test_atomic_write_keeps_previous_file(tmp_path, monkeypatch):
    import safetensors.torch

    p = tmp_path / "a.safetensors"
    good = make_set()
    digest = save_synset(p, good)
    before = p.read_bytes()

    def broken(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"half a file")
        raise RuntimeError("disk exploded")

    monkeypatch.setattr(safetensors.torch, "save_file", broken)
    with pytest.raises(RuntimeError, match="disk exploded"):
        save_synset(p, make_set(seed=1))
    assert p.read_bytes() == before
    assert sorted(x.name for x in tmp_path.iterdir()) == ["a.safetensors"]
    monkeypatch.undo()
    assert torch.equal(load_synset(p).images, good.images)
    assert save_synset(tmp_path / "b.safetensors", good) == digest


@pytest.mark.parametrize(
    "kw, words",
    [
        ({"expect_dataset": "mnist"}, ["cifar10", "mnist"]),
        ({"expect_channels": 1}, ["3", "1"]),
        ({"expect_image_size": 32}, ["8 px", "32 px"]),
    ],
)
def test_expectation_mismatches(tmp_path, kw, words):
    p = tmp_path / "a.safetensors"
    save_synset(p, make_set())
    with pytest.raises(FyiError) as ei:
        load_synset(p, **kw)
    for w in words:
        assert w in str(ei.value)
    assert "\n" not in str(ei.value)


def test_expectations_that_hold(tmp_path):
    p = tmp_path / "a.safetensors"
    save_synset(p, make_set())
    s = load_synset(p, expect_dataset="CIFAR10", expect_channels=3, expect_image_size=8, device="cpu")
    assert s.dataset == "cifar10"


def test_inconsistent_sets_are_refused_on_save(tmp_path):
    with pytest.raises(FyiError, match="labels"):
        save_synset(tmp_path / "x.safetensors", make_set(labels=torch.tensor([0, 1, 2])))
    with pytest.raises(FyiError, match="classes"):
        save_synset(tmp_path / "x.safetensors", make_set(labels=torch.tensor([0, 0, 1, 1, 2, 5])))
    with pytest.raises(FyiError, match="mean/std"):
        save_synset(tmp_path / "x.safetensors", make_set(mean=[0.5]))
    with pytest.raises(FyiError, match="4-D"):
        save_synset(tmp_path / "x.safetensors", make_set(images=torch.zeros(6, 8, 8)))
    assert not list(tmp_path.iterdir())


# --------------------------------------------------------------------------- multi-formation
def test_multiformation_shapes_and_round_trip():
    x = torch.randn(8, 3, 16, 16)
    enc = multiformation_encode(x, 2)
    assert enc.shape == (2, 3, 16, 16)
    assert multiformation_decode(enc, 2).shape == (8, 3, 16, 16)
    # smooth images survive down- and upsampling
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 32), torch.linspace(0, 1, 32), indexing="ij")
    smooth = torch.stack([torch.sin(2 * yy + k) * torch.cos(1.5 * xx - k) for k in range(12)]).view(4, 3, 32, 32)
    back = multiformation_decode(multiformation_encode(smooth, 2), 2)
    assert (back - smooth).abs().max() < 0.05
    assert multiformation_decode(smooth, 1) is smooth
    with pytest.raises(FyiError, match="divide"):
        multiformation_decode(torch.zeros(1, 3, 30, 30), 4)
    with pytest.raises(FyiError, match="multiple"):
        multiformation_encode(torch.zeros(3, 3, 16, 16), 2)


def test_multiformation_decode_hand_made_tiles():
    tiles = [torch.full((1, 4, 4), float(v)) for v in (1, 2, 3, 4)]
    tiles[3] = torch.arange(16.0).view(1, 4, 4)  # a non-constant tile
    packed = torch.zeros(1, 1, 8, 8)
    packed[0, :, :4, :4], packed[0, :, :4, 4:] = tiles[0], tiles[1]
    packed[0, :, 4:, :4], packed[0, :, 4:, 4:] = tiles[2], tiles[3]
    second = -packed
    stored = torch.cat([packed, second])
    out = multiformation_decode(stored, 2)
    assert out.shape == (8, 1, 8, 8)
    for i, t in enumerate(tiles):
        want = torch.nn.functional.interpolate(t[None], size=(8, 8), mode="bilinear", align_corners=False)[0]
        assert torch.allclose(out[i], want)
        assert torch.allclose(out[4 + i], -want)

    s = SyntheticSet(images=stored, labels=torch.tensor([0, 2]), dataset="m", class_names=["a", "b", "c"],
                     mean=[0.5], std=[0.5], method="idc", encoding={"type": "multiformation", "factor": 2})
    imgs, labs = s.decoded()
    assert torch.equal(imgs, out)
    assert labs.tolist() == [0, 0, 0, 0, 2, 2, 2, 2]
    plain = SyntheticSet(images=stored, labels=torch.tensor([0, 2]), dataset="m", class_names=["a", "b", "c"],
                         mean=[0.5], std=[0.5], method="dm")
    assert plain.decoded()[0] is stored


def test_idc_file_decodes_with_only_synset_imported(tmp_path):
    # the multiformation encoding is a stored-image format: registered by fyi_apps.synset itself
    import subprocess
    import sys

    p = tmp_path / "idc.fyi.safetensors"
    s = make_set(n_per_class=1, encoding={"type": "multiformation", "factor": 2})
    save_synset(p, s)
    code = (
        "import sys\n"
        "from fyi_apps.synset import load_synset\n"
        "assert 'fyi_apps.distill' not in sys.modules\n"
        f"x, y = load_synset({str(p)!r}).decoded()\n"
        "assert 'fyi_apps.distill' not in sys.modules\n"
        "print(tuple(x.shape), y.tolist())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[0] == "(12, 3, 8, 8) [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]"
    with pytest.raises(FyiError, match="this fyi-apps knows plain, multiformation"):
        SyntheticSet(images=s.images, labels=s.labels, dataset="m", class_names=CLASSES, mean=MEAN, std=STD,
                     method="x", encoding={"type": "nope"}).decoded()


def test_to_pixels_denormalises_and_clamps():
    s = make_set()
    px = s.to_pixels()
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    assert torch.allclose(px, (s.images * std + mean).clamp(0, 1))
    assert px.min() >= 0 and px.max() <= 1


# --------------------------------------------------------------------------- imports
def test_import_dc_reference_res_file(tmp_path):
    info = tiny_info()
    g = torch.Generator().manual_seed(3)
    exps = []
    for _ in range(2):
        exps.append([torch.randn(3, 3, 8, 8, generator=g), torch.tensor([0, 1, 2])])
    p = tmp_path / "res_DM_CIFAR10_ConvNet_1ipc.pt"
    torch.save({"data": exps, "accs_all_exps": {"ConvNet": [0.25, 0.26]}}, p)

    s = import_synset(p, info=info)
    assert s.method == "dm" and s.ipc == 1 and s.dataset == "tiny3"
    assert torch.equal(s.images, exps[0][0]) and s.labels.tolist() == [0, 1, 2]
    assert s.extra["source"]["model"] == "ConvNet"
    s1 = import_synset(p, format="res", info=info, exp=1)
    assert torch.equal(s1.images, exps[1][0])
    with pytest.raises(FyiError, match="experiment"):
        import_synset(p, info=info, exp=5)
    with pytest.raises(FyiError, match="1x8x8|3x8x8"):
        import_synset(p, info=tiny_info(channels=1))
    # the imported set saves and loads like any other
    save_synset(tmp_path / "s.safetensors", s)
    assert load_synset(tmp_path / "s.safetensors").method == "dm"


def test_import_refuses_pickles_unless_trusted(tmp_path):
    class Custom:  # not allowed by weights_only=True
        pass

    p = tmp_path / "res_DC_CIFAR10_ConvNet_1ipc.pt"
    torch.save({"data": [[torch.zeros(3, 3, 8, 8), torch.tensor([0, 1, 2])]], "args": SimpleNamespace(x=1)}, p)
    with pytest.raises(FyiError, match="trust"):
        import_synset(p, info=tiny_info())
    s = import_synset(p, info=tiny_info(), trust=True)
    assert s.method == "dc"
    bad = tmp_path / "res_DC_X_ConvNet_1ipc.pt"
    bad.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(FyiError, match="corrupt"):
        import_synset(bad, info=tiny_info())


@pytest.mark.parametrize("soft", [False, True])
def test_import_mtt_folder(tmp_path, soft):
    info = tiny_info()
    images = torch.randn(6, 3, 8, 8)
    hard = torch.tensor([0, 0, 1, 1, 2, 2])
    labels = torch.nn.functional.one_hot(hard, 3).float() * 3 + 0.1 * torch.randn(6, 3) if soft else hard
    torch.save(images.clone().requires_grad_(True), tmp_path / "images_best.pt")
    torch.save(labels, tmp_path / "labels_best.pt")
    torch.save(torch.tensor(0.0321), tmp_path / "lr_best.pt")
    for path in (tmp_path, tmp_path / "images_best.pt", tmp_path / "labels_best.pt"):
        s = import_synset(path, info=info)
        assert torch.equal(s.images, images)
        assert s.labels.tolist() == hard.tolist()
        assert s.lr == pytest.approx(0.0321)
        assert s.method == "mtt" and s.ipc == 2
        assert (s.soft_labels is not None) == soft
        if soft:
            assert torch.equal(s.soft_labels, labels)
    p = tmp_path / "x.safetensors"
    save_synset(p, s)
    t = load_synset(p)
    assert t.lr == pytest.approx(0.0321)
    assert (t.soft_labels is not None) == soft


def _write_imagefolder(root: Path, classes, per_class=2, size=8, seed=0):
    rng = np.random.default_rng(seed)
    pixels = {}
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            arr = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            Image.fromarray(arr).save(root / c / f"{i}.png")
            pixels[(c, i)] = arr
    return pixels


def test_import_imagefolder_pixels_survive(tmp_path):
    info = tiny_info()
    pixels = _write_imagefolder(tmp_path / "imgs", reversed(CLASSES))
    s = import_synset(tmp_path / "imgs", info=info)
    assert len(s) == 6 and s.labels.tolist() == [0, 0, 1, 1, 2, 2]
    px = s.to_pixels()
    for n in range(6):
        c, i = CLASSES[int(s.labels[n])], n % 2
        want = torch.from_numpy(pixels[(c, i)]).permute(2, 0, 1).float() / 255
        assert (px[n] - want).abs().max() <= 1 / 255 + 1e-6
    # images are stored normalised, not as [0, 1] pixels
    assert s.images.min() < -0.5


def test_import_imagefolder_mismatched_classes(tmp_path):
    _write_imagefolder(tmp_path / "imgs", ["airplane", "automobile", "dog"])
    with pytest.raises(FyiError, match="dog"):
        import_synset(tmp_path / "imgs", info=tiny_info())
    _write_imagefolder(tmp_path / "two", ["airplane", "automobile"])
    with pytest.raises(FyiError, match="bird"):
        import_synset(tmp_path / "two", format="imagefolder", info=tiny_info())


def test_import_unknown_things(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FyiError, match="cannot tell"):
        import_synset(tmp_path / "empty", info=tiny_info())
    with pytest.raises(FyiError, match="unknown import format"):
        import_synset(tmp_path / "empty", format="zip", info=tiny_info())
    with pytest.raises(FyiError, match="does not exist"):
        import_synset(tmp_path / "missing.pt", info=tiny_info())


# --------------------------------------------------------------------------- exports
def test_export_imagefolder_and_reimport(tmp_path):
    s = make_set(n_per_class=2)
    s.images = s.images.clamp(-2, 2)
    out = export_imagefolder(s, tmp_path / "out")
    pngs = sorted(out.rglob("*.png"))
    assert len(pngs) == 6
    assert sorted(d.name for d in out.iterdir() if d.is_dir()) == sorted(CLASSES)
    assert [p.name for p in sorted((out / "bird").iterdir())] == ["000.png", "001.png"]
    with Image.open(pngs[0]) as im:
        assert im.size == (8, 8) and im.mode == "RGB"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp dirs left
    back = import_synset(out, info=tiny_info(name="cifar10"))
    assert (back.to_pixels() - s.to_pixels()).abs().max() <= 0.5 / 255 + 1e-6
    # re-export replaces an earlier export, but never an unrelated folder
    export_imagefolder(make_set(n_per_class=1), out)
    assert len(list(out.rglob("*.png"))) == 3
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("x")
    with pytest.raises(FyiError, match="not an earlier fyi export"):
        export_imagefolder(s, tmp_path / "mine")


def test_export_imagefolder_decoded_idc(tmp_path):
    s = make_set(n_per_class=1, encoding={"type": "multiformation", "factor": 2})
    out = export_imagefolder(s, tmp_path / "dec", decode=True)
    assert len(list(out.rglob("*.png"))) == 12


@pytest.mark.parametrize("channels", [3, 1])
def test_export_grid_writes_png(tmp_path, channels):
    s = make_set(n_per_class=3)
    if channels == 1:
        s = SyntheticSet(images=s.images[:, :1], labels=s.labels, dataset="mnist", class_names=CLASSES,
                         mean=[0.1307], std=[0.3081], method="dc")
    png = export_grid(s, tmp_path / "grid.png", max_per_class=2)
    assert png.exists()
    with Image.open(png) as im:
        im.verify()
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size[0] > 0 and im.size[1] > 0
    assert [p.name for p in tmp_path.iterdir()] == ["grid.png"]
