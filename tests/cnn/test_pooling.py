"""dlnotes.cnn.pooling: scratch pooling against F.max_pool2d / F.avg_pool2d, window coverage, shifts, FLOPs."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from dlnotes.cnn import conv, pooling

# (kernel, stride, padding): tiling, overlapping, padded, rectangular, stride that skips pixels
COMBOS = [(2, None, 0), (2, 1, 0), (3, 2, 1), (3, 1, 1), ((2, 3), (1, 2), (1, 1)), (3, 4, 0), (4, 3, 2)]


@pytest.mark.parametrize("k,s,p", COMBOS)
@pytest.mark.parametrize("mode", ["max", "avg"])
def test_scratch_pooling_matches_pytorch_on_multichannel_batches(k, s, p, mode):
    X = torch.randn(2, 3, 9, 11, generator=torch.Generator().manual_seed(0))
    ours = pooling.pool2d_scratch(X, kernel_size=k, stride=s, padding=p, mode=mode)
    ref = (F.max_pool2d if mode == "max" else F.avg_pool2d)(X, kernel_size=k, stride=s, padding=p)
    assert ours.shape == ref.shape and ours.shape[:2] == (2, 3)  # batch and channels stay
    torch.testing.assert_close(ours, ref)


@pytest.mark.parametrize("k,s,p", [(3, 2, 1), ((2, 3), 1, (1, 1)), (4, 3, 2)])
def test_average_pooling_without_the_padding_in_the_divisor(k, s, p):
    X = torch.rand(2, 2, 7, 8) + 1
    ours = pooling.pool2d_scratch(X, kernel_size=k, stride=s, padding=p, mode="avg", count_include_pad=False)
    ref = F.avg_pool2d(X, kernel_size=k, stride=s, padding=p, count_include_pad=False)
    default = pooling.pool2d_scratch(X, kernel_size=k, stride=s, padding=p, mode="avg")
    assert not torch.allclose(ours, default)  # the two conventions differ at the border
    torch.testing.assert_close(ours, ref)


def test_max_pooling_pads_with_minus_infinity_not_zero():
    X = -torch.ones(1, 1, 4, 4)  # all negative: zero padding would win every border window
    out = pooling.pool2d_scratch(X, kernel_size=3, stride=1, padding=1, mode="max")
    assert (out == -1).all()
    torch.testing.assert_close(out, F.max_pool2d(X, 3, 1, 1))


@pytest.mark.parametrize("mode", ["max", "avg"])
def test_gradients_match_pytorch(mode):
    X = torch.randn(2, 3, 8, 7, dtype=torch.float64, requires_grad=True)  # continuous: no ties in a max
    weight = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    ref_fn = F.max_pool2d if mode == "max" else F.avg_pool2d
    (g_ours,) = torch.autograd.grad((pooling.pool2d_scratch(X, kernel_size=3, stride=2, padding=1, mode=mode)
                                     * weight).sum(), X)
    (g_ref,) = torch.autograd.grad((ref_fn(X, kernel_size=3, stride=2, padding=1) * weight).sum(), X)
    torch.testing.assert_close(g_ours, g_ref)
    assert torch.autograd.gradcheck(lambda a: pooling.pool2d_scratch(a, kernel_size=2, stride=1, mode=mode),
                                    (X[:1, :1].detach().requires_grad_(),))


@pytest.mark.parametrize("n,k,s,p", [(9, 2, 2, 0), (19, 2, 2, 0), (28, 3, 2, 1), (7, 3, 1, 1), (10, 4, 3, 2)])
def test_output_size_equals_conv_output_size(n, k, s, p):
    out = pooling.pool2d_scratch(torch.zeros(1, n, n), kernel_size=k, stride=s, padding=p)
    assert out.shape[-1] == out.shape[-2] == conv.conv_output_size(n, kernel_size=k, padding=p, stride=s)


def test_pool_rejects_bad_input():
    X = torch.zeros(1, 1, 4, 4)
    with pytest.raises(ValueError, match="mode"):
        pooling.pool2d_scratch(X, kernel_size=2, mode="min")
    with pytest.raises(ValueError, match="at most half"):
        pooling.pool2d_scratch(X, kernel_size=2, padding=2)
    with pytest.raises(ValueError, match="floating-point"):
        pooling.pool2d_scratch(torch.zeros(4, 4, dtype=torch.long), kernel_size=2)
    with pytest.raises(ValueError, match="floating-point"):
        pooling.pool2d_scratch(torch.zeros(4), kernel_size=2)
    with pytest.raises(ValueError, match="kernel spans 5"):
        pooling.pool2d_scratch(X, kernel_size=5)
    with pytest.raises(ValueError, match="stride"):
        pooling.pool2d_scratch(X, kernel_size=2, stride=0)
    with pytest.raises(ValueError, match="pair of ints"):
        pooling.pool2d_scratch(X, kernel_size=(2, 2, 2))


def test_window_counts_show_overlap_and_gaps():
    # 1-D rows of a 3-wide kernel: stride 1 covers the middle 3 times, stride 2 overlaps by one
    # column, stride 3 tiles, stride 4 leaves a column unseen
    row = lambda s, n=11: pooling.window_counts(3, n, kernel_size=3, stride=s)[1].tolist()  # noqa: E731
    assert row(1) == [1, 2, 3, 3, 3, 3, 3, 3, 3, 2, 1]
    assert row(2) == [1, 1, 2, 1, 2, 1, 2, 1, 2, 1, 1]
    assert row(3, 9) == [1] * 9
    assert row(4) == [1, 1, 1, 0, 1, 1, 1, 0, 1, 1, 1]
    padded = pooling.window_counts(4, 4, kernel_size=3, padding=1)
    assert padded[0, 0] == 4 and padded[1, 1] == 9  # padding lets a corner pixel reach four outputs
    assert pooling.window_counts(4, 4, kernel_size=3)[0, 0] == 1


def test_overlap_and_whole_pattern_fraction_agree_with_the_formula():
    assert [pooling.receptive_field_overlap(kernel_size=3, stride=s) for s in (1, 2, 3, 4)] == [2, 1, 0, -1]
    for k in (2, 3, 5):
        for s in (1, 2, 3, 4):
            for w in (1, 2, 3, 4):
                expected = min(s, k - w + 1) / s if w <= k else 0.0
                assert pooling.whole_pattern_fraction(kernel_size=k, stride=s, pattern_size=w) == expected
    with pytest.raises(ValueError, match="stride"):
        pooling.receptive_field_overlap(kernel_size=3, stride=0)


def test_global_pooling_is_invariant_and_conv_is_equivariant_on_a_crafted_image():
    img = torch.zeros(1, 1, 24, 24)
    img[..., 8:14, 9:13] = 1.0  # a bar far from the border; its right edge is at column 12
    kernel = torch.tensor([[[[1.0, -1.0]]]])
    feat = lambda x: F.conv2d(x, kernel).relu()  # noqa: E731  (fires on the bar's right edge)
    for d in (1, 2, 4):
        moved = conv.shift2d(img, dx=d)
        torch.testing.assert_close(feat(moved), conv.shift2d(feat(img), dx=d))  # equivariant
        assert pooling.relative_change(feat(img), feat(moved)) > 0.5  # ... hence not invariant
        assert pooling.relative_change(feat(img).amax((-2, -1)), feat(moved).amax((-2, -1))) == 0
    # local 2 x 2 pooling: a one-pixel shift within a window leaves it unchanged, a two-pixel shift does not
    pool = lambda x: pooling.pool2d_scratch(feat(x), kernel_size=2)  # noqa: E731
    edge_col = int(feat(img)[0, 0, 10].argmax())
    assert edge_col % 2 == 0  # the edge sits at the left of a pooling window: a shift of 1 stays inside
    assert pooling.relative_change(pool(img), pool(conv.shift2d(img, dx=1))) == 0
    assert pooling.relative_change(pool(img), pool(conv.shift2d(img, dx=2))) > 0.5


def test_relative_change_checks_its_input():
    with pytest.raises(ValueError, match="shapes differ"):
        pooling.relative_change(torch.ones(2), torch.ones(3))
    with pytest.raises(ValueError, match="all zeros"):
        pooling.relative_change(torch.zeros(2), torch.ones(2))


def test_conv2d_flops_match_pytorchs_counter():
    layer = nn.Conv2d(6, 16, kernel_size=5, padding=2, bias=False)
    for size in (28, 14):
        with FlopCounterMode(display=False) as counter:
            layer(torch.zeros(1, 6, size, size))
        assert counter.get_total_flops() == pooling.conv2d_flops(in_channels=6, out_channels=16, kernel_size=5,
                                                                 out_height=size, out_width=size)
    with pytest.raises(ValueError, match=">= 1"):
        pooling.conv2d_flops(in_channels=0, out_channels=1, kernel_size=3, out_height=2, out_width=2)
