import pytest
import torch

from fyi_apps.distill.fyi import VIEWS, FYIView, get_view, maybe_expand
from fyi_apps.errors import FyiError


def test_expand_concatenates_flip_and_repeats_labels():
    s = torch.arange(2 * 1 * 2 * 3, dtype=torch.float32).view(2, 1, 2, 3)
    y = torch.tensor([4, 7])
    a, ya = FYIView("flip").expand(s, y)
    assert a.shape == (4, 1, 2, 3)
    assert torch.equal(a[:2], s)
    assert torch.equal(a[2:], s.flip(-1))
    assert a[2, 0, 0].tolist() == [2.0, 1.0, 0.0]  # width reversed
    assert ya.tolist() == [4, 7, 4, 7]


def test_fyi_gradient_is_sum_of_both_halves():
    """dL/dS = dL/dA[:n] + flip(dL/dA[n:]): gradients flow through the flip into S."""
    g = torch.Generator().manual_seed(0)
    s = torch.randn(3, 2, 5, 5, generator=g, requires_grad=True)
    w = torch.randn(6, 2, 5, 5, generator=g)
    view = FYIView("flip")

    def loss_of(a):
        return ((a * w).sum(dim=(1, 2, 3)) ** 2).sum() + (a ** 3).sum()

    a = view.expand(s)
    loss_of(a).backward()
    a2 = view.expand(s.detach()).requires_grad_(True)
    (ga,) = torch.autograd.grad(loss_of(a2), a2)
    expected = ga[:3] + ga[3:].flip(-1)
    assert torch.allclose(s.grad, expected, atol=1e-5)
    # and it differs from the no-FYI gradient (the flip really contributes)
    s0 = s.detach().clone().requires_grad_(True)
    loss_of(torch.cat([s0, s0])).backward()  # same size, no flip
    assert not torch.allclose(s0.grad, s.grad)


@pytest.mark.parametrize("name", VIEWS)
def test_views_are_deterministic_and_differentiable(name):
    x = torch.rand(2, 3, 16, 16, requires_grad=True)
    v = FYIView(name)
    y1, y2 = v.transform(x), v.transform(x)
    assert y1.shape == x.shape and torch.equal(y1, y2)
    assert not torch.allclose(y1, x)
    y1.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_vflip_flips_height():
    x = torch.arange(4.0).view(1, 1, 2, 2)
    assert torch.equal(FYIView("vflip").transform(x), x.flip(-2))


def test_get_view_parsing():
    assert get_view(None) is None and get_view(False) is None and get_view("off") is None
    assert get_view(True).name == "flip" and get_view("on").name == "flip"
    assert get_view("rot15").name == "rot15"
    with pytest.raises(FyiError, match="unknown FYI view"):
        get_view("mirror")


def test_maybe_expand_off_is_identity_and_halve():
    x = torch.rand(4, 1, 3, 3)
    assert maybe_expand(None, x) is x
    assert FYIView.halve(10) == 5 and FYIView.halve(1) == 1
