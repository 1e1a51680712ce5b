"""Tests for fyi_apps.augment (differentiable siamese augmentation)."""
import pickle

import pytest
import torch

from fyi_apps.augment import DEFAULT_STRATEGY, OPS, AugParams, DSA, DSAConfig
from fyi_apps.errors import FyiError


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(n=6, c=3, h=32, w=None, seed=0):
    return torch.randn(n, c, h, w or h, generator=gen(seed))


# ------------------------------------------------------------------ siamese
@pytest.mark.parametrize("op", OPS)
def test_pair_same_transform_for_real_and_synthetic(op):
    aug = DSA(op)
    real = images(8, seed=1)
    syn = real[:3].clone()
    for seed in range(6):
        out_real, out_syn = aug.pair(real, syn, gen(seed))
        assert out_syn.shape == syn.shape and out_real.shape == real.shape
        torch.testing.assert_close(out_syn, out_real[:3], rtol=0, atol=1e-6)


@pytest.mark.parametrize("op", OPS)
def test_siamese_params_equal_individual_application(op):
    aug = DSA(op)
    real, syn = images(5, seed=2), images(2, seed=3)
    p = aug.sample(1, 32, "cpu", gen(4), siamese=True)
    both = aug.apply(torch.cat([real, syn]), p)
    torch.testing.assert_close(both[:5], aug.apply(real, p), rtol=0, atol=1e-6)
    torch.testing.assert_close(both[5:], aug.apply(syn, p), rtol=0, atol=1e-6)
    for i in range(2):  # one image at a time: same result as in the batch
        torch.testing.assert_close(aug.apply(syn[i:i + 1], p), both[5 + i:6 + i], rtol=0, atol=1e-6)


def test_siamese_batch_gets_one_transform_per_image_batch_gets_many():
    one = images(1, seed=5)
    batch = one.expand(16, -1, -1, -1).contiguous()
    aug = DSA("crop_scale_rotate", mode="all")
    out = aug(batch, gen(0), siamese=True)
    assert torch.equal(out, out[:1].expand_as(out))
    out = aug(batch, gen(0), siamese=False)
    assert not torch.allclose(out[0], out[1:], atol=1e-4)


@pytest.mark.parametrize("op", OPS)
def test_per_image_params_differ_across_images(op):
    p = DSA(op).sample(64, 32, "cpu", gen(0), siamese=False)
    tensors = [getattr(p, k) for k in ("brightness", "saturation", "contrast", "shift", "cutout", "flip", "scale",
                                      "rotate") if getattr(p, k) is not None]
    assert tensors
    for t in tensors:
        assert t.shape[0] == 64
        assert len(torch.unique(t, dim=0)) > 1
    siam = DSA(op).sample(64, 32, "cpu", gen(0), siamese=True)
    assert siam.n == 1


# -------------------------------------------------------------- single ops
def test_flip_mirrors_width_exactly():
    aug, x = DSA("flip"), images(3)
    assert torch.equal(aug.apply(x, AugParams(("flip",), flip=torch.tensor([True]))), x.flip(3))
    assert torch.equal(aug.apply(x, AugParams(("flip",), flip=torch.tensor([False]))), x)
    mixed = aug.apply(x, AugParams(("flip",), flip=torch.tensor([True, False, True])))
    assert torch.equal(mixed[0], x[0].flip(2)) and torch.equal(mixed[1], x[1])
    p = aug.sample(1, 32, "cpu", gen(0))
    expect = x.flip(3) if bool(p.flip[0]) else x
    assert torch.equal(aug.apply(x, p), expect)


def _shifted(x, dy, dx):
    """Reference translation with loops: out[i, j] = x[i + dy, j + dx] or 0."""
    out = torch.zeros_like(x)
    h, w = x.shape[-2:]
    for i in range(h):
        for j in range(w):
            if 0 <= i + dy < h and 0 <= j + dx < w:
                out[..., i, j] = x[..., i + dy, j + dx]
    return out


@pytest.mark.parametrize("dy,dx", [(2, -3), (-4, 4), (0, 0), (5, 1)])
def test_crop_shifts_by_the_integer_amount_with_zeros(dy, dx):
    x = images(2, c=1, h=12, w=10, seed=7)
    out = DSA("crop").apply(x, AugParams(("crop",), shift=torch.tensor([[dy, dx]])))
    assert torch.equal(out, _shifted(x, dy, dx))


def test_crop_sampled_shift_range_and_effect():
    aug, x = DSA("crop"), images(64, seed=8)
    p = aug.sample(64, 32, "cpu", gen(1), siamese=False)
    assert p.shift.dtype == torch.long and p.shift.abs().max() == 4  # int(32 * 0.125 + 0.5)
    out = aug.apply(x, p)
    for i in (0, 5, 63):
        assert torch.equal(out[i], _shifted(x[i], int(p.shift[i, 0]), int(p.shift[i, 1])))
    assert aug.sample(500, 8, "cpu", gen(2), siamese=False).shift.abs().max() == 1


@pytest.mark.parametrize("size,side", [(32, 16), (28, 14), (9, 5)])
def test_cutout_zeros_a_square_of_the_right_side(size, side):
    aug = DSA("cutout")
    x = torch.ones(1, 3, size, size)
    c = size // 2
    out = aug.apply(x, AugParams(("cutout",), cutout=torch.tensor([[c, c]])))
    zero = out[0, 0] == 0
    assert torch.equal(out[0, 0], out[0, 2])
    assert int(zero.sum()) == side * side
    rows, cols = zero.nonzero(as_tuple=True)
    assert rows.min() == c - side // 2 and rows.max() == c - side // 2 + side - 1
    assert cols.min() == c - side // 2 and cols.max() == c - side // 2 + side - 1
    # at a corner the square is clipped by the border
    out = aug.apply(x, AugParams(("cutout",), cutout=torch.tensor([[0, size - 1]])))
    zero = out[0, 0] == 0
    assert int(zero.sum()) == (side - side // 2) * min(side, size - (size - 1 - side // 2))
    assert bool(zero[0, size - 1]) and not bool(zero[size - 1, 0])


def test_cutout_sampled_centres_within_range():
    p = DSA("cutout").sample(2000, 32, "cpu", gen(3), siamese=False)
    assert p.cutout.min() == 0 and p.cutout.max() == 32  # even side: one past the last pixel allowed
    out = DSA("cutout").apply(torch.ones(2000, 1, 32, 32), p)
    assert ((out == 0).sum(dim=(1, 2, 3)) > 0).all()


def test_color_components():
    aug, x = DSA("color"), images(4, seed=9)
    one, zero = torch.ones(1), torch.zeros(1)

    def color(b, s, c):
        return aug.apply(x, AugParams(("color",), brightness=b, saturation=s, contrast=c))

    torch.testing.assert_close(color(torch.tensor([0.3]), one, one), x + 0.3)  # brightness adds a constant
    sat0 = color(zero, zero, one)                                            # saturation 0 -> grey
    torch.testing.assert_close(sat0, x.mean(dim=1, keepdim=True).expand_as(x))
    sat2 = color(zero, 2 * one, one)
    m = x.mean(dim=1, keepdim=True)
    torch.testing.assert_close(sat2, m + 2 * (x - m))
    con0 = color(zero, one, zero)                                            # contrast 0 -> image mean
    torch.testing.assert_close(con0, x.mean(dim=(1, 2, 3), keepdim=True).expand_as(x))
    p = aug.sample(1000, 32, "cpu", gen(0), siamese=False)
    assert -0.5 <= p.brightness.min() < -0.45 and 0.45 < p.brightness.max() <= 0.5
    assert 0 <= p.saturation.min() < 0.05 and 1.95 < p.saturation.max() <= 2.0
    assert 0.5 <= p.contrast.min() < 0.55 and 1.45 < p.contrast.max() <= 1.5


def test_scale_and_rotate_identity_params_are_identity():
    x = images(3, seed=10)
    out = DSA("scale").apply(x, AugParams(("scale",), scale=torch.tensor([[1.0, 1.0]])))
    torch.testing.assert_close(out, x, rtol=0, atol=1e-5)
    out = DSA("rotate").apply(x, AugParams(("rotate",), rotate=torch.tensor([0.0])))
    torch.testing.assert_close(out, x, rtol=0, atol=1e-5)


def test_rotate_90_moves_bottom_centre_to_right_centre():
    x = torch.zeros(1, 1, 9, 9)
    x[0, 0, 8, 4] = 1.0
    out = DSA("rotate").apply(x, AugParams(("rotate",), rotate=torch.tensor([90.0])))
    assert abs(float(out[0, 0, 4, 8]) - 1.0) < 1e-5
    assert float(out.abs().sum()) == pytest.approx(1.0, abs=1e-4)


def test_scale_half_magnifies_about_the_centre():
    x = torch.zeros(1, 1, 9, 9)
    x[0, 0, 4, 6] = 1.0  # sx = 0.5: output column 8 reads input column 6
    out = DSA("scale").apply(x, AugParams(("scale",), scale=torch.tensor([[0.5, 1.0]])))
    assert abs(float(out[0, 0, 4, 8]) - 1.0) < 1e-5


def test_scale_rotate_sampled_ranges():
    p = DSA("scale").sample(1000, 32, "cpu", gen(0), siamese=False)
    assert p.scale.shape == (1000, 2)
    assert p.scale.min() >= 1 / 1.2 - 1e-6 and p.scale.max() <= 1.2 + 1e-6
    assert p.scale.min() < 0.85 and p.scale.max() > 1.18
    assert (p.scale[:, 0] - p.scale[:, 1]).abs().max() > 0.1  # sx and sy drawn independently
    r = DSA("rotate").sample(1000, 32, "cpu", gen(0), siamese=False).rotate
    assert r.abs().max() <= 15 and r.min() < -14 and r.max() > 14


# ---------------------------------------------------------------- gradients
@pytest.mark.parametrize("op", OPS)
def test_gradient_flows_for_every_op(op):
    aug = DSA(op)
    for siamese in (True, False):
        x = images(4, seed=11).requires_grad_()
        w = images(4, seed=12)
        p = aug.sample(4, 32, "cpu", gen(1), siamese=siamese)
        (aug.apply(x, p) * w).sum().backward()
        assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_crop_and_cutout_gradients_are_exact_masks():
    x = torch.randn(1, 2, 10, 10, requires_grad=True)
    DSA("crop").apply(x, AugParams(("crop",), shift=torch.tensor([[3, -2]]))).sum().backward()
    expect = torch.zeros(10, 10)
    expect[3:, :8] = 1  # the source pixels that survive the shift
    assert torch.equal(x.grad[0, 1], expect)
    x.grad = None
    DSA("cutout").apply(x, AugParams(("cutout",), cutout=torch.tensor([[5, 5]]))).sum().backward()
    expect = torch.ones(10, 10)
    expect[0 + 5 - 2:5 - 2 + 5, 5 - 2:5 - 2 + 5] = 0
    assert torch.equal(x.grad[0, 0], expect)


# -------------------------------------------------------------- determinism
def test_determinism_and_global_rng_untouched():
    aug, x = DSA(), images(8, seed=13)
    state = torch.get_rng_state()
    a = aug(x, gen(5))
    b = aug(x, gen(5))
    assert torch.equal(a, b)
    outs = [aug(x, gen(s)) for s in range(6, 10)]
    assert any(not torch.equal(a, o) for o in outs)
    pa, pb = aug.pair(x, x[:2], gen(3)), aug.pair(x, x[:2], gen(3))
    assert torch.equal(pa[0], pb[0]) and torch.equal(pa[1], pb[1])
    DSA(mode="all").sample(8, 32, "cpu", gen(1), siamese=False)
    assert torch.equal(torch.get_rng_state(), state)


# -------------------------------------------------------------------- modes
def test_single_mode_picks_exactly_one_op():
    aug = DSA(DEFAULT_STRATEGY, mode="single")
    seen = set()
    for s in range(80):
        ops = aug.sample(1, 32, "cpu", gen(s)).ops
        assert len(ops) == 1
        seen.update(ops)
    assert seen == set(OPS)


def test_fyi_mode_flip_plus_one_other():
    aug = DSA(DEFAULT_STRATEGY, mode="fyi")
    seen = set()
    for s in range(80):
        p = aug.sample(1, 32, "cpu", gen(s))
        assert len(p.ops) == 2 and p.ops[0] == "flip" and p.ops[1] != "flip"
        assert p.flip is not None
        seen.add(p.ops[1])
    assert seen == set(OPS) - {"flip"}
    assert DSA("flip", mode="fyi").sample(1, 32, "cpu", gen(0)).ops == ("flip",)
    assert len(DSA("crop_scale", mode="fyi").sample(1, 32, "cpu", gen(0)).ops) == 1  # no flip: single


def test_all_mode_applies_every_op_in_order():
    p = DSA(DEFAULT_STRATEGY, mode="all").sample(1, 32, "cpu", gen(0))
    assert p.ops == OPS
    assert DSA("rotate_flip", mode="all").sample(1, 32, "cpu", gen(0)).ops == ("rotate", "flip")
    # 'all' composes the ops: equal to applying each op's params in turn
    x = images(2, seed=14)
    aug = DSA("flip_crop", mode="all")
    p = aug.sample(1, 32, "cpu", gen(2))
    step = DSA("flip").apply(x, AugParams(("flip",), flip=p.flip))
    step = DSA("crop").apply(step, AugParams(("crop",), shift=p.shift))
    assert torch.equal(aug.apply(x, p), step)


# ------------------------------------------------------------ shapes, dtypes
@pytest.mark.parametrize("shape", [(5, 1, 28, 28), (3, 3, 64, 64), (2, 3, 8, 8), (2, 1, 128, 128)])
def test_shapes_preserved(shape):
    x = torch.randn(*shape)
    for op in OPS:
        out = DSA(op)(x, gen(0))
        assert out.shape == x.shape and out.dtype == x.dtype
    assert DSA(mode="all")(x, gen(1), siamese=True).shape == x.shape


def test_bf16_autocast_and_bf16_inputs_run():
    x = images(4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        for op in OPS:
            out = DSA(op)(x, gen(0))
            assert out.shape == x.shape and torch.isfinite(out.float()).all()
    for op in OPS:
        assert torch.isfinite(DSA(op)(x.bfloat16(), gen(0)).float()).all()


# ------------------------------------------------------------------- errors
def test_identity_and_errors():
    x = images(2)
    for s in ("", "none", "None"):
        aug = DSA(s)
        assert aug.is_identity and aug(x, gen(0)) is x
        assert aug.pair(x, x[:1], gen(0))[0] is x
    with pytest.raises(FyiError, match="unknown DSA operation"):
        DSA("color_jitter")
    with pytest.raises(FyiError, match="unknown DSA mode"):
        DSA(mode="double")
    with pytest.raises(FyiError):
        DSA("crop_crop")
    with pytest.raises(FyiError):
        DSAConfig(scale=0.5)
    aug = DSA("crop")
    with pytest.raises(FyiError, match="per-image"):
        aug.apply(images(3), aug.sample(4, 32, "cpu", gen(0), siamese=False))
    with pytest.raises(FyiError, match="sampled for"):
        aug.apply(images(3, h=28), aug.sample(1, 32, "cpu", gen(0)))
    with pytest.raises(FyiError):
        aug.sample(4, "cpu")


def test_params_pickle_and_move():
    p = DSA(mode="all").sample(3, 32, "cpu", gen(0), siamese=False)
    q = pickle.loads(pickle.dumps(p))
    assert q.ops == p.ops and torch.equal(q.shift, p.shift) and q.siamese is False
    x = images(3)
    assert torch.equal(DSA(mode="all").apply(x, q.to("cpu")), DSA(mode="all").apply(x, p))


def test_config_strengths_are_used():
    aug = DSA("crop", config=DSAConfig(crop=0.25))
    assert aug.sample(2000, 32, "cpu", gen(0), siamese=False).shift.abs().max() == 8
    assert DSA("flip", config=DSAConfig(flip=0.0)).sample(200, 32, "cpu", gen(0), siamese=False).flip.sum() == 0
    assert DSA("cutout", config=DSAConfig(cutout=0.25)).cutout_size(32) == (8, 8)
