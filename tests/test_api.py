"""The public functions of ``import fyi_apps as fyi`` (fyi-apps issue 25): real signatures, typed results,
what a user has at hand accepted, mistakes refused with one line naming the argument."""
import inspect
import sys

import pytest
import torch

import fyi_apps as fyi
from fyi_apps.errors import FyiError

FAST = {"epochs": 2, "dsa": False}


PUBLIC_FUNCTIONS = ("distill", "evaluate", "load_dataset", "load_synset", "create_model", "list_models",
                    "list_datasets", "make_memory", "rank", "score", "show")


@pytest.mark.parametrize("name", PUBLIC_FUNCTIONS)
def test_public_functions_have_real_signatures_and_timm_style_docstrings(name):
    fn = getattr(fyi, name)
    assert inspect.isfunction(fn), name
    sig = inspect.signature(fn)
    assert "args" not in sig.parameters and sig.return_annotation is not inspect.Signature.empty
    for part in ("Args:", "Returns:", "Example:"):
        assert part in (fn.__doc__ or ""), f"{name}'s docstring has no {part}"


def test_distill_and_evaluate_are_functions_with_real_signatures():
    assert list(inspect.signature(fyi.evaluate).parameters)[:3] == ["synset", "dataset", "arch"]
    assert list(inspect.signature(fyi.distill).parameters)[:4] == ["method", "dataset", "ipc", "fyi"]
    import pydoc

    assert "synset" in pydoc.render_doc(fyi.evaluate) and "function" in pydoc.render_doc(fyi.evaluate)


def test_the_submodules_of_the_same_names_still_import():
    import fyi_apps.distill  # noqa: F401  binds the function, not the package
    from fyi_apps.distill import DistillConfig
    from fyi_apps.evaluate import EvalConfig

    assert inspect.isfunction(fyi.distill) and inspect.isfunction(fyi.evaluate)
    assert sys.modules["fyi_apps.distill"].DistillConfig is DistillConfig is fyi.DistillConfig
    assert sys.modules["fyi_apps.evaluate"].EvalConfig is EvalConfig
    assert fyi.distill.Callback is fyi.Callback  # the package's public names reach through the function


def test_dir_lists_public_names_only():
    names = dir(fyi)
    assert {"distill", "evaluate", "show", "score", "rank", "EvalResult", "RankingResult"} <= set(names)
    assert not [n for n in names if n.startswith("_") and n != "__version__"]
    assert "TYPE_CHECKING" not in names and "importlib" not in names


def test_evaluate_takes_names_paths_and_config_fields(digits, tmp_path):
    s = fyi.random_subset(digits, 1)
    path = tmp_path / "s.safetensors"
    fyi.save_synset(path, s)
    one = fyi.evaluate(str(path), arch="mlp", seeds=[0], **FAST)  # dataset: the set's own, by name
    assert isinstance(one, fyi.EvalResult) and one.arch == "mlp" and one.epochs == 2
    again = fyi.evaluate(s, "digits", arch="mlp", seeds=[0], cfg=fyi.EvalConfig(**FAST))
    assert again.accs == one.accs  # same seed, same bits, whichever way the inputs came
    both = fyi.evaluate(s, digits, arch=["mlp", "convnet"], seeds=[0], **FAST)
    assert list(both) == ["mlp", "convnet"] and both["mlp"].accs == one.accs
    with pytest.raises(FyiError, match="unknown argument.*epoch\\b"):
        fyi.evaluate(s, digits, epoch=3)
    with pytest.raises(FyiError, match="dataset must be a Dataset or a dataset name"):
        fyi.evaluate(s, 3)


def test_the_old_archs_spelling_warns(digits):
    from fyi_apps.evaluate import evaluate_synset

    s = fyi.random_subset(digits, 1)
    with pytest.warns(FutureWarning, match=r"use evaluate_synset\(arch="):
        res = evaluate_synset(s, digits, archs="mlp", seeds=[0], cfg=FAST, device="cpu")
    assert list(res) == ["mlp"]


def test_show_sets_datasets_and_tensors(digits, tmp_path):
    s = fyi.random_subset(digits, 2)
    assert torch.equal(fyi.show(s), s.show(10))
    grid = fyi.show(digits, max_per_class=3, padding=1)
    assert grid.shape == (3, 10 * 9 + 1, 3 * 9 + 1)
    first = digits.train.images[(digits.train.labels == 0).nonzero()[0, 0]].float() / 255
    assert torch.allclose(grid[0, 1:9, 1:9], first[0])  # row 0 starts with the first image of class 0
    assert fyi.show(torch.rand(6, 3, 4, 4), max_per_class=3, padding=0).shape == (3, 8, 12)
    fig = fyi.show(s, figure=True)
    assert type(fig).__name__ == "Figure"
    with pytest.raises(FyiError, match="x must be"):
        fyi.show(42)


def test_the_cli_grid_is_the_same_grid(digits, tmp_path):
    """``fyi show`` / ``export_grid`` draw SyntheticSet.show's tensor (make_grid), not a second layout."""
    from fyi_apps.plots import class_grid

    s = fyi.random_subset(digits, 2)
    direct = class_grid(s.to_pixels(), s.labels, 10, max_per_class=None, padding=2)
    assert torch.equal(s.show(), direct)
    from fyi_apps.synset import export_grid

    png = export_grid(s, tmp_path / "g.png")
    assert png.exists() and png.stat().st_size > 0


def test_score_returns_a_typed_result(digits):
    s = fyi.random_subset(digits, 2)
    r = fyi.score(s, num_nets=2, device="cpu")
    assert isinstance(r, fyi.UnequalnessResult) and r.num_nets == 2 and r.num_images == 20 and r.score > 0
    from fyi_apps.distill.score import unequalness

    images, labels = s.decoded()
    assert r.score == unequalness(images, labels, 10, num_nets=2, device="cpu")["score"]
    real = fyi.score(digits, ipc=2, num_nets=2, device="cpu")
    assert real.score == r.score  # the same seeded random subset
    with pytest.raises(FyiError, match="ipc applies only when x is a dataset"):
        fyi.score(s, ipc=3)


def test_errors_name_the_argument_in_python_and_the_flag_on_the_command_line(digits, capsys):
    from fyi_apps.cli import main
    from fyi_apps.errors import command_line

    with pytest.raises(FyiError) as caught:
        digits.check_ipc(1000)
    assert "ipc=1000 is larger than class" in str(caught.value) and "--" not in str(caught.value)
    with command_line():
        assert str(caught.value).startswith("--ipc 1000 is larger than class")
    assert main(["distill", "--method", "dm", "--dataset", "digits", "--ipc", "1000"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fyi: error: --ipc 1000 is larger than class")


def test_list_datasets_takes_a_wildcard():
    assert fyi.list_datasets("cifar*") == ["cifar10", "cifar10-jpeg", "cifar100"]
    assert "digits" in fyi.list_datasets() and fyi.list_datasets("no-such*") == []
