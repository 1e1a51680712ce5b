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
