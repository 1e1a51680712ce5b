"""A dataset family of one's own, built only from fyi_apps.data's public helpers (what the built-in families use)."""
import pytest
import torch

from fyi_apps import data
from fyi_apps.data import (Dataset, DatasetFamily, DatasetInfo, cached_dataset, channel_stats, list_image_folder,
                           load_dataset, missing_files, register_dataset, split_from_samples, stat_fingerprint)
from fyi_apps.errors import FyiError

CLASSES = ("circle", "square")


def _write_pngs(folder, n):
    from PIL import Image

    for c, name in enumerate(CLASSES):
        (folder / name).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (8, 8), (40 * c + i, 100 + i, 200 - 9 * c)).save(folder / name / f"{i}.png")


def test_a_users_family_decodes_once_with_the_public_helpers(tmp_path, monkeypatch):
    monkeypatch.setattr(data.registry, "DATASETS", data.registry.DATASETS.copy())
    monkeypatch.setenv("FYI_CACHE", str(tmp_path / "cache"))
    _write_pngs(tmp_path / "root" / "shapes" / "train", 3)
    _write_pngs(tmp_path / "root" / "shapes" / "test", 2)
    decoded = []

    @register_dataset("shapes-test")
    class Shapes(DatasetFamily):
        def load(self, req) -> Dataset:
            folder = next((r / "shapes" for r in req.roots if (r / "shapes").is_dir()), None)
            if folder is None:
                raise missing_files(req, "Shapes", "shapes/ (train/, test/)")
            files = sorted(folder.rglob("*.png"))

            def decode():
                decoded.append(1)
                train, _ = split_from_samples(list_image_folder(folder / "train", CLASSES), req.image_size, 2)
                test, _ = split_from_samples(list_image_folder(folder / "test", CLASSES), req.image_size, 2)
                mean, std = channel_stats(train.images)
                return DatasetInfo("shapes-test", 3, train.images.shape[-1], CLASSES, mean, std), train, test

            return cached_dataset(req, stat_fingerprint(files, folder), f"shapes from {folder}", decode)

    ds = load_dataset("shapes-test", root=tmp_path / "root")
    assert ds.train.images.shape == (6, 3, 8, 8) and ds.test.images.shape == (4, 3, 8, 8)
    assert ds.train.labels.tolist() == [0, 0, 0, 1, 1, 1] and ds.info.mean[1] == pytest.approx(101 / 255, abs=1e-4)
    again = load_dataset("shapes-test", root=tmp_path / "root")  # from the cache: not decoded again
    assert decoded == [1] and torch.equal(again.train.images, ds.train.images)
    with pytest.raises(FyiError, match="Shapes not found: looked for shapes/"):
        load_dataset("shapes-test", root=tmp_path)
