"""Tests for fyi_apps.networks: shapes, knobs, names, seeding, errors."""
from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fyi_apps.networks import registry
from fyi_apps.errors import FyiError
from fyi_apps.networks import ConvNet, create_model, describe_model, list_models, register_model


def _run(model: nn.Module, channels: int, size: int, n: int = 2):
    x = torch.randn(n, channels, size, size, generator=torch.Generator().manual_seed(1))
    model.eval()
    with torch.no_grad():
        emb = model.embed(x)
        out = model(x)
        again = model.classifier(emb)
    return emb, out, again


def _convs(model):
    return [m for m in model.modules() if isinstance(m, nn.Conv2d)]


def _count(model, cls):
    return sum(isinstance(m, cls) for m in model.modules())


# ---------------------------------------------------------------- shapes

# expected feature_dim per (family, image size); None = not checked beyond shape
_FEATURE_DIM = {
    ("convnet", 8): 128,
    ("convnet", 28): 2048,  # reference pads 28 px to 32 px in the first conv
    ("convnet", 32): 2048,
    ("convnet", 64): 2048,  # depth 4 -> 4x4x128
    ("vgg11", 8): 512,
    ("vgg11", 28): 512,
    ("vgg11", 32): 512,
    ("vgg11", 64): 2048,
    ("vgg11bn", 32): 512,
    ("resnet18", 8): 512,
    ("resnet18", 64): 512,
    ("resnet18bn", 28): 512,
    ("alexnet", 8): 192,
    ("alexnet", 32): 192 * 4 * 4,
    ("alexnet", 28): 192 * 4 * 4,
    ("mlp", 28): 128,
}


@pytest.mark.parametrize("size", [8, 28, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("name", ["convnet", "vgg11", "vgg11bn", "resnet18", "resnet18bn", "alexnet", "mlp"])
def test_builtin_shapes(name, channels, size):
    model = create_model(name, channels=channels, num_classes=7, image_size=size, seed=0)
    emb, out, again = _run(model, channels, size)
    assert emb.shape == (2, model.feature_dim)
    assert out.shape == (2, 7)
    assert torch.allclose(out, again, atol=1e-6)
    assert torch.isfinite(out).all()
    want = _FEATURE_DIM.get((name, size))
    if want is not None:
        assert model.feature_dim == want


@pytest.mark.parametrize(
    "name, check",
    [
        ("timm:resnet18", lambda m: True),
        # ViT at 32 px: img_size=32 and patch 4 are chosen automatically -> 8x8 tokens
        ("timm:vit_tiny_patch16_224", lambda m: tuple(m.model.patch_embed.patch_size) == (4, 4)),
    ],
)
def test_timm_shapes(name, check):
    model = create_model(name, channels=3, num_classes=5, image_size=32, seed=0)
    assert model.training
    # the build-time dry forward ran in eval mode: BatchNorm statistics are untouched
    for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
        assert int(bn.num_batches_tracked) == 0 and torch.all(bn.running_mean == 0)
    emb, out, again = _run(model, 3, 32)
    assert emb.shape == (2, model.feature_dim)
    assert out.shape == (2, 5)
    assert torch.allclose(out, again, atol=1e-5)
    with torch.no_grad():  # the wrapper agrees with timm's own forward
        x = torch.randn(2, 3, 32, 32)
        assert torch.allclose(model(x), model.model(x), atol=1e-5)
    assert check(model)


def test_models_are_returned_in_train_mode_and_match_in_train_mode():
    model = create_model("convnet:norm=bn,width=16", channels=3, num_classes=4, image_size=32)
    assert model.training
    x = torch.randn(4, 3, 32, 32)
    assert torch.allclose(model(x), model.classifier(model.embed(x)), atol=1e-6)


# ---------------------------------------------------------------- ConvNet knobs

_NORM_CLS = {
    "none": None,
    "batchnorm": nn.BatchNorm2d,
    "layernorm": nn.LayerNorm,
    "instancenorm": nn.GroupNorm,
    "groupnorm": nn.GroupNorm,
}
_ACT_CLS = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU, "leakyrelu": nn.LeakyReLU}
_POOL_CLS = {"none": None, "maxpool": nn.MaxPool2d, "avgpool": nn.AvgPool2d}


def _check_convnet_structure(model, depth, width, act, norm, pool, size=32):
    convs = _convs(model)
    assert len(convs) == depth
    assert all(c.out_channels == width for c in convs)
    assert _count(model, _ACT_CLS[act]) == depth
    for other, cls in _ACT_CLS.items():
        if other != act:
            assert _count(model, cls) == 0
    if _NORM_CLS[norm] is None:
        assert _count(model, nn.BatchNorm2d) + _count(model, nn.LayerNorm) + _count(model, nn.GroupNorm) == 0
    else:
        norms = [m for m in model.modules() if isinstance(m, _NORM_CLS[norm])]
        assert len(norms) == depth
        if norm == "instancenorm":
            assert all(g.num_groups == width and g.affine for g in norms)
        if norm == "groupnorm":
            assert all(g.num_groups == 4 for g in norms)
        if norm == "layernorm":
            assert all(len(ln.normalized_shape) == 3 and ln.elementwise_affine for ln in norms)
    if _POOL_CLS[pool] is None:
        assert _count(model, nn.MaxPool2d) + _count(model, nn.AvgPool2d) == 0
        hw = size
    else:
        assert _count(model, _POOL_CLS[pool]) == depth
        hw = size >> depth
    assert model.feature_dim == width * hw * hw
    if act == "leakyrelu":
        assert all(m.negative_slope == 0.01 for m in model.modules() if isinstance(m, nn.LeakyReLU))


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_convnet_knob_grid(depth):
    x = torch.randn(2, 3, 32, 32)
    for act, norm, pool in itertools.product(_ACT_CLS, _NORM_CLS, _POOL_CLS):
        model = ConvNet(3, 10, 32, width=32, depth=depth, act=act, norm=norm, pool=pool)
        _check_convnet_structure(model, depth, 32, act, norm, pool)
        out = model(x)
        assert out.shape == (2, 10) and torch.isfinite(out).all(), (act, norm, pool)


@pytest.mark.parametrize("size, depth", [(8, 3), (28, 3), (32, 3), (64, 4), (128, 5)])
def test_convnet_default_depth_by_size(size, depth):
    model = create_model("convnet", channels=3, num_classes=10, image_size=size, width=8)
    assert model.depth == depth
    assert len(_convs(model)) == depth
    assert model.feature_dim == 8 * model.feature_hw**2
    assert model.feature_hw == (32 if size == 28 else size) >> depth


def test_convnet_reference_parameter_layout():
    # ConvNet-3, width 128, instancenorm, 3x32x32, 10 classes has 320,010 parameters in the reference
    model = create_model("ConvNet", channels=3, num_classes=10, image_size=32)
    assert describe_model(model)["params"] == 320_010
    names = [n for n, _ in model.named_parameters()]
    assert names[:4] == ["features.0.weight", "features.0.bias", "features.1.weight", "features.1.bias"]
    assert names[-2:] == ["classifier.weight", "classifier.bias"]


def test_instancenorm_matches_torch_instance_norm():
    model = ConvNet(3, 10, 32, width=16, depth=2, norm="instancenorm")
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.GroupNorm):
                m.weight.normal_()
                m.bias.normal_()
    norm = model.features[1]
    ref = nn.InstanceNorm2d(16, affine=True)
    ref.load_state_dict(norm.state_dict())
    x = torch.randn(3, 16, 8, 8, requires_grad=True)
    x2 = x.detach().clone().requires_grad_()
    y, y2 = norm(x), ref(x2)
    assert torch.allclose(y, y2, atol=1e-5)
    g = torch.randn_like(y)
    y.backward(g)
    y2.backward(g)
    assert torch.allclose(x.grad, x2.grad, atol=1e-4)
    assert torch.allclose(norm.weight.grad, ref.weight.grad, atol=1e-4)


def test_convnet_supports_double_backward():
    # gradient matching differentiates parameter gradients w.r.t. the images
    model = create_model("convnet:width=8", channels=3, num_classes=4, image_size=32)
    x = torch.randn(4, 3, 32, 32, requires_grad=True)
    loss = F.cross_entropy(model(x), torch.tensor([0, 1, 2, 3]))
    grads = torch.autograd.grad(loss, list(model.parameters()), create_graph=True)
    sum((g**2).sum() for g in grads).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


# ---------------------------------------------------------------- names

def test_string_spec_parses_knobs():
    model = create_model(
        "convnet:depth=2,width=64,act=sigmoid,norm=batch,pool=max", channels=1, num_classes=3, image_size=32
    )
    assert (model.depth, model.width, model.act, model.norm, model.pool) == (2, 64, "sigmoid", "batchnorm", "maxpool")
    _check_convnet_structure(model, 2, 64, "sigmoid", "batchnorm", "maxpool")


@pytest.mark.parametrize(
    "short, canon",
    [("bn", "batchnorm"), ("layer", "layernorm"), ("IN", "instancenorm"), ("gn", "groupnorm"), ("nn", "none")],
)
def test_short_norm_names(short, canon):
    model = create_model("convnet", channels=3, num_classes=2, image_size=32, width=8, norm=short)
    assert model.norm == canon


_ALIASES = {
    **{f"ConvNetD{d}": ("depth", d) for d in (1, 2, 3, 4, 5)},
    **{f"ConvNetW{w}": ("width", w) for w in (32, 64, 128, 256)},
    "ConvNetAS": ("act", "sigmoid"),
    "ConvNetAR": ("act", "relu"),
    "ConvNetAL": ("act", "leakyrelu"),
    "ConvNetNN": ("norm", "none"),
    "ConvNetBN": ("norm", "batchnorm"),
    "ConvNetLN": ("norm", "layernorm"),
    "ConvNetIN": ("norm", "instancenorm"),
    "ConvNetGN": ("norm", "groupnorm"),
    "ConvNetNP": ("pool", "none"),
    "ConvNetMP": ("pool", "maxpool"),
    "ConvNetAP": ("pool", "avgpool"),
}


@pytest.mark.parametrize("alias", sorted(_ALIASES))
def test_reference_aliases(alias):
    knob, value = _ALIASES[alias]
    size = 128 if alias == "ConvNetD5" else 32
    width = {} if knob == "width" else {"width": 8}
    for spelled in (alias, alias.lower(), alias.upper()):
        model = create_model(spelled, channels=3, num_classes=10, image_size=size, **width)
        assert getattr(model, knob) == value
        assert model.fyi_config["name"] == alias
    defaults = {"depth": 5 if size == 128 else 3, "width": 8, "act": "relu", "norm": "instancenorm", "pool": "avgpool"}
    defaults[knob] = value
    _check_convnet_structure(model, size=size, **defaults)


def test_list_models_contains_every_family():
    names = {n.lower() for n in list_models()}
    for n in ["convnet", "vgg11", "vgg11bn", "resnet18", "resnet18bn", "alexnet", "mlp", *map(str.lower, _ALIASES)]:
        assert n in names


def test_bn_variants_use_batchnorm_and_defaults_use_instancenorm():
    for name, cls, other in [("vgg11", nn.GroupNorm, nn.BatchNorm2d), ("resnet18", nn.GroupNorm, nn.BatchNorm2d)]:
        plain = create_model(name, channels=3, num_classes=10, image_size=8)
        bn = create_model(name + "bn", channels=3, num_classes=10, image_size=8)
        assert _count(plain, cls) > 0 and _count(plain, other) == 0
        assert _count(bn, other) > 0 and _count(bn, cls) == 0
        assert all(g.num_groups == g.num_channels for g in plain.modules() if isinstance(g, nn.GroupNorm))


def test_vgg_skips_pools_and_pads_28px():
    vgg8 = create_model("vgg11", channels=3, num_classes=10, image_size=8)
    assert _count(vgg8, nn.MaxPool2d) == 3 and len(_convs(vgg8)) == 8
    vgg28 = create_model("vgg11", channels=1, num_classes=10, image_size=28)
    assert _convs(vgg28)[0].padding == (3, 3) and _count(vgg28, nn.MaxPool2d) == 5
    vgg32 = create_model("vgg11", channels=1, num_classes=10, image_size=32)
    assert _convs(vgg32)[0].padding == (1, 1)


def test_resnet18_structure():
    model = create_model("resnet18", channels=3, num_classes=10, image_size=32)
    stem = model.conv1
    assert stem.kernel_size == (3, 3) and stem.stride == (1, 1)
    assert _count(model, nn.MaxPool2d) == 0
    assert len(_convs(model)) == 1 + 16 + 3  # stem, 8 blocks x 2, 3 downsampling shortcuts
    assert [blk.conv1.stride[0] for layer in (model.layer1, model.layer2, model.layer3, model.layer4) for blk in layer] == [
        1, 1, 2, 1, 2, 1, 2, 1
    ]
    assert model.classifier.in_features == 512


def test_alexnet_and_mlp_structure():
    alex = create_model("alexnet", channels=3, num_classes=10, image_size=32)
    assert [c.out_channels for c in _convs(alex)] == [128, 192, 256, 192, 192]
    assert _count(alex, nn.MaxPool2d) == 3
    alex4 = create_model("alexnet", channels=3, num_classes=10, image_size=4)
    assert _count(alex4, nn.MaxPool2d) == 2  # the pool that would reach 0x0 is skipped
    assert _run(alex4, 3, 4)[1].shape == (2, 10)
    mlp = create_model("mlp", channels=1, num_classes=10, image_size=28)
    assert [m.out_features for m in mlp.modules() if isinstance(m, nn.Linear)] == [128, 128, 10]
    assert mlp.fc_1.in_features == 28 * 28


# ---------------------------------------------------------------- seeding

def _flat(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


@pytest.mark.parametrize("name", ["convnet:width=16", "resnet18bn", "timm:resnet18"])
def test_seed_determinism_and_global_rng_untouched(name):
    kw = dict(channels=3, num_classes=10, image_size=32)
    before = torch.get_rng_state()
    a = create_model(name, seed=3, **kw)
    b = create_model(name, seed=3, **kw)
    c = create_model(name, seed=4, **kw)
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.equal(_flat(a), _flat(b))
    assert not torch.equal(_flat(a), _flat(c))


def test_seed_none_draws_from_the_global_rng():
    kw = dict(channels=3, num_classes=10, image_size=32, width=8)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(11)
        start = torch.get_rng_state()
        a = create_model("convnet", seed=None, **kw)
        moved = not torch.equal(torch.get_rng_state(), start)
        torch.manual_seed(11)
        b = create_model("convnet", seed=None, **kw)
        c = create_model("convnet", seed=None, **kw)
    assert moved
    assert torch.equal(_flat(a), _flat(b))
    assert not torch.equal(_flat(b), _flat(c))
    # seed=s is the same stream as seeding the global generator with s
    assert torch.equal(_flat(a), _flat(create_model("convnet", seed=11, **kw)))


# ---------------------------------------------------------------- errors

def test_unknown_name_lists_known_names():
    with pytest.raises(FyiError) as err:
        create_model("convnext9000", channels=3, num_classes=10, image_size=32)
    msg = str(err.value)
    assert "vgg11" in msg and "ConvNetD3" in msg and "timm:<name>" in msg


def test_unknown_timm_model():
    with pytest.raises(FyiError, match=r"timm\.list_models\('\*resnet\*'\)"):
        create_model("timm:resnet_eighteen", channels=3, num_classes=10, image_size=32)


def test_timm_model_too_big_for_image_size():
    with pytest.raises(FyiError, match=r"inception_v3.*image size 32"):
        create_model("timm:inception_v3", channels=3, num_classes=10, image_size=32)


def test_timm_rejects_pretrained_and_distilled():
    with pytest.raises(FyiError, match="pretrained"):
        create_model("timm:resnet18", channels=3, num_classes=10, image_size=32, pretrained=True)
    with pytest.raises(FyiError, match="distilled"):
        create_model("timm:deit_tiny_distilled_patch16_224", channels=3, num_classes=10, image_size=32)


def test_too_deep_convnet_for_8px():
    with pytest.raises(FyiError, match=r"depth 4.*image size 8"):
        create_model("convnet", channels=3, num_classes=10, image_size=8, depth=4, width=8)
    with pytest.raises(FyiError, match=r"depth 4.*image size 8"):
        create_model("ConvNetD4", channels=3, num_classes=10, image_size=8, width=8)
    # without pooling any depth fits
    model = create_model("convnet:depth=4,pool=none,width=8", channels=3, num_classes=10, image_size=8)
    assert model.feature_dim == 8 * 8 * 8


@pytest.mark.parametrize(
    "name, kwargs, pattern",
    [
        ("convnet", {"act": "gelu"}, "activation"),
        ("convnet", {"norm": "weird"}, "norm"),
        ("convnet", {"pool": "sum"}, "pooling"),
        ("convnet", {"depth": 0}, "depth"),
        ("convnet", {"width": 30, "norm": "gn"}, "multiple of 4"),
        ("convnet:depth", {}, "key=value"),
        ("convnet:colour=red", {}, "no option"),
        ("vgg11bn", {"norm": "instancenorm"}, "no option"),
        ("ConvNetD2", {"depth": 3}, "fixes depth=2"),
        ("convnet:depth=2", {"depth": 3}, "both"),
        ("", {}, "non-empty"),
        ("timm:", {}, "timm:<name>"),
    ],
)
def test_bad_options(name, kwargs, pattern):
    with pytest.raises(FyiError, match=pattern):
        create_model(name, channels=3, num_classes=10, image_size=32, **kwargs)


@pytest.mark.parametrize("bad", [dict(channels=0), dict(num_classes=-1), dict(image_size=2.5), dict(seed=-1), dict(seed="1")])
def test_bad_arguments(bad):
    kw = dict(channels=3, num_classes=10, image_size=32)
    kw.update(bad)
    with pytest.raises(FyiError):
        create_model("mlp", **kw)


# ---------------------------------------------------------------- registry and description

def test_register_model_and_describe(monkeypatch):
    monkeypatch.setattr(registry, "MODELS", registry.MODELS.copy())

    class Tiny(nn.Module):
        def __init__(self, channels, num_classes, image_size, hidden=5):
            super().__init__()
            self.body = nn.Linear(channels * image_size * image_size, hidden)
            self.classifier = nn.Linear(hidden, num_classes)

        def embed(self, x):
            return self.body(x.flatten(1))

        def forward(self, x):
            return self.classifier(self.embed(x))

    @register_model("TinyNet")
    def tiny(channels, num_classes, image_size, hidden=5):
        return Tiny(channels, num_classes, image_size, hidden)

    assert "TinyNet" in list_models()
    model = create_model("tinynet:hidden=6", channels=1, num_classes=2, image_size=4)
    assert model.feature_dim == 6  # filled in by a dry forward
    info = describe_model(model)
    assert info["params"] == 16 * 6 + 6 + 6 * 2 + 2
    assert info["feature_dim"] == 6 and info["name"] == "TinyNet" and info["options"] == {"hidden": 6}
    with pytest.raises(FyiError, match="already registered"):
        register_model("tinynet")(lambda channels, num_classes, image_size: Tiny(channels, num_classes, image_size))
    with pytest.raises(FyiError):
        register_model("bad:name")


def test_describe_builtin():
    model = create_model("resnet18", channels=3, num_classes=10, image_size=32, seed=1)
    info = describe_model(model)
    assert info["params"] == sum(p.numel() for p in model.parameters())
    assert info["feature_dim"] == 512 and info["class"] == "ResNet18" and info["seed"] == 1
