"""--stream-aug: the stream strategies' minibatch augmentation (an Avalanche plugin), end to end and refused
where it does not apply."""
import dataclasses
import json
from types import SimpleNamespace

import pytest
import torch

from fyi_apps.errors import FyiError
from fyi_apps.tasks import continual as cl
from fyi_apps.tasks.continual.augment import StreamAugmentPlugin

ARCH = "ConvNetW32"


def _rows_are_flips_of(out: torch.Tensor, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row: equal to the source row, equal to its mirror image."""
    same = (out == src).flatten(1).all(1)
    mirrored = (out == src.flip(-1)).flatten(1).all(1)
    return same, mirrored


def test_flip_mirrors_some_images_of_the_stream_and_the_memory_batch_repeatably():
    g = torch.Generator().manual_seed(0)
    x, x_mem = torch.randn(64, 3, 8, 8, generator=g), torch.randn(16, 3, 8, 8, generator=g)
    y, t = torch.arange(64) % 10, torch.zeros(64, dtype=torch.long)

    def step(seed, replaying=True):
        plugin = StreamAugmentPlugin("flip", seed=seed)
        s = SimpleNamespace(mbatch=[x.clone(), y, t], mb_buffer_x=x_mem.clone(),
                            replay_loader=iter(()) if replaying else None)
        plugin.before_forward(s)
        return s, plugin

    s, plugin = step(0)
    same, mirrored = _rows_are_flips_of(s.mbatch[0], x)
    assert bool((same | mirrored).all()) and 10 < int(mirrored.sum()) < 54  # about half, per image
    assert s.mbatch[1] is y and s.mbatch[2] is t and plugin.batches == 1
    same_m, mirrored_m = _rows_are_flips_of(s.mb_buffer_x, x_mem)  # ER-ACE's memory batch too
    assert bool((same_m | mirrored_m).all()) and 0 < int(mirrored_m.sum()) < 16
    assert torch.equal(step(0)[0].mbatch[0], s.mbatch[0])  # same seed, same flips
    assert not torch.equal(step(1)[0].mbatch[0], s.mbatch[0])
    idle, _ = step(0, replaying=False)  # not replaying: the (stale) memory batch is left alone
    assert torch.equal(idle.mb_buffer_x, x_mem)


@pytest.mark.parametrize("name", ["dsa", "dsa-fyi"])
def test_dsa_stream_augmentations_change_images_and_keep_shapes(name):
    x = torch.randn(32, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    s = SimpleNamespace(mbatch=[x.clone(), torch.zeros(32, dtype=torch.long)])
    StreamAugmentPlugin(name, seed=0).before_forward(s)
    assert s.mbatch[0].shape == x.shape and not torch.equal(s.mbatch[0], x)
    assert bool(torch.isfinite(s.mbatch[0]).all())


def test_unknown_stream_augmentation_is_refused():
    with pytest.raises(FyiError, match="unknown stream augmentation 'mirror'"):
        StreamAugmentPlugin("mirror")
    assert cl.stream_augment_plugins("none", 0) == []


def test_er_ace_with_flip_trains_on_mirrored_memory_images(digits, tmp_path):
    """A real ER-ACE run: every replayed row is a memory image or its mirror, and both occur."""
    from avalanche.core import SupervisedPlugin

    from fyi_apps.networks import create_model

    bench = cl.make_benchmark(digits.reduced(20), 5, seed=0)
    memory = cl.make_memory("random", ipc=2, num_classes=10)

    class Spy(SupervisedPlugin):
        rows: list = []

        def after_forward(self, strategy, **kwargs):
            if strategy.replay_loader is not None:
                self.rows.append(strategy.mb_buffer_x.detach().cpu().clone())

    spy = Spy()
    model = create_model(ARCH, channels=1, num_classes=10, image_size=8, seed=0)
    out = cl.run_replay(bench, memory, model=model, strategy="er-ace", epochs=1, batch_size=16, seed=0,
                        device="cpu", extra_plugins=[spy], batch_size_mem=8, stream_aug="flip")
    assert out["train"]["stream_aug"] == "flip"
    rows, mem = torch.cat(spy.rows), memory.images
    as_is = torch.stack([(mem == r).flatten(1).all(1).any() for r in rows])
    mirrored = torch.stack([(mem.flip(-1) == r).flatten(1).all(1).any() for r in rows])
    assert bool((as_is | mirrored).all()) and bool((mirrored & ~as_is).any()) and bool((as_is & ~mirrored).any())


def test_stream_aug_reaches_the_run_and_its_cache_key_and_is_refused_by_gdumb(tmp_path, capsys):
    from fyi_apps.cli import main
    from fyi_apps.tasks.continual.experiment import _run_key

    argv = ["cl", "--benchmark", "split-digits", "--memory", "random", "--ipc", "2", "--seeds", "1",
            "--protocol", "replay", "--strategy", "naive", "--train-epochs", "1", "--batch-size", "16",
            "--train-per-class", "12", "--arch", ARCH, "--out", str(tmp_path), "--quiet", "--device", "cpu",
            "--stream-aug", "flip"]
    assert main(argv) == 0
    payload = json.loads((tmp_path / "cl" / "split-digits-5_replay_ipc2.json").read_text())
    assert payload["config"]["stream_aug"] == "flip" and payload["runs"][0]["train"]["stream_aug"] == "flip"
    cfg = cl.CLConfig(protocol="replay")
    assert _run_key(dataclasses.replace(cfg, stream_aug="flip"), "random", 0) != _run_key(cfg, "random", 0)
    capsys.readouterr()
    assert main(argv[:-1] + ["sometimes"]) == 2
    assert "--stream-aug" in capsys.readouterr().err
    gdumb = [a for a in argv if a not in ("replay", "naive", "--strategy")]
    gdumb[gdumb.index("--protocol")] = "--epochs"  # gdumb is the default protocol
    gdumb.insert(gdumb.index("--epochs") + 1, "1")
    assert main(gdumb) == 2
    assert "use --dsa-mode" in capsys.readouterr().err


@pytest.mark.parametrize("fields, message", [
    (dict(protocol="gdumb", stream_aug="flip"), "use dsa_mode"),
    (dict(protocol="replay", dsa_mode="fyi"), "augment with stream_aug"),
    (dict(protocol="replay", stream_aug="mirror"), "stream_aug must be one of"),
])
def test_each_protocol_refuses_the_other_protocols_augmentation_before_any_run(fields, message):
    cfg = cl.CLConfig(benchmark="split-digits", memories=["random"], ipc=2, seeds=[0], **fields)
    with pytest.raises(FyiError, match=message):
        cl.run_experiment(cfg, device="cpu", progress=False)


def test_cli_choices_are_the_plugins_names():
    """The CLI lists --stream-aug's choices without importing Avalanche; they must stay the plugin's names."""
    import argparse

    from fyi_apps.tasks.continual.cli import add_cl_arguments

    p = argparse.ArgumentParser()
    add_cl_arguments(p)
    action = next(a for a in p._actions if "--stream-aug" in a.option_strings)
    assert tuple(action.choices) == cl.STREAM_AUG_NAMES
