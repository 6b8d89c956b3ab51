"""dlnotes.cnn.conv: size, receptive-field and parameter formulas against nn.Conv2d / nn.MaxPool2d."""

import pytest
import torch
from torch import nn

from dlnotes.cnn import conv


@pytest.mark.parametrize("n,k,p,s,d", [(28, 5, 2, 1, 1), (28, 5, 0, 1, 1), (224, 11, 1, 4, 1), (8, 3, 1, 2, 1),
                                       (7, 3, 0, 2, 1), (32, 3, 2, 1, 2), (9, 2, 0, 2, 1), (5, 5, 0, 1, 1)])
def test_output_size_matches_conv2d_and_pooling(n, k, p, s, d):
    x = torch.zeros(1, 1, n, n)
    out = nn.Conv2d(1, 1, kernel_size=k, padding=p, stride=s, dilation=d)(x)
    assert out.shape[-1] == conv.conv_output_size(n, kernel_size=k, padding=p, stride=s, dilation=d)
    if p <= k // 2:  # PyTorch's pooling allows padding up to half the kernel
        pooled = nn.MaxPool2d(kernel_size=k, padding=p, stride=s, dilation=d)(x)
        assert pooled.shape[-1] == conv.conv_output_size(n, kernel_size=k, padding=p, stride=s, dilation=d)


def test_output_size_rejects_bad_input():
    with pytest.raises(ValueError, match="kernel spans 5 positions"):
        conv.conv_output_size(3, kernel_size=5)
    with pytest.raises(ValueError, match="stride"):
        conv.conv_output_size(8, kernel_size=3, stride=0)


def test_receptive_field_by_recursion_and_by_gradient():
    layers = [(3, 1), (3, 2), (5, 1), (2, 2)]
    net = nn.Sequential(*[nn.Conv2d(1, 1, k, stride=s, bias=False) for k, s in layers])
    for m in net:
        nn.init.constant_(m.weight, 1.0)  # all positive: every input pixel in the field gets a gradient
    x = torch.zeros(1, 1, 64, 64, requires_grad=True)
    net(x)[0, 0, 0, 0].backward()
    rows = x.grad[0, 0].abs().sum(dim=1).nonzero()
    assert conv.receptive_field(layers) == len(rows)
    assert conv.receptive_field([(3, 1)] * 3) == 7 and conv.receptive_field([(5, 1)]) == 5
    assert conv.receptive_field([(3, 1)] * 2) == conv.receptive_field([(5, 1)])  # two 3x3 see as far as one 5x5


@pytest.mark.parametrize("c_in,c_out,k,bias", [(1, 6, 5, True), (3, 64, 3, False), (16, 32, 1, True)])
def test_num_params_matches_conv2d(c_in, c_out, k, bias):
    layer = nn.Conv2d(c_in, c_out, k, bias=bias)
    assert conv.conv_num_params(in_channels=c_in, out_channels=c_out, kernel_size=k, bias=bias) == \
        sum(p.numel() for p in layer.parameters())


# --- cross-correlation from scratch ---

import torch.nn.functional as F  # noqa: E402


def _randn(*shape, seed=0, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def test_corr2d_small_example_by_hand():
    X = torch.arange(9.0).reshape(3, 3)
    K = torch.arange(4.0).reshape(2, 2)
    # d2l's example: [[0·0 + 1·1 + 3·2 + 4·3, ...]]
    torch.testing.assert_close(conv.corr2d(X, K), torch.tensor([[19.0, 25.0], [37.0, 43.0]]))


def test_corr2d_matches_conv2d_single_channel():
    X, K = _randn(7, 9, seed=1), _randn(3, 2, seed=2)
    assert X.std() > 0.5 and K.std() > 0.5  # not a trivial input
    expected = F.conv2d(X[None, None], K[None, None])[0, 0]
    torch.testing.assert_close(conv.corr2d(X, K), expected)
    # a flipped kernel gives a different answer: PyTorch does not flip (cross-correlation)
    assert not torch.allclose(conv.corr2d(X, K.flip(0, 1)), expected)


def test_corr2d_multi_in_and_multi_in_out_match_conv2d():
    X = _randn(2, 3, 6, 5, seed=3)  # (B, C_in, H, W)
    K = _randn(4, 3, 3, 2, seed=4)  # (C_out, C_in, h, w)
    assert (K[0, 0] - K[0, 1]).abs().max() > 0.1  # slices differ, so channel mix-ups would show
    expected = F.conv2d(X, K)
    torch.testing.assert_close(conv.corr2d_multi_in_out(X, K), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(conv.corr2d_multi_in(X, K[1]), expected[:, 1], rtol=1e-5, atol=1e-5)


def test_depthwise_is_grouped_conv_and_not_ordinary_conv():
    X, K = _randn(1, 3, 5, 5, seed=5), _randn(3, 3, 3, seed=6)
    out = conv.corr2d_depthwise(X, K)
    torch.testing.assert_close(out, F.conv2d(X, K[:, None], groups=3), rtol=1e-5, atol=1e-5)
    assert out.shape[1] == 3 and F.conv2d(X, K[None]).shape[1] == 1  # C_in maps out, not one
    # summing the depthwise maps over channels gives the ordinary convolution with these slices
    torch.testing.assert_close(out.sum(1), F.conv2d(X, K[None])[:, 0], rtol=1e-5, atol=1e-5)


def test_conv2d_scratch_matches_nn_conv2d_after_copying_weights():
    torch.manual_seed(0)
    mine, ref = conv.Conv2DScratch(3, 5, (3, 2)), nn.Conv2d(3, 5, (3, 2))
    X = _randn(2, 3, 8, 7, seed=7)
    assert mine.weight.shape == ref.weight.shape and mine.bias.shape == ref.bias.shape
    assert not torch.allclose(mine(X), ref(X), atol=1e-3)  # different random weights before the copy
    with torch.no_grad():
        mine.weight.copy_(ref.weight)
        mine.bias.copy_(ref.bias)
    torch.testing.assert_close(mine(X), ref(X), rtol=1e-5, atol=1e-5)
    no_bias = conv.Conv2DScratch(3, 5, 3, bias=False)
    assert no_bias.bias is None and sum(p.numel() for p in no_bias.parameters()) == 5 * 3 * 3 * 3


def test_conv2d_scratch_learns_an_edge_kernel():
    torch.manual_seed(0)
    X = _randn(16, 1, 8, 8, seed=8)
    K = torch.tensor([[[[1.0, -1.0]]]])
    Y = F.conv2d(X, K)
    layer = conv.Conv2DScratch(1, 1, (1, 2), bias=False)
    for _ in range(30):  # plain gradient descent (torch.optim's first import alone takes seconds)
        loss = ((layer(X) - Y) ** 2).mean()
        (grad,) = torch.autograd.grad(loss, layer.weight)
        with torch.no_grad():
            layer.weight -= 0.2 * grad
    torch.testing.assert_close(layer.weight.detach(), K, atol=1e-3, rtol=0)


def test_one_by_one_conv_is_a_per_pixel_linear_layer():
    torch.manual_seed(0)
    conv1, linear = nn.Conv2d(4, 3, kernel_size=1), nn.Linear(4, 3)
    X = _randn(2, 4, 5, 6, seed=9)
    assert not torch.allclose(conv1(X), conv.per_pixel_linear(X, linear), atol=1e-3)
    with torch.no_grad():
        linear.weight.copy_(conv1.weight[:, :, 0, 0])  # (C_out, C_in, 1, 1) -> (C_out, C_in)
        linear.bias.copy_(conv1.bias)
    torch.testing.assert_close(conv.per_pixel_linear(X, linear), conv1(X), rtol=1e-5, atol=1e-5)
    # the same layer seen pixel by pixel
    torch.testing.assert_close(conv1(X)[1, :, 2, 3], linear(X[1, :, 2, 3]), rtol=1e-5, atol=1e-5)


def test_shift2d_moves_content_and_fills_zeros():
    X = torch.arange(1.0, 13).reshape(1, 3, 4)
    right = conv.shift2d(X, dx=1)
    assert right[0, :, 0].eq(0).all() and torch.equal(right[0, :, 1:], X[0, :, :-1])
    up_left = conv.shift2d(X, dx=-1, dy=-1)
    assert torch.equal(up_left[0, :2, :3], X[0, 1:, 1:]) and up_left[0, 2].eq(0).all()
    assert torch.equal(conv.shift2d(X), X)
    with pytest.raises(ValueError, match="out of"):
        conv.shift2d(X, dx=4)


def test_translation_equivariance_of_corr2d_and_not_of_a_dense_layer():
    X = torch.zeros(20, 20)
    X[6:11, 5:9] = _randn(5, 4, seed=10)  # content away from the border
    K = _randn(3, 3, seed=11)
    shifted = conv.shift2d(X, dy=3, dx=-2)
    assert not torch.allclose(shifted, X)
    torch.testing.assert_close(conv.corr2d(shifted, K), conv.shift2d(conv.corr2d(X, K), dy=3, dx=-2))
    torch.manual_seed(0)
    dense = nn.Linear(400, 324, bias=False)  # 18 x 18 outputs, like the convolution
    out = lambda x: dense(x.reshape(-1)).reshape(18, 18)  # noqa: E731
    with torch.no_grad():
        assert (out(shifted) - conv.shift2d(out(X), dy=3, dx=-2)).abs().max() > 0.1


def test_conv_as_dense_weight_reproduces_corr2d():
    K, X = _randn(2, 3, seed=12), _randn(5, 6, seed=13)
    W = conv.conv_as_dense_weight(K, height=5, width=6)
    assert W.shape == (4 * 4, 30)
    torch.testing.assert_close(W @ X.reshape(-1), conv.corr2d(X, K).reshape(-1), rtol=1e-5, atol=1e-5)
    assert (W != 0).sum(dim=1).eq(6).all()  # each output sees only h·w = 6 inputs


def test_random_translate_keeps_mass_and_moves_pixels():
    X = torch.zeros(8, 1, 12, 12)
    X[:, :, 4:8, 4:8] = 1.0
    Y = conv.random_translate(X, max_shift=2, generator=torch.Generator().manual_seed(0))
    assert Y.shape == X.shape and torch.equal(Y.sum(dim=(1, 2, 3)), X.sum(dim=(1, 2, 3)))
    assert not torch.equal(Y, X)


def test_corr2d_gradients_by_gradcheck():
    X = _randn(5, 6, seed=14, dtype=torch.float64).requires_grad_()
    K = _randn(2, 3, seed=15, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(conv.corr2d, (X, K))
    Xm = _randn(2, 4, 4, seed=16, dtype=torch.float64).requires_grad_()
    Km = _randn(3, 2, 2, 2, seed=17, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(conv.corr2d_multi_in_out, (Xm, Km))


def test_bad_shapes_raise_value_error():
    with pytest.raises(ValueError, match="larger than the input"):
        conv.corr2d(torch.zeros(2, 2), torch.zeros(3, 3))
    with pytest.raises(ValueError, match="kernel with 2 dimensions"):
        conv.corr2d(torch.zeros(4, 4), torch.zeros(1, 3, 3))
    with pytest.raises(ValueError, match="3 channels but the kernel has 2"):
        conv.corr2d_multi_in(torch.zeros(3, 4, 4), torch.zeros(2, 2, 2))
    with pytest.raises(ValueError, match=r"expected \(B, 3, H, W\)"):
        conv.Conv2DScratch(3, 2, 3)(torch.zeros(1, 2, 5, 5))
    with pytest.raises(ValueError, match="in_features|expected"):
        conv.per_pixel_linear(torch.zeros(1, 2, 3, 3), nn.Linear(4, 1))
    with pytest.raises(ValueError, match="out of"):
        conv.shift2d(torch.zeros(4, 4), dy=4, dx=0)


def test_bad_sizes_and_empty_kernels_are_errors():
    assert conv.conv_num_params(in_channels=3, out_channels=8, kernel_size=3) == 8 * (27 + 1)
    for bad in (dict(in_channels=-1), dict(out_channels=0), dict(kernel_size=0)):
        args = dict(in_channels=3, out_channels=8, kernel_size=3) | bad
        with pytest.raises(ValueError, match=f"{next(iter(bad))} must be at least 1"):
            conv.conv_num_params(**args)
    with pytest.raises(ValueError, match="kernel is empty"):
        conv.corr2d(torch.ones(4, 4), torch.ones(0, 0))
    with pytest.raises(ValueError, match="kernel is empty"):
        conv.corr2d_multi_in(torch.ones(2, 4, 4), torch.ones(2, 0, 3))
