"""Tests of fyi_apps.data on small stand-ins written in each dataset's real on-disk format."""
from __future__ import annotations

import gzip
import os
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fyi_apps import data
from fyi_apps.data import (CIFAR10_CLASSES, CIFAR100_CLASSES, IMAGENET_SUBSETS, Dataset, DatasetInfo,
                           Split, dataset_info, flip_extend, list_datasets, load_dataset,
                           register_dataset)
from fyi_apps.errors import FyiError

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
FASHION_SYSTEM = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Private cache; no FYI_DATA from the user's environment."""
    monkeypatch.setenv("FYI_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("FYI_DATA", raising=False)


def _gen(seed=0):
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def _raise(*args, **kwargs):
    raise AssertionError("decoded again although a cache entry exists")


# --------------------------------------------------------------------------- #
# Writers of the on-disk formats
# --------------------------------------------------------------------------- #
def _cifar_rows(n, offset):
    """n CIFAR rows (R plane, G plane, B plane): R(0,0) = offset + k, G(0,5) = 200."""
    rows = np.zeros((n, 3072), dtype=np.uint8)
    rows[:, 0] = offset + np.arange(n)
    rows[:, 1024 + 5] = 200
    rows[:, 2048 + 32 * 31 + 31] = 7  # B at (31, 31)
    return rows


def write_cifar10(root: Path, per_batch=4, n_test=6):
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    labels_all = []
    for b in range(5):
        labels = [(b * per_batch + k) % 10 for k in range(per_batch)]
        labels_all += labels
        with open(d / f"data_batch_{b + 1}", "wb") as f:
            pickle.dump({"batch_label": f"training batch {b + 1} of 5",
                         "labels": labels, "data": _cifar_rows(per_batch, 10 * b)}, f)
    test_labels = [9 - (k % 10) for k in range(n_test)]
    with open(d / "test_batch", "wb") as f:
        pickle.dump({"batch_label": "testing batch 1 of 1", "labels": test_labels,
                     "data": _cifar_rows(n_test, 100)}, f)
    with open(d / "batches.meta", "wb") as f:
        pickle.dump({"label_names": list(CIFAR10_CLASSES), "num_cases_per_batch": per_batch,
                     "num_vis": 3072}, f)
    return labels_all, test_labels


def write_cifar100(root: Path):
    d = root / "cifar-100-python"
    d.mkdir(parents=True)
    train_fine = [0, 99, 42, 42, 7]
    test_fine = [99, 3]
    for name, fine in (("train", train_fine), ("test", test_fine)):
        with open(d / name, "wb") as f:
            pickle.dump({"filenames": [f"x{i}.png" for i in range(len(fine))], "fine_labels": fine,
                         "coarse_labels": [v // 5 for v in fine],
                         "data": _cifar_rows(len(fine), 50 if name == "train" else 150)}, f)
    with open(d / "meta", "wb") as f:
        pickle.dump({"fine_label_names": list(CIFAR100_CLASSES),
                     "coarse_label_names": [f"super{i}" for i in range(20)]}, f)
    return train_fine, test_fine


def _idx_images(imgs: np.ndarray) -> bytes:
    n, h, w = imgs.shape
    return struct.pack(">IIII", 0x00000803, n, h, w) + imgs.astype(np.uint8).tobytes()


def _idx_labels(labels) -> bytes:
    labels = np.asarray(labels, dtype=np.uint8)
    return struct.pack(">II", 0x00000801, len(labels)) + labels.tobytes()


def write_idx(folder: Path, n_train=12, n_test=5, gz=True, base=0):
    """The four MNIST-format files; image k has pixel (3, 4) = base + k, label k % 10."""
    folder.mkdir(parents=True, exist_ok=True)
    content = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        imgs = np.zeros((n, 28, 28), dtype=np.uint8)
        imgs[:, 3, 4] = base + np.arange(n)
        content[f"{prefix}-images-idx3-ubyte"] = _idx_images(imgs)
        content[f"{prefix}-labels-idx1-ubyte"] = _idx_labels([k % 10 for k in range(n)])
    for name, blob in content.items():
        if gz:
            with gzip.open(folder / f"{name}.gz", "wb") as f:
                f.write(blob)
        else:
            (folder / name).write_bytes(blob)


def _solid(color, size=(32, 32), mode="RGB"):
    return Image.new(mode, size, color)


def _color(i):
    return (20 * i + 10, 255 - 20 * i, (60 * i) % 256)


# --------------------------------------------------------------------------- #
# Split / Dataset basics
# --------------------------------------------------------------------------- #
def _toy_split():
    images = torch.arange(6 * 1 * 2 * 3, dtype=torch.uint8).reshape(6, 1, 2, 3)
    labels = torch.tensor([2, 0, 2, 1, 2, 0])
    return Split(images, labels, 3)


def test_split_class_indices_and_counts():
    s = _toy_split()
    assert len(s) == 6
    assert s.class_counts() == [2, 1, 3]
    assert [ix.tolist() for ix in s.class_indices] == [[1, 5], [3], [0, 2, 4]]
    assert all(ix.dtype == torch.int64 for ix in s.class_indices)
    assert s.labels.dtype == torch.int64 and s.images.is_contiguous()


def test_split_rejects_bad_input():
    with pytest.raises(FyiError, match="uint8"):
        Split(torch.zeros(2, 1, 2, 2), torch.tensor([0, 1]), 2)
    with pytest.raises(FyiError, match="labels"):
        Split(torch.zeros(2, 1, 2, 2, dtype=torch.uint8), torch.tensor([0, 5]), 2)


def test_sample_indices():
    s = _toy_split()
    idx = s.sample_indices(2, 3, _gen(1))
    assert sorted(idx.tolist()) == [0, 2, 4]
    idx = s.sample_indices(2, 2, _gen(1))
    assert len(set(idx.tolist())) == 2 and set(idx.tolist()) <= {0, 2, 4}
    assert torch.equal(idx, s.sample_indices(2, 2, _gen(1)))  # same seed, same draw
    assert idx.dtype == torch.int64
    assert s.sample_indices(0, 0, _gen()).numel() == 0
    with pytest.raises(FyiError) as err:
        s.sample_indices(1, 2, _gen())
    msg = str(err.value)
    assert "class 1" in msg and "n=2" in msg and "only 1" in msg
    with pytest.raises(FyiError, match="does not exist"):
        s.sample_indices(3, 1, _gen())


def test_flip_extend_mirrors_second_half():
    s = _toy_split()
    f = flip_extend(s)
    assert len(f) == 12 and f.images.shape == (12, 1, 2, 3)
    assert torch.equal(f.images[:6], s.images)
    assert torch.equal(f.images[6:], s.images.flip(-1))
    assert f.images[7, 0, 1, 0] == s.images[1, 0, 1, 2]
    assert f.labels.tolist() == s.labels.tolist() * 2
    assert f.class_counts() == [4, 2, 6]


def test_normalize_denormalize_and_real_images():
    info = DatasetInfo("toy", 2, 2, ("a", "b"), (0.5, 0.25), (0.5, 0.25))
    images = torch.tensor([[[[0, 255], [51, 102]], [[255, 255], [0, 0]]]], dtype=torch.uint8)
    split = Split(images.repeat(3, 1, 1, 1), torch.tensor([0, 1, 1]), 2)
    ds = Dataset(info, split, split, "test")
    x = ds.normalize(images)
    assert x.dtype == torch.float32
    assert torch.allclose(x[0, 0], torch.tensor([[-1.0, 1.0], [-0.6, -0.2]]), atol=1e-6)
    assert torch.allclose(x[0, 1], torch.tensor([[3.0, 3.0], [-1.0, -1.0]]), atol=1e-6)
    back = ds.denormalize(x)
    assert torch.allclose(back, images.float() / 255, atol=1e-6)
    assert ds.denormalize(torch.full((1, 2, 1, 1), 100.0)).max() == 1.0
    r = ds.real_images(1, 2, _gen(), device="cpu")
    assert r.shape == (2, 2, 2, 2) and torch.allclose(r[0], x[0])
    with pytest.raises(FyiError, match=r"class 0 \(a\)"):
        ds.real_images(0, 2, _gen())


def test_check_ipc_is_the_one_ipc_rule():
    from fyi_apps import validate

    split = Split(torch.zeros(3, 1, 2, 2, dtype=torch.uint8), torch.tensor([0, 1, 1]), 2)
    ds = Dataset(DatasetInfo("toy", 1, 2, ("a", "b"), (0.5,), (0.5,)), split, split, "test")
    ds.check_ipc(1)
    with pytest.raises(FyiError, match=r"^ipc must be at least 1, got 0$"):
        ds.check_ipc(0)
    with pytest.raises(FyiError, match=r"^ipc=2 is larger than class 0 \(a\) of toy, which has 1 training images; "
                                       r"use ipc=1 or less$"):
        ds.check_ipc(2)
    with pytest.raises(FyiError, match=r"^ipc must be a positive integer, got 0; use a whole number of 1 or more$"):
        validate.ipc(0)
    assert validate.ipc("3", strings=True) == 3


# --------------------------------------------------------------------------- #
# Registry, names, roots
# --------------------------------------------------------------------------- #
def test_registry_names_and_aliases():
    names = list_datasets()
    for n in ("cifar10", "cifar10-jpeg", "cifar100", "mnist", "fashion-mnist", "svhn", "tiny-imagenet",
              "imagenette", "imagewoof", "imagefruit", "imageyellow", "imagemeow", "imagesquawk",
              "digits", "imagefolder"):
        assert n in names
    assert dataset_info("FMNIST").name == "fashion-mnist"
    assert dataset_info("FashionMNIST").class_names[0] == "T-shirt/top"
    assert dataset_info("CIFAR10").class_names == CIFAR10_CLASSES
    assert dataset_info("cifar100").num_classes == 100
    info = dataset_info("imagewoof")
    assert (info.channels, info.image_size, info.num_classes) == (3, 128, 10)
    assert info.class_names[0] == "Australian terrier"
    assert dataset_info("mnist").mean == (0.1307,)
    for subset, classes in IMAGENET_SUBSETS.items():
        assert len({w for w, _ in classes}) == 10, subset


def test_unknown_dataset_lists_known_names():
    with pytest.raises(FyiError) as err:
        load_dataset("cifar11")
    assert "cifar11" in str(err.value) and "cifar10" in str(err.value) and "imagenette" in str(err.value)
    with pytest.raises(FyiError, match="suffix"):
        load_dataset("cifar10:/somewhere")
    with pytest.raises(FyiError, match="image_size"):
        load_dataset("digits", image_size="big")


def test_missing_files_say_where_and_how(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("FYI_DATA", str(empty))
    with pytest.raises(FyiError) as err:
        load_dataset("cifar100")
    msg = str(err.value)
    assert str(empty) in msg and "FYI_DATA" in msg and "root=DIR" in msg and "cifar-100-python" in msg
    with pytest.raises(FyiError, match="does not exist"):
        load_dataset("mnist", root=tmp_path / "nowhere")
    with pytest.raises(FyiError, match="FYI_DATA"):
        load_dataset("tiny-imagenet", root=empty)


def test_register_custom_dataset(monkeypatch):
    monkeypatch.setattr(data.registry, "DATASETS", data.registry.DATASETS.copy())
    seen = {}

    @register_dataset("toyset", aliases=("toy",))
    def _load(req):
        seen["req"] = req
        split = Split(torch.full((4, 1, 5, 5), 9, dtype=torch.uint8), torch.tensor([0, 1, 0, 1]), 2)
        return Dataset(DatasetInfo("toyset", 1, 5, ("x", "y"), (0.0,), (1.0,)), split, split, "made up")

    assert "toyset" in list_datasets()
    ds = load_dataset("TOY", image_size=10, extend_flip=True)
    assert seen["req"].name == "toyset" and seen["req"].origin == "default"
    assert ds.info.image_size == 10 and ds.train.images.shape == (8, 1, 10, 10)
    assert int(ds.train.images[0, 0, 4, 4]) == 9
    assert dataset_info("toyset").class_names == ("x", "y")  # no static info: loads the data
    with pytest.raises(FyiError, match="already registered"):
        register_dataset("toyset", _load)


def test_register_dataset_class(monkeypatch):
    monkeypatch.setattr(data.registry, "DATASETS", data.registry.DATASETS.copy())
    info = DatasetInfo("classy", 1, 5, ("x", "y"), (0.0,), (1.0,))

    @register_dataset("classy")
    class Classy(data.DatasetFamily):
        aliases = ("classy-alias",)
        static_info = info

        def load(self, req):
            split = Split(torch.full((2, 1, 5, 5), 3, dtype=torch.uint8), torch.tensor([0, 1]), 2)
            return Dataset(info, split, split, f"made up for {req.name}")

    assert isinstance(Classy, type) and "classy" in list_datasets()
    assert load_dataset("classy-alias").source == "made up for classy"
    assert dataset_info("CLASSY") is info  # static: no loading
    with pytest.raises(FyiError, match="takes no ':...' suffix"):  # classes take no option unless they say so
        load_dataset("classy:/x")


# --------------------------------------------------------------------------- #
# CIFAR
# --------------------------------------------------------------------------- #
def test_cifar10_pickles(tmp_path):
    train_labels, test_labels = write_cifar10(tmp_path / "d")
    ds = load_dataset("cifar10", root=tmp_path / "d")
    assert ds.train.images.shape == (20, 3, 32, 32) and ds.train.images.dtype == torch.uint8
    assert ds.test.images.shape == (6, 3, 32, 32)
    assert ds.train.labels.tolist() == train_labels and ds.test.labels.tolist() == test_labels
    # batch 3 (b=2), row 1 -> R(0,0) = 21, G(0,5) = 200, B(31,31) = 7
    assert int(ds.train.images[9, 0, 0, 0]) == 21
    assert int(ds.train.images[9, 1, 0, 5]) == 200 and int(ds.train.images[9, 2, 31, 31]) == 7
    assert int(ds.test.images[4, 0, 0, 0]) == 104
    assert ds.info.class_names == CIFAR10_CLASSES and ds.info.mean == (0.4914, 0.4822, 0.4465)
    assert ds.train.class_counts() == [2] * 10
    assert "cifar-10-batches-py" in ds.source
    small = load_dataset("cifar10", root=tmp_path / "d", image_size=16)
    assert small.train.images.shape == (20, 3, 16, 16) and small.info.image_size == 16


def test_cifar10_found_through_fyi_data_and_default_dirs(tmp_path, monkeypatch):
    write_cifar10(tmp_path / "elsewhere" / "cifar10", per_batch=1, n_test=1)
    monkeypatch.setenv("FYI_DATA", os.pathsep.join([str(tmp_path / "x"), str(tmp_path / "elsewhere")]))
    assert len(load_dataset("cifar10").train) == 5
    monkeypatch.delenv("FYI_DATA")
    work = tmp_path / "proj"
    write_cifar10(work / "data", per_batch=2, n_test=1)
    monkeypatch.chdir(work)
    assert len(load_dataset("cifar10").train) == 10


def test_cifar100_pickles(tmp_path):
    train_fine, test_fine = write_cifar100(tmp_path)
    ds = load_dataset("cifar100", root=tmp_path)
    assert ds.info.num_classes == 100 and ds.info.class_names[99] == "worm"
    assert ds.train.labels.tolist() == train_fine and ds.test.labels.tolist() == test_fine
    assert ds.train.class_counts()[42] == 2 and ds.train.class_indices[42].tolist() == [2, 3]
    assert int(ds.train.images[4, 0, 0, 0]) == 54 and int(ds.test.images[1, 0, 0, 0]) == 151
    assert ds.info.std == (0.2673, 0.2564, 0.2762)


def _write_cifar_jpeg_archive(path: Path, top="cifar10", per_class=2, test_per_class=1):
    src = path.parent / "src"
    for split, n in (("train", per_class), ("test", test_per_class)):
        for ci, c in enumerate(CIFAR10_CLASSES):
            d = src / top / split / c
            d.mkdir(parents=True)
            for k in range(n):
                _solid(_color(ci)).save(d / f"{k:04d}.jpg", quality=95)
    with tarfile.open(path, "w:gz") as tf:
        tf.add(src / top, arcname=top)


def test_cifar10_jpeg_archive_and_cache(tmp_path, monkeypatch):
    archive = tmp_path / "cifar10-jpeg.tar.gz"
    _write_cifar_jpeg_archive(archive)
    ds = load_dataset("cifar10-jpeg", root=tmp_path)
    assert ds.train.images.shape == (20, 3, 32, 32) and ds.test.images.shape == (10, 3, 32, 32)
    assert ds.train.labels.tolist() == [c for c in range(10) for _ in range(2)]
    for i in (0, 7, 19):
        c = int(ds.train.labels[i])
        mean = ds.train.images[i].float().mean((1, 2))
        assert torch.allclose(mean, torch.tensor(_color(c), dtype=torch.float32), atol=3), (i, mean)
    assert "JPEG copy" in ds.source and str(archive) in ds.source
    assert ds.info.name == "cifar10-jpeg" and ds.info.class_names == CIFAR10_CLASSES
    assert len(list((tmp_path / "cache" / "datasets").glob("cifar10-jpeg-*.pt"))) == 1

    # second load: from the cache, no reading or decoding of the archive
    monkeypatch.setattr(data.cifar, "_read_split_archive", _raise)
    monkeypatch.setattr(data.cifar, "decode_images", _raise)
    again = load_dataset("cifar10-jpeg", root=tmp_path)
    assert torch.equal(again.train.images, ds.train.images) and torch.equal(again.test.labels, ds.test.labels)
    # cifar10 without pickles falls back to the archive (same cache) and says so
    fallback = load_dataset("cifar10", root=tmp_path)
    assert fallback.info.name == "cifar10" and "JPEG copy" in fallback.source
    assert "cifar-10-batches-py" in fallback.source
    assert torch.equal(fallback.train.images, ds.train.images)
    with pytest.raises(AssertionError, match="decoded again"):
        load_dataset("cifar10-jpeg", root=tmp_path, cache=False)


def test_jpeg_archive_cache_follows_content(tmp_path, monkeypatch):
    archive = tmp_path / "cifar10-jpeg.tar.gz"
    _write_cifar_jpeg_archive(archive, top="some-other-top", per_class=1)
    assert len(load_dataset("cifar10-jpeg", root=archive).train) == 10  # root may be the file itself
    archive.unlink()
    _write_cifar_jpeg_archive(tmp_path / "v2" / "cifar10-jpeg.tar.gz", per_class=3)
    ds = load_dataset("cifar10-jpeg", root=tmp_path / "v2")
    assert len(ds.train) == 30  # new content, new cache entry


# --------------------------------------------------------------------------- #
# MNIST / Fashion-MNIST
# --------------------------------------------------------------------------- #
def test_mnist_torchvision_layout(tmp_path):
    write_idx(tmp_path / "MNIST" / "raw", gz=False, base=30)
    ds = load_dataset("mnist", root=tmp_path)
    assert ds.train.images.shape == (12, 1, 28, 28) and ds.test.images.shape == (5, 1, 28, 28)
    assert ds.train.images.dtype == torch.uint8
    assert ds.train.labels.tolist() == [k % 10 for k in range(12)]
    assert int(ds.train.images[11, 0, 3, 4]) == 41 and int(ds.test.images[2, 0, 3, 4]) == 32
    assert int(ds.train.images[11].sum()) == 41
    assert ds.info.class_names == tuple("0123456789") and ds.info.channels == 1


def test_fashion_mnist_flat_gz_folder(tmp_path, monkeypatch):
    flat = tmp_path / "flat"
    write_idx(flat, gz=True, base=100)
    assert sorted(os.listdir(flat))[0] == "t10k-images-idx3-ubyte.gz"
    ds = load_dataset("fmnist", root=flat)
    assert ds.info.name == "fashion-mnist" and ds.info.class_names[9] == "Ankle boot"
    assert int(ds.train.images[5, 0, 3, 4]) == 105 and ds.test.labels.tolist() == [0, 1, 2, 3, 4]
    assert str(flat) in ds.source
    monkeypatch.setattr(gzip, "open", _raise)  # cached: nothing is decompressed again
    assert torch.equal(load_dataset("fashion-mnist", root=flat).train.images, ds.train.images)


def test_mnist_flat_folder_not_taken_from_default_dirs(tmp_path, monkeypatch):
    # a flat folder of IDX files named only by the default search is ambiguous (MNIST or Fashion?)
    write_idx(tmp_path / "proj" / "data", gz=True)
    monkeypatch.chdir(tmp_path / "proj")
    monkeypatch.setattr(data.registry, "DEFAULT_SEARCH_DIRS", ("./data",))
    with pytest.raises(FyiError, match="MNIST"):
        load_dataset("mnist")
    write_idx(tmp_path / "proj" / "data" / "mnist", gz=True, base=3)
    assert int(load_dataset("mnist").train.images[1, 0, 3, 4]) == 4


# --------------------------------------------------------------------------- #
# SVHN
# --------------------------------------------------------------------------- #
def test_svhn_mat(tmp_path):
    from scipy.io import savemat

    d = tmp_path / "svhn"
    d.mkdir()
    for name, n in (("train", 4), ("test", 3)):
        x = np.zeros((32, 32, 3, n), dtype=np.uint8)
        x[2, 3, 1, :] = 77 + np.arange(n)  # row 2, column 3, green
        y = np.array([[10], [1], [5], [10]][:n], dtype=np.uint8)
        savemat(d / f"{name}_32x32.mat", {"X": x, "y": y})
    ds = load_dataset("svhn", root=tmp_path)
    assert ds.train.images.shape == (4, 3, 32, 32) and ds.test.images.shape == (3, 3, 32, 32)
    assert ds.train.labels.tolist() == [0, 1, 5, 0] and ds.test.labels.tolist() == [0, 1, 5]
    assert int(ds.train.images[3, 1, 2, 3]) == 80 and int(ds.train.images[3].sum()) == 80
    assert ds.info.mean == (0.4377, 0.4438, 0.4728)


# --------------------------------------------------------------------------- #
# Tiny-ImageNet
# --------------------------------------------------------------------------- #
TINY_WNIDS = ["n01641577", "n01443537", "n01629819"]  # deliberately not sorted


def write_tiny(root: Path):
    t = root / "tiny-imagenet-200"
    (t / "val" / "images").mkdir(parents=True)
    (t / "test" / "images").mkdir(parents=True)
    (t / "wnids.txt").write_text("\n".join(TINY_WNIDS) + "\n")
    (t / "words.txt").write_text("n01443537\tgoldfish, Carassius auratus\n"
                                 "n01629819\tEuropean fire salamander, Salamandra salamandra\n"
                                 "n01641577\tbullfrog, Rana catesbeiana\n"
                                 "n09999999\tsomething else\n")
    order = sorted(TINY_WNIDS)
    for w in TINY_WNIDS:
        c = order.index(w)
        d = t / "train" / w / "images"
        d.mkdir(parents=True)
        (t / "train" / w / f"{w}_boxes.txt").write_text(f"{w}_0.JPEG\t0\t0\t10\t10\n")
        for k in range(2):
            _solid(_color(c), (64, 64)).save(d / f"{w}_{k}.JPEG", quality=95)
    lines = []
    for i, w in enumerate(["n01629819", "n01443537", "n01641577", "n01443537"]):
        _solid(_color(order.index(w)), (64, 64)).save(t / "val" / "images" / f"val_{i}.JPEG", quality=95)
        lines.append(f"val_{i}.JPEG\t{w}\t0\t0\t63\t63")
    _solid(128, (64, 64), "L").save(t / "val" / "images" / "val_4.JPEG")  # grayscale file
    lines.append("val_4.JPEG\tn01641577\t1\t2\t3\t4")
    (t / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    return t


def test_tiny_imagenet(tmp_path):
    write_tiny(tmp_path)
    info = dataset_info("tinyimagenet", root=tmp_path)
    assert info.class_names == ("goldfish", "European fire salamander", "bullfrog")
    ds = load_dataset("tiny-imagenet", root=tmp_path)
    assert ds.train.images.shape == (6, 3, 64, 64) and ds.test.images.shape == (5, 3, 64, 64)
    assert ds.train.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert ds.test.labels.tolist() == [1, 0, 2, 0, 2]
    assert ds.info.class_names == info.class_names and ds.info.image_size == 64
    for split in (ds.train, ds.test):
        for i in range(4):
            mean = split.images[i].float().mean((1, 2))
            expected = torch.tensor(_color(int(split.labels[i])), dtype=torch.float32)
            assert torch.allclose(mean, expected, atol=3), (i, mean, expected)
    assert torch.all((ds.test.images[4].float() - 128).abs() <= 2)  # gray -> 3 equal channels


# --------------------------------------------------------------------------- #
# ImageNet subsets
# --------------------------------------------------------------------------- #
def write_imagenet(root: Path, subset="imagenette", train_per_class=1, decoy="n09999999"):
    wnids = [w for w, _ in IMAGENET_SUBSETS[subset]] + [decoy]
    for split, n in (("train", train_per_class), ("val", 1)):
        for c, w in enumerate(wnids):
            d = root / "imagenet" / split / w
            d.mkdir(parents=True)
            for k in range(n):
                # non-square: 48x36 -> shorter side to 128, centre crop; a red bar on the left edge
                im = _solid(_color(c), (48, 36))
                for y in range(36):
                    for x in range(4):
                        im.putpixel((x, y), (255, 0, 0))
                im.save(d / f"{w}_{k}.JPEG", quality=95)
    return wnids


def test_imagenette_subset_from_imagenet_folder(tmp_path, monkeypatch):
    write_imagenet(tmp_path, train_per_class=2)
    ds = load_dataset("imagenette", root=tmp_path, image_size=32)
    assert ds.train.images.shape == (20, 3, 32, 32) and ds.test.images.shape == (10, 3, 32, 32)
    assert ds.train.class_counts() == [2] * 10  # the decoy wnid is ignored
    assert ds.test.labels.tolist() == list(range(10))
    assert ds.info.class_names[0] == "tench" and ds.info.class_names[9] == "parachute"
    assert ds.info.mean == (0.485, 0.456, 0.406) and ds.info.image_size == 32
    for i in range(10):
        center = ds.test.images[i, :, 12:20, 12:20].float().mean((1, 2))
        assert torch.allclose(center, torch.tensor(_color(i), dtype=torch.float32), atol=4), (i, center)
    # 48x36 -> 42x32 -> crop 5 px each side: the 4 px red bar (scaled to ~3.6 px) is cropped away
    assert ds.test.images[3, 0, :, 0].float().mean() < 200
    monkeypatch.setattr(data.decode, "decode_files", _raise)
    assert torch.equal(load_dataset("imagenette", root=tmp_path / "imagenet", image_size=32).train.images,
                       ds.train.images)


def test_imagenet_subset_default_size_and_missing_wnid(tmp_path):
    wnids = write_imagenet(tmp_path, subset="imagewoof")
    ds = load_dataset("imagewoof", root=tmp_path)
    assert ds.train.images.shape == (10, 3, 128, 128)
    assert ds.info.class_names[2] == "Samoyed" and ds.train.labels.tolist() == list(range(10))
    import shutil

    shutil.rmtree(tmp_path / "imagenet" / "train" / wnids[4])
    with pytest.raises(FyiError, match=wnids[4]):
        load_dataset("imagewoof", root=tmp_path)


# --------------------------------------------------------------------------- #
# scikit-learn digits and generic image folders
# --------------------------------------------------------------------------- #
def test_digits_always_available():
    ds = load_dataset("digits")
    assert (len(ds.train), len(ds.test)) == (1437, 360)
    assert ds.train.images.shape[1:] == (1, 8, 8) and ds.train.images.dtype == torch.uint8
    assert ds.info.num_classes == 10 and ds.info.channels == 1
    assert int(ds.train.images.max()) == 255
    mean = ds.train.images.float().div(255).mean().item()
    assert abs(mean - ds.info.mean[0]) < 1e-3
    assert sum(ds.train.class_counts()) == 1437 and min(ds.test.class_counts()) >= 35
    again = load_dataset("digits")
    assert torch.equal(again.train.labels, ds.train.labels)  # deterministic split


def write_imagefolder(root: Path, mode="RGB"):
    values = {}
    for split, n in (("train", 3), ("test", 1)):
        for c, name in enumerate(("cat", "dog")):
            d = root / split / name
            d.mkdir(parents=True)
            for k in range(n):
                v = 40 * c + 10 * k + (5 if split == "test" else 0)
                color = (v, v + 1, v + 2) if mode == "RGB" else v
                im = _solid(color, (12, 12), mode)
                im.putpixel((11, 0), (250, 0, 0) if mode == "RGB" else 250)
                im.save(d / f"{k}.png")
                values[(split, c, k)] = v
    return values


def test_imagefolder_rgb(tmp_path):
    root = tmp_path / "folder"
    write_imagefolder(root)
    ds = load_dataset(f"imagefolder:{root}")
    assert ds.info.class_names == ("cat", "dog") and ds.info.channels == 3 and ds.info.image_size == 12
    assert ds.train.images.shape == (6, 3, 12, 12) and ds.test.labels.tolist() == [0, 1]
    assert ds.train.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert ds.train.images[4, :, 5, 5].tolist() == [50, 51, 52]
    assert ds.train.images[4, :, 0, 11].tolist() == [250, 0, 0]
    x = ds.train.images.double() / 255
    expected = x.mean((0, 2, 3))
    assert torch.allclose(torch.tensor(ds.info.mean, dtype=torch.float64), expected, atol=1e-4)
    assert torch.allclose(torch.tensor(ds.info.std, dtype=torch.float64), x.std((0, 2, 3), unbiased=False),
                          atol=1e-4)
    same = load_dataset("imagefolder", root=root)  # root= instead of the name suffix
    assert torch.equal(same.train.images, ds.train.images)
    with pytest.raises(FyiError, match="imagefolder needs a folder"):
        load_dataset("imagefolder")


def test_imagefolder_grayscale_and_resize(tmp_path):
    root = tmp_path / "gray"
    write_imagefolder(root, mode="L")
    (root / "test").rename(root / "val")
    big = Image.new("L", (24, 16), 33)  # non-square: resized to 6x9, centre-cropped to 6x6
    big.save(root / "train" / "dog" / "big.png")
    ds = load_dataset("imagefolder", root=root, image_size=6)
    assert ds.info.channels == 1 and ds.train.images.shape == (7, 1, 6, 6)
    assert ds.train.class_counts() == [3, 4]
    assert torch.all(ds.train.images[6] == 33)
    assert ds.test.images.shape == (2, 1, 6, 6)


# --------------------------------------------------------------------------- #
# The real data, where present
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="session")
def session_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("fyi-session-cache")


@pytest.mark.skipif(not (FASHION_SYSTEM / "train-images-idx3-ubyte.gz").is_file(),
                    reason="Debian package dataset-fashion-mnist not installed")
def test_real_fashion_mnist(monkeypatch, session_cache):
    monkeypatch.setenv("FYI_CACHE", str(session_cache))
    monkeypatch.setenv("FYI_DATA", str(session_cache / "no-data-here"))
    ds = load_dataset("fashion-mnist")  # found in the Debian system folder
    assert (len(ds.train), len(ds.test)) == (60000, 10000)
    assert ds.train.images.shape[1:] == (1, 28, 28) and ds.train.class_counts() == [6000] * 10
    assert abs(ds.train.images.float().mean().item() / 255 - 0.2861) < 1e-3


@pytest.mark.skipif(not (SHARED / "cifar10-jpeg.tar.gz").is_file(), reason="shared/data/cifar10-jpeg.tar.gz absent")
def test_real_cifar10_jpeg(monkeypatch, session_cache):
    monkeypatch.setenv("FYI_CACHE", str(session_cache))
    ds = load_dataset("cifar10-jpeg", root=SHARED)
    assert (len(ds.train), len(ds.test)) == (50000, 10000)
    assert ds.train.images.shape[1:] == (3, 32, 32) and ds.test.class_counts() == [1000] * 10
    mean = ds.train.images[::10].float().mean((0, 2, 3)) / 255
    assert torch.allclose(mean, torch.tensor([0.491, 0.481, 0.443]), atol=0.01)


def test_corrupt_files_are_named(tmp_path):
    archive = tmp_path / "cifar10-jpeg.tar.gz"
    _write_cifar_jpeg_archive(archive, per_class=1)
    bad = tmp_path / "src" / "cifar10" / "train" / "cat" / "0000.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0" + b"not a jpeg" * 10)
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(tmp_path / "src" / "cifar10", arcname="cifar10")
    with pytest.raises(FyiError, match="train/cat/0000.jpg"):
        load_dataset("cifar10-jpeg", root=tmp_path)
    root = tmp_path / "folder"
    write_imagefolder(root)
    (root / "train" / "dog" / "1.png").write_bytes(b"garbage")
    with pytest.raises(FyiError, match="1.png"):
        load_dataset("imagefolder", root=root)
