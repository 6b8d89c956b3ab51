"""dlnotes.cnn.transposed: scatter transposed conv, sizes, the conv matrix, dilated receptive fields, HDC."""

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dlnotes.cnn import conv, transposed


def test_trans_conv_scratch_matches_d2l_example_and_conv_transpose2d():
    X = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    K = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    Y = transposed.trans_conv_scratch(X, K)
    torch.testing.assert_close(Y, torch.tensor([[0.0, 0.0, 1.0], [0.0, 4.0, 6.0], [4.0, 12.0, 9.0]]))
    torch.testing.assert_close(Y, F.conv_transpose2d(X[None, None], K[None, None])[0, 0])


@pytest.mark.parametrize("stride,padding,output_padding,k", [(1, 0, 0, 3), (2, 0, 0, 3), (2, 1, 1, 3), (3, 2, 2, 4),
                                                             (2, 1, 0, 4), (1, 1, 0, 2), (4, 0, 3, 2)])
def test_trans_conv_scratch_multichannel_matches_conv_transpose2d(stride, padding, output_padding, k):
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(2, 3, 5, 4, generator=gen, dtype=torch.float64)  # (B, C_in, H, W)
    layer = nn.ConvTranspose2d(3, 2, k, stride=stride, padding=padding, output_padding=output_padding,
                               bias=False).double()
    K = torch.randn(3, 2, k, k, generator=gen, dtype=torch.float64)  # (C_in, C_out, kh, kw)
    ours = transposed.trans_conv_scratch(X, K, stride=stride, padding=padding, output_padding=output_padding)
    with torch.no_grad():
        assert not torch.allclose(layer(X), ours)  # different weights: the comparison below can fail
        layer.weight.copy_(K)
        theirs = layer(X)
    assert ours.abs().max() > 0.1
    torch.testing.assert_close(ours, theirs)


def test_trans_conv_scratch_gradcheck():
    X = torch.randn(1, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    K = torch.randn(2, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, k: transposed.trans_conv_scratch(x, k, stride=2, padding=1), (X, K))


def test_output_size_formula_matches_conv_transpose2d():
    checked = 0
    for n, k, s, p, d in itertools.product((1, 4), (1, 2, 3, 5), (1, 2, 3), (0, 1, 2), (1, 2)):
        for op in range(max(s, d)):
            try:
                size = transposed.trans_conv_output_size(n, kernel_size=k, stride=s, padding=p,
                                                         output_padding=op, dilation=d)
            except ValueError:
                continue  # padding larger than the output: PyTorch refuses too
            out = F.conv_transpose2d(torch.zeros(1, 1, n, n), torch.zeros(1, 1, k, k), stride=s, padding=p,
                                     output_padding=op, dilation=d)
            assert out.shape[-1] == size, (n, k, s, p, op, d)
            checked += 1
    assert checked > 150


@pytest.mark.parametrize("n,k,s,p,op", [(2, 2, 2, 0, 0), (4, 4, 2, 1, 0), (7, 3, 2, 1, 1), (3, 5, 3, 2, 2),
                                         (1, 4, 1, 0, 0), (5, 3, 1, 1, 0)])
def test_output_size_formula_matches_conv_transpose2d_module(n, k, s, p, op):
    layer = nn.ConvTranspose2d(2, 3, k, stride=s, padding=p, output_padding=op)
    size = transposed.trans_conv_output_size(n, kernel_size=k, stride=s, padding=p, output_padding=op)
    assert layer(torch.zeros(1, 2, n, n + 1)).shape == (1, 3, size, size + s)


def test_transposed_conv_undoes_the_shape_of_a_strided_conv():
    for n in range(4, 12):
        m = conv.conv_output_size(n, kernel_size=3, padding=1, stride=2)
        op = n - transposed.trans_conv_output_size(m, kernel_size=3, stride=2, padding=1)
        assert op in (0, 1)
        assert transposed.trans_conv_output_size(m, kernel_size=3, stride=2, padding=1, output_padding=op) == n


@pytest.mark.parametrize("shape,k,stride,padding", [((3, 3), 2, 1, 0), ((5, 4), 3, 1, 1), ((6, 6), 3, 2, 1),
                                                    ((7, 5), 2, 2, 0)])
def test_conv_matrix_conv_is_C_x_and_transposed_conv_is_Ct_y(shape, k, stride, padding):
    gen = torch.Generator().manual_seed(1)
    K = torch.randn(k, k, generator=gen, dtype=torch.float64)
    x = torch.randn(*shape, generator=gen, dtype=torch.float64)
    C = transposed.conv_matrix(K, shape, stride=stride, padding=padding)
    y = F.conv2d(x[None, None], K[None, None], stride=stride, padding=padding)[0, 0]  # (oh, ow)
    assert C.shape == (y.numel(), x.numel())
    torch.testing.assert_close(C @ x.flatten(), y.flatten())
    # the transposed conv must land on the input's shape: output_padding picks it
    ops = [n - transposed.trans_conv_output_size(m, kernel_size=k, stride=stride, padding=padding)
           for n, m in zip(shape, y.shape)]
    z = torch.randn(*y.shape, generator=gen, dtype=torch.float64)
    back = F.conv_transpose2d(z[None, None], K[None, None], stride=stride, padding=padding,
                              output_padding=tuple(ops))[0, 0]
    torch.testing.assert_close(C.T @ z.flatten(), back.flatten())
    assert not torch.allclose(C.T @ C, torch.eye(x.numel(), dtype=torch.float64))  # not an inverse


def test_dilated_receptive_field_size():
    for rates, k in [((1,), 3), ((2,), 3), ((1, 2, 5), 3), ((2, 2, 2), 3), ((1, 2, 4, 8), 2), ((3, 1), 5)]:
        R = transposed.dilated_receptive_field(rates, kernel_size=k)
        assert R == 1 + (k - 1) * sum(rates)
        assert transposed.receptive_field_paths(rates, kernel_size=k).shape == (R, R)
    assert transposed.dilated_receptive_field((4,), kernel_size=3) == 9  # r(k − 1) + 1


@pytest.mark.parametrize("rates,k", [((2, 2, 2), 3), ((1, 2, 5), 3), ((2, 4), 3), ((1, 3), 3), ((2, 3), 2)])
def test_paths_mask_equals_gradient_support_of_conv2d_stack(rates, k):
    torch.manual_seed(0)
    R = transposed.dilated_receptive_field(rates, kernel_size=k)
    paths = transposed.receptive_field_paths(rates, kernel_size=k)
    net = transposed.dilated_stack(rates, kernel_size=k, channels=2)  # random weights, two channels
    grad = transposed.input_gradient(net, size=R, channels=2)
    assert torch.equal(grad != 0, paths != 0)
    ones = transposed.dilated_stack(rates, kernel_size=k)
    for layer in ones:
        nn.init.constant_(layer.weight, 1.0)
    # with all-one weights the gradient counts the paths exactly
    assert torch.equal(transposed.input_gradient(ones, size=R).round().long(), paths)


def test_gridding_and_hdc_on_known_cases():
    assert transposed.hdc_ok((1, 2, 5), kernel_size=3)
    assert not transposed.hdc_ok((2, 2, 2), kernel_size=3)
    assert not transposed.hdc_ok((2, 4, 8), kernel_size=3)
    assert not transposed.hdc_ok((1, 2, 9), kernel_size=3)  # M_2 = 5 > 3 (the paper's example)
    assert transposed.has_holes((2, 2, 2), kernel_size=3) and transposed.has_holes((2, 4, 8), kernel_size=3)
    assert not transposed.has_holes((1, 2, 3), kernel_size=3) and not transposed.has_holes((1, 2, 5), kernel_size=3)
    paths = transposed.receptive_field_paths((2, 2, 2), kernel_size=3)
    assert (paths[::2, ::2] > 0).all() and (paths[1::2] == 0).all() and (paths[:, 1::2] == 0).all()


def test_hdc_agrees_with_holes_for_increasing_rates_starting_at_one():
    for rates in itertools.product(range(1, 9), repeat=3):
        if rates[0] == 1 and list(rates) == sorted(rates):
            assert transposed.hdc_ok(rates, kernel_size=3) == (not transposed.has_holes(rates, kernel_size=3)), rates


def test_hdc_disagrees_with_holes_where_the_rule_does_not_look():
    # the rule ignores r_1: (2, 3, 5) passes it yet leaves holes
    assert transposed.hdc_ok((2, 3, 5), kernel_size=3) and transposed.has_holes((2, 3, 5), kernel_size=3)
    # holes do not depend on the order of the rates, the rule does
    assert transposed.has_holes((1, 5, 2), kernel_size=3) == transposed.has_holes((1, 2, 5), kernel_size=3)
    assert not transposed.hdc_ok((1, 5, 2), kernel_size=3)


def test_bad_input_raises():
    with pytest.raises(ValueError, match="output_padding"):
        transposed.trans_conv_output_size(4, kernel_size=3, stride=2, output_padding=2)
    with pytest.raises(ValueError, match="removes the whole output"):
        transposed.trans_conv_output_size(1, kernel_size=2, padding=1)
    with pytest.raises(ValueError, match="C_in"):
        transposed.trans_conv_scratch(torch.ones(1, 3, 4, 4), torch.ones(2, 1, 3, 3))
    with pytest.raises(ValueError, match="2-D kernel"):
        transposed.trans_conv_scratch(torch.ones(4, 4), torch.ones(1, 1, 3, 3))
    with pytest.raises(ValueError, match="rates"):
        transposed.hdc_ok((), kernel_size=3)
    with pytest.raises(ValueError, match="rates"):
        transposed.receptive_field_paths((1, 0), kernel_size=3)
    with pytest.raises(ValueError, match="kernel_size"):
        transposed.hdc_ok((1, 2), kernel_size=1)
    with pytest.raises(ValueError, match="titles"):
        transposed.show_grids([torch.ones(2, 2)], titles=[])
