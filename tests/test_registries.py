"""ARCHITECTURE.md's claim: a method, a dataset, a network, a CL protocol, a memory kind and a NAS space are
each one new decorated class, found by the library's normal lookups (the examples there, made runnable)."""
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from fyi_apps.errors import FyiError


@pytest.fixture
def cleanup():
    undo = []
    yield undo.append
    for fn in reversed(undo):
        fn()


def test_a_method_is_one_decorated_class(digits, cleanup):
    from fyi_apps.distill import METHODS, Method, MethodOptions, distill, list_methods, option, register_method

    @dataclass(frozen=True)
    class NudgeOptions(MethodOptions):
        step_size: float = option(0.5, min=0.0, doc="how far the images move per iteration")

    @register_method
    class Nudge(Method):  # moves S towards the class means of a real batch: enough to see the loop use it
        name = "nudge-test"
        defaults = {"iterations": 2, "lr_img": 1.0, "batch_real": 8, "dsa": False}
        Options = NudgeOptions

        def step(self, it):
            real, real_labels = self.ctx.real_all(self.ctx.cfg.batch_real)
            target = torch.stack([real[real_labels == c].mean(0) for c in range(self.ctx.num_classes)])
            with torch.no_grad():
                loss = (self.images - target[self.labels]).pow(2).mean()
                self.images.add_(self.opts.step_size * (target[self.labels] - self.images))
            return {"loss": float(loss)}

    cleanup(lambda: METHODS.unregister("nudge-test"))
    assert "nudge-test" in list_methods()
    s = distill("nudge-test", digits, ipc=1, progress=False, step_size=0.25)
    assert s.method == "nudge-test" and s.config["options"] == {"step_size": 0.25} and s.images.shape[0] == 10
    with pytest.raises(FyiError, match="step_sise.*did you mean"):  # its options are typed like the built-in ones
        distill("nudge-test", digits, ipc=1, progress=False, step_sise=0.25)


def test_a_dataset_is_one_decorated_class(cleanup):
    from fyi_apps.data import Dataset, DatasetFamily, DatasetInfo, Split, dataset_info, list_datasets, load_dataset
    from fyi_apps.data import DATASETS, register_dataset

    info = DatasetInfo("stripes", 1, 4, ("even", "odd"), (0.5,), (0.25,))

    @register_dataset("stripes")
    class Stripes(DatasetFamily):
        aliases = ("stripes-test",)
        static_info = info

        def load(self, req):
            x = torch.arange(8, dtype=torch.uint8).view(8, 1, 1, 1).expand(8, 1, 4, 4).contiguous()
            y = torch.arange(8) % 2
            return Dataset(info, Split(x, y, 2), Split(x, y, 2), "made up for the test")

    cleanup(lambda: DATASETS.unregister("stripes"))
    assert "stripes" in list_datasets() and dataset_info("stripes-test").num_classes == 2
    ds = load_dataset("stripes")
    assert ds.train.class_counts() == [4, 4] and ds.source == "made up for the test"


def test_a_network_is_one_decorated_class(cleanup):
    from fyi_apps.networks import MODELS, create_model, list_models, register_model

    @register_model("tinynet-test")
    class TinyNet(nn.Module):
        def __init__(self, channels, num_classes, image_size, width=6):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                      nn.Flatten())
            self.classifier = nn.Linear(width, num_classes)
            self.feature_dim = width

        def embed(self, x):
            return self.body(x)

        def forward(self, x):
            return self.classifier(self.embed(x))

    cleanup(lambda: MODELS.unregister("tinynet-test"))
    assert "tinynet-test" in [m.lower() for m in list_models()]
    net = create_model("tinynet-test:width=5", channels=1, num_classes=3, image_size=8, seed=0)
    assert net(torch.zeros(2, 1, 8, 8)).shape == (2, 3) and net.feature_dim == 5  # options from the name


def test_a_cl_protocol_is_one_decorated_class(cleanup):
    """(A memory kind: tests/test_cl_protocols.py::test_a_new_memory_kind_is_one_decorated_class.)"""
    pytest.importorskip("avalanche")
    from fyi_apps.tasks.continual.protocols import CLProtocol
    from fyi_apps.tasks.continual.registry import PROTOCOLS, register_protocol

    @register_protocol("noop-test")
    class NoOp(CLProtocol):
        def run(self, cfg, bench, memory, *, model, seed, device, progress):
            return {"protocol": "noop-test", "history": [], "memory": [], "train": {}}

    cleanup(lambda: PROTOCOLS.unregister("noop-test"))
    assert PROTOCOLS.get("NOOP-test") is NoOp and "noop-test" in PROTOCOLS.names()


def test_a_nas_space_is_one_decorated_class(cleanup):
    from fyi_apps.tasks.nas import NAMED_SPACES, Space, register_space, sample_candidates

    @register_space("tiny-test")
    class Tiny(Space):
        def candidates(self):
            return ["convnet:depth=1,width=8", "mlp:width=16", "convnet:depth=2,width=8"]

    cleanup(lambda: NAMED_SPACES.unregister("tiny-test"))
    picked = sample_candidates("tiny-test", 2, seed=0)
    assert len(picked) == 2 and set(picked) <= set(Tiny().candidates())


# --------------------------------------------------------------------------- one registry type
def test_one_registry_class_serves_every_registry():
    from fyi_apps.data import DATASETS
    from fyi_apps.distill import METHODS
    from fyi_apps.networks import MODEL_PREFIXES, MODELS
    from fyi_apps.registry import Registry
    from fyi_apps.synset import CODECS
    from fyi_apps.tasks.continual.registry import MEMORIES, PROTOCOLS, STRATEGIES
    from fyi_apps.tasks.nas import NAMED_SPACES

    registries = [MODELS, MODEL_PREFIXES, DATASETS, METHODS, NAMED_SPACES, PROTOCOLS, STRATEGIES, MEMORIES, CODECS]
    assert all(type(r) is Registry for r in registries)
    assert {"dm", "mtt"} <= set(METHODS) and "nb201" in MODEL_PREFIXES and "multiformation" in CODECS
    assert "gdumb" in PROTOCOLS and "er-ace" in STRATEGIES and "herding" in MEMORIES and "dc720" in NAMED_SPACES


def _registry():
    from fyi_apps.registry import Registry

    reg = Registry("widget", set_name="name")

    @reg.register("Round_Thing", "disc")
    class Round:
        pass

    return reg, Round


def test_names_are_normalised_and_aliases_resolve():
    reg, Round = _registry()
    for name in ("Round_Thing", "round-thing", " ROUND_thing ", "disc", "DISC"):
        assert name in reg and reg.get(name) is Round and reg[name] is Round
    assert reg.canonical("disc") == "round-thing" and Round.name == "round-thing"
    assert reg.names() == ["Round_Thing"] and reg.display("round-thing") == "Round_Thing"
    assert reg.aliases() == {"disc": "Round_Thing"} and len(reg) == 1 and list(reg) == ["round-thing"]
    assert 3 not in reg and None not in reg


def test_a_taken_name_or_alias_is_refused_unless_replaced():
    reg, Round = _registry()
    with pytest.raises(FyiError, match=r"^widget 'Round_Thing' is already registered; pick another name or pass "
                                       r"replace=True$"):
        reg.register("round-thing")(type("Other", (), {}))
    with pytest.raises(FyiError, match=r"'disc' \(an alias of Round_Thing\) is already registered"):
        reg.register("plate", "DISC")(type("Plate", (), {}))
    with pytest.raises(FyiError, match="same name twice"):
        reg.register("cup", "c_up", "C-UP")(type("Cup", (), {}))
    assert reg.register("Round_Thing", "disc")(Round) is Round  # the same registration again: nothing happens
    Square = reg.register("round_thing", replace=True)(type("Square", (), {}))
    assert reg.get("Round-Thing") is Square and "disc" not in reg  # the old entry's aliases went with it
    assert reg.unregister("round-thing") is Square and len(reg) == 0
    with pytest.raises(FyiError, match="non-empty name"):
        reg.add(" ", Square)


def test_an_unknown_name_is_one_line_with_did_you_mean():
    reg, _ = _registry()
    with pytest.raises(FyiError, match=r"^unknown widget 'rond-thing' \(did you mean Round_Thing\?\); "
                                       r"use one of Round_Thing$"):
        reg.get("rond-thing")
    with pytest.raises(FyiError, match=r"^unknown widget 'zzz'; use one of Round_Thing$"):
        reg.canonical("zzz")
    from fyi_apps.networks import create_model
    from fyi_apps.data import load_dataset
    from fyi_apps.distill import METHODS

    with pytest.raises(FyiError, match=r"unknown model 'convnett' \(did you mean convnet"):
        create_model("convnett", channels=1, num_classes=2, image_size=8)
    with pytest.raises(FyiError, match=r"unknown dataset 'cifra10' \(did you mean cifar10.*known datasets:"):
        load_dataset("cifra10")
    with pytest.raises(FyiError, match=r"unknown method 'mmt' \(did you mean mtt"):
        METHODS.get("mmt")


def test_wildcard_listing_like_timm():
    from fyi_apps.distill import list_methods
    from fyi_apps.networks import list_models
    from fyi_apps.tasks.continual.protocols import list_protocols
    from fyi_apps.tasks.nas import list_spaces

    reg, _ = _registry()
    reg.register("square_plate")(type("P", (), {}))
    assert reg.names("*thing") == ["Round_Thing"] and reg.names("SQUARE-*") == ["square_plate"]
    assert reg.names("r?und_*") == ["Round_Thing"] and reg.names("nothing*") == []
    assert list_models("resnet*") == ["resnet18", "resnet18bn"] and list_methods("d*") == ["dc", "dm", "dsa"]
    assert list_spaces("dc*") == ["dc720"] and list_protocols("dm*") == ["dm-paper"]


def test_a_loader_runs_once_before_the_first_lookup():
    from fyi_apps.registry import Registry

    calls = []
    reg = Registry("plugin")

    @reg.loader
    def builtin():
        calls.append(1)
        reg.add("builtin", object())

    assert calls == [] and "builtin" in reg and reg.names() == ["builtin"] and calls == [1]


def test_a_codec_is_one_decorated_function(cleanup):
    from fyi_apps.synset import CODECS, codec_names, get_codec, register_codec

    @register_codec("halved-test")
    def halve(images, labels, encoding):
        return images / 2, labels

    cleanup(lambda: CODECS.unregister("halved-test"))
    assert "halved-test" in codec_names() and get_codec("halved-test").decode is halve
    with pytest.raises(FyiError, match="already registered"):
        register_codec("halved-test", halve)
    register_codec("halved_test", lambda i, l, e: (i, l), replace=True)
    assert get_codec("halved-test").decode is not halve and get_codec("nope") is None


def test_a_registry_reads_like_a_mapping():
    """What code written for the old dict registries does still works (``METHODS["dm"]``, ``.items()``, ``dict()``)."""
    from fyi_apps.distill import METHODS

    assert METHODS["DM"] is METHODS.get("dm") and dict(METHODS)["mtt"] is METHODS["mtt"]
    assert sorted(METHODS) == sorted(METHODS.keys()) == [k for k, _ in sorted(METHODS.items())]
    assert METHODS.get("nope", None) is None and hash(METHODS) == hash(METHODS) and METHODS != dict(METHODS)
    with pytest.raises(FyiError, match="unknown method 'nope'"):
        METHODS["nope"]
