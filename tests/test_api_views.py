"""Looking at things and plugging them in: short reprs, torch datasets, grids, list_models patterns, dir(fyi)."""
import torch

import fyi_apps as fyi


def test_reprs_are_short(digits):
    assert repr(digits) == "Dataset('digits': train 1437, test 360 images, 1x8x8, 10 classes)"
    assert repr(digits.train) == "Split(1437 images [1, 8, 8] uint8, 10 classes)"
    assert len(repr(fyi.random_subset(digits, 5))) < 200


def test_torch_datasets_are_normalised_like_the_source(digits):
    t = digits.as_torch_dataset("train")
    x, y = t[3]
    assert isinstance(t, torch.utils.data.Dataset) and len(t) == len(digits.train)
    assert torch.allclose(x, digits.normalize(digits.train.images[3:4])[0]) and y == int(digits.train.labels[3])
    batch = next(iter(torch.utils.data.DataLoader(t, batch_size=7)))
    assert batch[0].shape == (7, 1, 8, 8) and batch[0].dtype == torch.float32
    flipped = digits.as_torch_dataset("test", transform=lambda im: im.flip(-1))
    assert torch.equal(flipped[0][0], digits.as_torch_dataset("test")[0][0].flip(-1))
    s = fyi.random_subset(digits, 2)
    sx, sy = s.as_torch_dataset()[5]
    assert torch.equal(sx, s.decoded()[0][5].float()) and sy == int(s.decoded()[1][5])


def test_show_is_a_class_per_row_grid(digits):
    s = fyi.random_subset(digits, 3)
    grid = s.show(padding=2)
    assert grid.shape == (3, 10 * (8 + 2) + 2, 3 * (8 + 2) + 2) and 0 <= float(grid.min()) <= float(grid.max()) <= 1
    assert type(s.show(figure=True)).__name__ == "Figure"


def test_list_models_takes_wildcards_over_ours_nb201_and_timm():
    assert fyi.list_models("resnet*") == ["resnet18", "resnet18bn"]
    assert "convnet" in fyi.list_models() and not any(m.startswith("timm:") for m in fyi.list_models())
    assert len(fyi.list_models("nb201:*")) == 15625
    timm_ones = fyi.list_models("timm:resnet1*")
    assert "timm:resnet18" in timm_ones and all(m.startswith("timm:resnet1") for m in timm_ones)
    assert fyi.list_models("no-such-*") == []


def test_dir_lists_only_public_names():
    names = dir(fyi)
    assert "load_dataset" in names and "rank" in names
    assert not [n for n in names if n.startswith("_") and n != "__version__"] and "importlib" not in names
    assert "TYPE_CHECKING" not in names


def test_create_model_speaks_timm(tmp_path):
    import pytest
    import timm

    from fyi_apps.errors import FyiError

    a = fyi.create_model("convnet", in_chans=3, num_classes=10, image_size=32, seed=1)
    b = fyi.create_model("convnet", channels=3, num_classes=10, image_size=32, seed=1)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    with pytest.raises(FyiError, match="disagree"):
        fyi.create_model("convnet", channels=1, in_chans=3, num_classes=10, image_size=32)
    # pretrained weights from a local file are loaded; weights that are not on disk are one line, no download
    src = timm.create_model("resnet18", num_classes=10)
    path = tmp_path / "w.pth"
    torch.save(src.state_dict(), path)
    net = fyi.create_model("timm:resnet18", in_chans=3, num_classes=10, image_size=32, pretrained=True,
                           pretrained_cfg_overlay={"file": str(path)})
    assert torch.equal(net.model.conv1.weight, src.conv1.weight)
    with pytest.raises(FyiError, match="not on disk .* never downloads"):
        fyi.create_model("timm:resnet18", in_chans=3, num_classes=10, image_size=32, pretrained=True)


def test_eval_results_name_their_percentages(digits):
    res = fyi.evaluate(fyi.random_subset(digits, 1), digits, arch="mlp", seeds=[0, 1],
                       cfg={"epochs": 2, "dsa": False})
    assert res.mean_pct == 100 * res.mean and res.std_pct == 100 * res.std
    assert res.accs_pct == [100 * a for a in res.accs] and 0 <= res.mean <= 1
    assert res.to_dict()["mean_pct"] == res.mean_pct
