"""The speed changes of issue 15 compute the same numbers as the plain torch layers they replace.

``InstanceNorm`` (reductions on small channels-last CPU maps) must equal
``F.group_norm`` and ``AvgPool2x2`` (a depthwise convolution on NCHW CPU maps)
must equal ``F.avg_pool2d``, forward, backward and double backward; a ConvNet
built from them must give the DM loss, DC/DSA real gradients and evaluation
training of a ConvNet run layer by layer through the plain torch functions.
"""
import pytest
import torch
import torch.nn.functional as F

from fyi_apps.data import Dataset, DatasetInfo, Split
from fyi_apps.networks import AvgPool2x2, ConvNet, InstanceNorm, create_model, instance_norm_reduction

CL = torch.channels_last


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _reference_features(net: ConvNet, x: torch.Tensor) -> torch.Tensor:
    """ConvNet features through F.group_norm / F.relu / F.avg_pool2d (the layers before issue 15)."""
    for m in net.features:
        if isinstance(m, torch.nn.Conv2d):
            x = m(x)
        elif isinstance(m, InstanceNorm):
            x = F.group_norm(x, m.num_groups, m.weight, m.bias, m.eps)
        elif isinstance(m, torch.nn.ReLU):
            x = F.relu(x)
        elif isinstance(m, AvgPool2x2):
            x = F.avg_pool2d(x, 2, 2)
        else:  # pragma: no cover - the default ConvNet has no other layers
            raise AssertionError(type(m))
    return x.flatten(1)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).detach().norm() / b.detach().norm().clamp_min(1e-30))


def _randomise_norms(net):
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, InstanceNorm):
                m.weight.normal_(1.0, 0.3, generator=_gen(1))
                m.bias.normal_(0.0, 0.3, generator=_gen(2))


@pytest.mark.parametrize("hw", [4, 8, 16, 28, 32])
@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_instance_norm_matches_group_norm(hw, layout):
    norm = InstanceNorm(24)
    _randomise_norms(norm)
    x = (torch.randn(5, 24, hw, hw, generator=_gen()) * 3 + 2)
    if layout == "channels_last":
        x = x.contiguous(memory_format=CL)
    x.requires_grad_()
    x_ref = x.detach().clone().requires_grad_()
    y, y_ref = norm(x), F.group_norm(x_ref, 24, norm.weight, norm.bias, norm.eps)
    assert y.is_contiguous(memory_format=CL) == (layout == "channels_last")
    assert _rel(y, y_ref) < 1e-6
    g = torch.randn(y.shape, generator=_gen(3))
    gx, gw = torch.autograd.grad(y, (x, norm.weight), g)
    gx_ref, gw_ref = torch.autograd.grad(y_ref, (x_ref, norm.weight), g)
    assert _rel(gx, gx_ref) < 1e-5 and _rel(gw, gw_ref) < 1e-5


def test_reduction_path_is_taken_on_small_channels_last_maps(monkeypatch):
    from fyi_apps.networks import layers

    calls = []

    def spy(*a):
        calls.append(a[0].shape)
        return instance_norm_reduction(*a)

    monkeypatch.setattr(layers, "instance_norm_reduction", spy)
    norm = InstanceNorm(8)
    norm(torch.randn(2, 8, 16, 16).contiguous(memory_format=CL))
    assert calls == [torch.Size([2, 8, 16, 16])]
    norm(torch.randn(2, 8, 16, 16))  # NCHW: torch's kernel
    norm(torch.randn(2, 8, 32, 32).contiguous(memory_format=CL))  # 32x32: torch's fast channels-last kernel
    assert len(calls) == 1


def test_instance_norm_double_backward_matches():
    # gradient matching differentiates weight gradients w.r.t. the input (create_graph=True)
    norm = InstanceNorm(8)
    _randomise_norms(norm)
    conv = torch.nn.Conv2d(8, 8, 3, padding=1)
    x = torch.randn(3, 8, 8, 8, generator=_gen()).contiguous(memory_format=CL).requires_grad_()
    outs = []
    for f in (norm, lambda h: F.group_norm(h, 8, norm.weight, norm.bias, norm.eps)):
        loss = f(conv(x)).relu().square().mean()
        g = torch.autograd.grad(loss, [conv.weight, norm.weight], create_graph=True)
        outs.append(torch.autograd.grad(sum((t**2).sum() for t in g), x)[0])
    assert _rel(outs[0], outs[1]) < 1e-4


@pytest.mark.parametrize("hw", [2, 7, 16, 32])
@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_avgpool2x2_matches_avg_pool2d(hw, layout):
    x = torch.randn(3, 6, hw, hw, generator=_gen())
    if layout == "channels_last":
        x = x.contiguous(memory_format=CL)
    x.requires_grad_()
    x_ref = x.detach().clone().requires_grad_()
    y, y_ref = AvgPool2x2()(x), F.avg_pool2d(x_ref, 2, 2)
    assert y.shape == y_ref.shape
    assert torch.allclose(y, y_ref, atol=1e-6, rtol=0)
    g = torch.randn(y.shape, generator=_gen(1))
    assert torch.allclose(torch.autograd.grad(y, x, g)[0], torch.autograd.grad(y_ref, x_ref, g)[0], atol=1e-6)


def _cifar_like(n_per_class=12, classes=3, size=32, seed=0):
    g = _gen(seed)
    labels = torch.arange(classes).repeat_interleave(n_per_class)
    split = Split(torch.randint(0, 256, (labels.numel(), 3, size, size), generator=g, dtype=torch.uint8), labels, classes)
    info = DatasetInfo("toy32", 3, size, tuple(str(c) for c in range(classes)), (0.5, 0.45, 0.4), (0.25, 0.24, 0.26))
    return Dataset(info=info, train=split, test=split, source="random")


def test_dm_loss_matches_layer_by_layer_reference():
    from fyi_apps.distill import DistillConfig, Distiller
    from fyi_apps.distill.matching import feature_mean_distance

    ds = _cifar_like()
    d = Distiller(DistillConfig(method="dm", dataset="toy32", ipc=2, iterations=1, batch_real=12, seed=0,
                                precision="fp32", options={"real_chunk": 5}), ds, device="cpu")  # the fp32 layers
    stored, labels = d.init_images()
    syn = torch.nn.Parameter(stored)
    d.method.setup(syn, labels)
    net = d.ctx.new_net(frozen=True)
    _randomise_norms(net)
    real, real_labels = d.ctx.real_all(12)
    loss = d.method.loss(net, real, real_labels, syn, labels)
    (g,) = torch.autograd.grad(loss, syn)
    with torch.no_grad():
        f_real = _reference_features(net, real)
    ref = feature_mean_distance(f_real, real_labels, _reference_features(net, syn), labels, 3)
    (g_ref,) = torch.autograd.grad(ref, syn)
    assert abs(float(loss) - float(ref)) <= 1e-5 * abs(float(ref))
    assert _rel(g, g_ref) < 1e-4


def test_real_gradient_matches_layer_by_layer_reference():
    from fyi_apps.distill.matching import real_gradient

    net = create_model("convnet:width=16", channels=3, num_classes=4, image_size=32, seed=3)
    _randomise_norms(net)
    x = torch.randn(37, 3, 32, 32, generator=_gen())  # 37: slices of 16 plus a remainder
    y = torch.randint(0, 4, (37,), generator=_gen(1))
    params = list(net.parameters())
    got = real_gradient(net, x, y, params, net)
    loss = F.cross_entropy(net.classifier(_reference_features(net, x)), y)
    want = torch.autograd.grad(loss, params)
    for p, a, b in zip(params, got, want):
        if p.dim() > 1:  # conv biases before an instance norm have a zero gradient up to rounding
            assert _rel(a, b) < 1e-4


def test_training_matches_layer_by_layer_reference():
    from fyi_apps.evaluate import EvalConfig, train_network

    class Reference(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net.classifier(_reference_features(self.net, x))

    ds = _cifar_like(n_per_class=10, classes=2)
    cfg = EvalConfig(epochs=3, batch_size=20, dsa=True, micro_batch=16)
    nets = [create_model("convnet:width=16", channels=3, num_classes=2, image_size=32, seed=5) for _ in range(2)]
    losses = []
    for model in (nets[0], Reference(nets[1])):
        stats = train_network(model, ds.train.images, ds.train.labels, cfg, lr=0.01, generator=_gen(7),
                              device=torch.device("cpu"), mean=ds.info.mean, std=ds.info.std)
        losses.append(stats["final_loss"])
    assert abs(losses[0] - losses[1]) <= 1e-5 * abs(losses[1])
    for a, b in zip(nets[0].parameters(), nets[1].parameters()):
        if a.dim() > 1:
            assert _rel(a.detach(), b.detach()) < 1e-5
