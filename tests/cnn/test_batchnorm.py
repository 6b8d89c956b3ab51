"""Batch norm from scratch against nn.BatchNorm1d/2d (train and eval, running statistics, gradients),
layer norm against nn.LayerNorm, the conv bias under batch norm, the BN LeNet, bad input."""

import copy

import pytest
import torch
from torch import nn

from dlnotes.cnn import batchnorm as bn
from dlnotes.cnn import lenet


def _inputs(num_dims: int, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    shape = (16, 3) if num_dims == 2 else (8, 3, 5, 4)
    shift = torch.tensor([2.0, -1.0, 0.5]).reshape((1, 3) + (1,) * (num_dims - 2))
    return [torch.randn(shape, generator=g) * (k + 1) + shift * k for k in range(4)]  # stats move per step


def _pair(num_dims: int):
    ours = bn.BatchNormScratch(3, num_dims=num_dims)
    theirs = nn.BatchNorm1d(3) if num_dims == 2 else nn.BatchNorm2d(3)
    with torch.no_grad():  # non-trivial gamma and beta, the same in both
        theirs.weight.copy_(torch.tensor([0.5, 2.0, -1.0]))
        theirs.bias.copy_(torch.tensor([0.1, -0.3, 1.0]))
    assert not torch.equal(ours.gamma.detach(), theirs.weight.detach())  # the copy below is not a no-op
    with torch.no_grad():
        ours.gamma.copy_(theirs.weight)
        ours.beta.copy_(theirs.bias)
    return ours, theirs


@pytest.mark.parametrize("num_dims", [2, 4])
def test_train_mode_outputs_and_running_statistics_match_pytorch_over_several_steps(num_dims):
    ours, theirs = _pair(num_dims)
    for X in _inputs(num_dims):
        torch.testing.assert_close(ours(X), theirs(X))
        torch.testing.assert_close(ours.running_mean, theirs.running_mean)
        torch.testing.assert_close(ours.running_var, theirs.running_var)  # the unbiased variance
    assert not torch.allclose(ours.running_mean, torch.zeros(3))  # the running stats did move


@pytest.mark.parametrize("num_dims", [2, 4])
def test_running_statistics_follow_the_momentum_rule_with_the_unbiased_variance(num_dims):
    layer = bn.BatchNormScratch(3, num_dims=num_dims, momentum=0.3)
    mean, var = torch.zeros(3), torch.ones(3)
    dims = (0,) if num_dims == 2 else (0, 2, 3)
    for X in _inputs(num_dims):
        layer(X)
        mean = 0.7 * mean + 0.3 * X.mean(dims)
        n = X.numel() // 3
        biased = X.var(dims, unbiased=False)
        var = 0.7 * var + 0.3 * biased * n / (n - 1)
        torch.testing.assert_close(layer.running_mean, mean)
        torch.testing.assert_close(layer.running_var, var)
    assert not torch.allclose(biased, biased * n / (n - 1))  # the two variances really differ here


@pytest.mark.parametrize("num_dims", [2, 4])
def test_train_mode_normalises_with_the_biased_variance(num_dims):
    layer = bn.BatchNormScratch(3, num_dims=num_dims)
    X = _inputs(num_dims)[2]
    dims = (0,) if num_dims == 2 else (0, 2, 3)
    Y = layer(X)
    torch.testing.assert_close(Y.mean(dims), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(Y.var(dims, unbiased=False), torch.ones(3), atol=1e-3, rtol=0)


@pytest.mark.parametrize("num_dims", [2, 4])
def test_eval_mode_uses_the_copied_running_statistics_like_pytorch(num_dims):
    ours, theirs = _pair(num_dims)
    for X in _inputs(num_dims, seed=1):  # give PyTorch's layer running stats of its own
        theirs(X)
    ours.eval(), theirs.eval()
    X = _inputs(num_dims, seed=2)[3]
    assert not torch.allclose(ours(X), theirs(X), atol=1e-3)  # different running stats, different outputs
    ours.running_mean.copy_(theirs.running_mean)
    ours.running_var.copy_(theirs.running_var)
    torch.testing.assert_close(ours(X), theirs(X))
    before = ours.running_mean.clone()
    ours(X)
    assert torch.equal(ours.running_mean, before)  # eval mode does not update the statistics


def test_train_and_eval_give_different_outputs_for_the_same_input():
    layer = bn.BatchNormScratch(3, num_dims=2)
    X = _inputs(2)[3]
    train_out = layer(X)
    layer.eval()
    assert not torch.allclose(train_out, layer(X), atol=1e-2)


@pytest.mark.parametrize("num_dims", [2, 4])
def test_gradients_match_pytorch(num_dims):
    ours, theirs = _pair(num_dims)
    X = _inputs(num_dims)[3]
    X1, X2 = X.clone().requires_grad_(), X.clone().requires_grad_()
    w = torch.randn(X.shape, generator=torch.Generator().manual_seed(3))  # a loss that weighs every output
    (ours(X1) * w).sum().backward()
    (theirs(X2) * w).sum().backward()
    torch.testing.assert_close(X1.grad, X2.grad)
    torch.testing.assert_close(ours.gamma.grad, theirs.weight.grad)
    torch.testing.assert_close(ours.beta.grad, theirs.bias.grad)


@pytest.mark.parametrize("shape", [(6, 3), (3, 2, 2, 3)])
@pytest.mark.parametrize("training", [True, False])
def test_gradcheck_in_float64(shape, training):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(shape, generator=g, dtype=torch.float64, requires_grad=True)
    gamma = torch.randn(shape[1], generator=g, dtype=torch.float64, requires_grad=True)
    beta = torch.randn(shape[1], generator=g, dtype=torch.float64, requires_grad=True)

    def f(X, gamma, beta):
        stats = dict(running_mean=torch.zeros(shape[1], dtype=torch.float64) + 0.3,
                     running_var=torch.ones(shape[1], dtype=torch.float64) * 2)
        return bn.batch_norm_scratch(X, gamma=gamma, beta=beta, training=training, **stats)

    assert torch.autograd.gradcheck(f, (X, gamma, beta))


def test_layer_norm_matches_pytorch_and_does_not_depend_on_the_batch():
    for X in (_inputs(2)[3], _inputs(4)[3]):
        ref = nn.LayerNorm(X.shape[1:], elementwise_affine=False)
        torch.testing.assert_close(bn.layer_norm_scratch(X), ref(X))
        torch.testing.assert_close(bn.layer_norm_scratch(X[:1]), bn.layer_norm_scratch(X)[:1])  # alone or not
        layer = bn.BatchNormScratch(3, num_dims=X.ndim)
        assert not torch.allclose(layer(X[:2])[:1], layer(X)[:1], atol=1e-3)  # batch norm does depend


def test_layer_norm_and_batch_norm_average_over_different_axes():
    X = _inputs(2)[3]  # (16, 3)
    ln = bn.layer_norm_scratch(X)
    torch.testing.assert_close(ln.mean(1), torch.zeros(16), atol=1e-5, rtol=0)  # per example
    bnorm = bn.BatchNormScratch(3, num_dims=2)(X)
    torch.testing.assert_close(bnorm.mean(0), torch.zeros(3), atol=1e-5, rtol=0)  # per feature
    assert not torch.allclose(ln.mean(0), torch.zeros(3), atol=1e-2)


def test_conv_bias_has_no_effect_and_no_gradient_under_batch_norm():
    torch.manual_seed(0)
    conv_a = nn.Conv2d(2, 4, kernel_size=3)
    conv_b = copy.deepcopy(conv_a)
    with torch.no_grad():
        conv_b.bias.add_(torch.tensor([5.0, -3.0, 0.7, 100.0]))
    X = torch.randn(6, 2, 7, 7)
    assert not torch.allclose(conv_a(X), conv_b(X))
    norm = bn.BatchNormScratch(4, num_dims=4)
    out_a, out_b = norm(conv_a(X)), norm(conv_b(X))
    torch.testing.assert_close(out_a, out_b, atol=1e-4, rtol=1e-4)
    out_a.pow(2).mul(torch.arange(4.0).reshape(1, 4, 1, 1)).sum().backward()
    torch.testing.assert_close(conv_a.bias.grad, torch.zeros(4), atol=1e-4, rtol=0)
    assert conv_a.weight.grad.abs().max() > 1e-2  # the weights do learn


def test_bad_input_raises_value_error():
    layer = bn.BatchNormScratch(3, num_dims=4)
    with pytest.raises(ValueError, match="built for 4-D"):
        layer(torch.randn(4, 3))
    with pytest.raises(ValueError, match="X has 5 channels but gamma has shape"):
        layer(torch.randn(4, 5, 2, 2))
    with pytest.raises(ValueError, match=r"\(B, C\) or \(B, C, H, W\)"):
        bn.batch_norm_scratch(torch.randn(4, 3, 2), gamma=torch.ones(3), beta=torch.zeros(3),
                              running_mean=torch.zeros(3), running_var=torch.ones(3), training=True)
    with pytest.raises(ValueError, match="num_dims must be"):
        bn.BatchNormScratch(3, num_dims=3)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        bn.BatchNormScratch(3, num_dims=2)(torch.randn(1, 3))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(3)(torch.randn(1, 3))  # PyTorch refuses the same input
    with pytest.raises(ValueError, match="layer norm expects"):
        bn.layer_norm_scratch(torch.randn(5))
    single = bn.BatchNormScratch(3, num_dims=2).eval()
    assert single(torch.randn(1, 3)).shape == (1, 3)  # eval mode takes a single example


def test_lenet_with_scratch_bn_matches_pytorch_layers_and_biases_are_dropped():
    torch.manual_seed(0)
    ref = lenet.lenet(norm=bn.batch_norm_layer)
    ours = lenet.lenet(norm=bn.BatchNormScratch)
    assert sum(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in ref) == 4  # conv -> BN -> sigmoid
    assert sum(isinstance(m, bn.BatchNormScratch) for m in ours) == 4
    assert isinstance(ref[1], nn.BatchNorm2d) and isinstance(ref[2], nn.Sigmoid)
    assert all(not isinstance(m, (nn.Conv2d, nn.Linear)) or m.bias is None for m in list(ref)[:-1])
    assert sum(p.numel() for p in ref.parameters()) == sum(p.numel() for p in ours.parameters())
    with torch.no_grad():  # copy the conv/linear weights and BN parameters position by position
        for a, b in zip(ref, ours):
            for pa, pb in zip(a.parameters(), b.parameters()):
                pb.copy_(pa)
    X = torch.rand(8, 1, 28, 28)
    torch.testing.assert_close(ours(X), ref(X), atol=1e-5, rtol=1e-4)
    ref.eval(), ours.eval()
    torch.testing.assert_close(ours(X), ref(X), atol=1e-5, rtol=1e-4)
    plain = lenet.lenet()
    assert plain(X).shape == (8, 10) and all(m.bias is not None for m in plain if isinstance(m, nn.Conv2d))
    with pytest.raises(ValueError, match="num_dims"):
        bn.batch_norm_layer(3, num_dims=3)


def test_lenet_with_bn_fits_a_tiny_batch():
    torch.manual_seed(0)
    X, y = torch.rand(16, 1, 28, 28), torch.arange(16) % 10
    net = lenet.lenet(norm=bn.batch_norm_layer)
    opt = torch.optim.SGD(net.parameters(), lr=1.0)
    for _ in range(40):
        loss = nn.functional.cross_entropy(net(X), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.2  # from ln 10 = 2.3


def test_batch_mean_spread_shrinks_like_one_over_root_b():
    g = torch.Generator().manual_seed(0)
    values = torch.randn(20_000, 2, 2, generator=g)  # per-example means have std 1/2
    spread = bn.batch_mean_spread(values, batch_sizes=(4, 64), num_batches=2000, generator=g)
    torch.testing.assert_close(spread, 0.5 / torch.tensor([4.0, 64.0]).sqrt(), rtol=0.08, atol=0)
    with pytest.raises(ValueError, match="batch sizes must lie"):
        bn.batch_mean_spread(values, batch_sizes=(0, 4), num_batches=10)


@pytest.mark.parametrize("eps", [0.0, -1.0])
def test_a_non_positive_eps_is_an_error(eps):
    C = 3
    stats = dict(gamma=torch.ones(C), beta=torch.zeros(C), running_mean=torch.zeros(C), running_var=torch.ones(C))
    with pytest.raises(ValueError, match="eps must be positive"):
        bn.batch_norm_scratch(torch.randn(4, C), **stats, eps=eps, training=True)
    with pytest.raises(ValueError, match="eps must be positive"):
        bn.BatchNormScratch(C, num_dims=2, eps=eps)
