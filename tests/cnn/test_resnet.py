"""ResNet and DenseNet: block shapes, the identity a zeroed block computes, channel arithmetic,
and the gradient property the degradation experiment relies on."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from dlnotes.training import essentials, stability
from dlnotes.cnn import modern_cnn, resnet


@pytest.mark.parametrize("use_1x1conv, stride, out_channels, expected", [
    (False, 1, 3, (4, 3, 6, 6)),
    (True, 1, 6, (4, 6, 6, 6)),
    (True, 2, 6, (4, 6, 3, 3)),
])
def test_residual_output_shapes(use_1x1conv, stride, out_channels, expected):
    block = resnet.Residual(3, out_channels, use_1x1conv=use_1x1conv, stride=stride)
    assert block(torch.rand(4, 3, 6, 6)).shape == expected


def test_residual_is_relu_of_branch_plus_shortcut_and_plain_twin_drops_the_sum():
    torch.manual_seed(0)
    block = resnet.Residual(3, 3).eval()
    torch.manual_seed(0)
    plain = resnet.Residual(3, 3, shortcut=False).eval()
    x = torch.randn(2, 3, 5, 5)
    # the same seed gives the same weights: the twins differ only in the addition
    for a, b in zip(block.state_dict().values(), plain.state_dict().values()):
        assert torch.equal(a, b)
    torch.testing.assert_close(block(x), F.relu(block.branch(x) + x))
    torch.testing.assert_close(plain(x), F.relu(block.branch(x)))
    assert not torch.allclose(block(x), plain(x))


def test_zeroed_block_is_relu_and_the_identity_on_non_negative_inputs():
    torch.manual_seed(0)
    block = resnet.Residual(4, 4)
    x = torch.randn(8, 4, 5, 5)
    assert not torch.allclose(block(x), F.relu(x))  # a fresh block is not the identity
    resnet.zero_init_residual_(block)
    for mode in (block.train, block.eval):
        mode()
        assert torch.equal(block(x), F.relu(x))  # relu(x), not x: negative inputs are cut
        assert not torch.equal(block(x), x)
        x_pos = F.relu(x)  # what a previous block (or the stem's ReLU) hands on
        assert torch.equal(block(x_pos), x_pos)


def test_deepen_with_identity_computes_the_same_function():
    torch.manual_seed(0)
    net = resnet.deep_cnn(num_blocks=2, width=8, residual=True)
    x = torch.rand(4, 1, 28, 28)
    deeper = resnet.deepen_with_identity(net, num_extra=3)
    assert sum(isinstance(m, resnet.Residual) for m in deeper) == 5
    assert torch.equal(deeper.eval()(x), net.eval()(x))
    assert torch.equal(deeper.train()(x), net.train()(x))


def test_resnet18_output_shape_and_size():
    net = resnet.resnet18(10, in_channels=1).eval()
    assert net(torch.rand(1, 1, 96, 96)).shape == (1, 10)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d) and m.kernel_size != (1, 1)]
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    assert len(convs) + len(linears) == 18  # the 18 of ResNet-18 (1x1 shortcut convs not counted)
    rows = modern_cnn.layer_shapes(net, (1, 1, 96, 96))
    assert [name.split()[0] for name, _, _ in rows] == ["stem", "stage1", "stage2", "stage3", "stage4", "head"]
    assert [s for _, s, _ in rows] == [(1, 64, 24, 24), (1, 64, 24, 24), (1, 128, 12, 12),
                                       (1, 256, 6, 6), (1, 512, 3, 3), (1, 10)]
    assert sum(p for _, _, p in rows) == essentials.count_parameters(net)


def test_small_resnet_and_densenet_run_on_28x28():
    small = resnet.resnet(10, channels=(16, 32, 64, 128), num_residuals=(1, 1, 1, 1))
    assert small(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    dense = resnet.densenet(10, num_channels=8, growth_rate=4, convs_per_block=(2, 2, 2))
    rows = modern_cnn.layer_shapes(dense, (2, 1, 28, 28))
    assert [s[1] for _, s, _ in rows] == [8, 16, 8, 16, 8, 16, 10]  # + 2 * 4 per dense block, halved between
    assert rows[-1][1] == (2, 10)


def test_dense_block_channel_arithmetic_and_kept_input():
    block = resnet.DenseBlock(2, 3, 10)
    x = torch.rand(4, 3, 8, 8)
    y = block(x)
    assert y.shape == (4, 3 + 2 * 10, 8, 8) and block.out_channels == 23
    assert torch.equal(y[:, :3], x)  # concatenation keeps the input itself


def test_transition_block_halves_height_and_width():
    y = resnet.transition_block(23, 10)(torch.rand(4, 23, 8, 8))
    assert y.shape == (4, 10, 4, 4)
    assert resnet.transition_block(23, 10)(torch.rand(1, 23, 7, 7)).shape == (1, 10, 3, 3)


def test_densenet_has_far_fewer_parameters_than_resnet18():
    assert essentials.count_parameters(resnet.densenet(10)) < essentials.count_parameters(resnet.resnet18(10)) / 5


def test_residual_gradients_are_even_across_depth_where_the_plain_twin_is_not():
    """With BN the plain net's gradients do not vanish: they grow towards the input."""
    x = torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    y = torch.arange(64) % 10
    norms = {}
    for residual in (False, True):
        torch.manual_seed(0)
        net = resnet.deep_cnn(num_blocks=8, width=8, residual=residual)
        norms[residual] = stability.layer_grad_norms(net, x, y, loss_fn=F.cross_entropy)[1:-1]  # block convs
    spread = {k: (v.max() / v.min()).item() for k, v in norms.items()}
    assert spread[True] < spread[False] / 2
    assert norms[False][0] > norms[True][0]  # first block: the plain net's gradient is the larger one


def test_jacobian_products_vanish_for_plain_stacks_not_for_residual_ones():
    g = torch.Generator().manual_seed(0)
    plain = resnet.jacobian_product_norms(num_layers=20, size=32, std=0.3, residual=False, generator=g)
    res = resnet.jacobian_product_norms(num_layers=20, size=32, std=0.3, residual=True, generator=g)
    assert plain[-1] < 1e-8 and 0.5 < res[-1] < 3


def test_residual_jacobian_is_identity_plus_branch_jacobian():
    torch.manual_seed(0)
    f = nn.Sequential(nn.Linear(5, 5), nn.Tanh()).double()
    x = torch.randn(5, dtype=torch.float64)
    J = torch.autograd.functional.jacobian(lambda v: v + f(v), x)
    torch.testing.assert_close(J, torch.eye(5, dtype=torch.float64) + torch.autograd.functional.jacobian(f, x))


def test_branch_ratios_one_per_residual_block():
    torch.manual_seed(0)
    net = resnet.deep_cnn(num_blocks=3, width=8, residual=True)
    r = resnet.branch_ratios(net, torch.rand(8, 1, 28, 28))
    assert r.shape == (3,) and (r > 0).all()
    resnet.zero_init_residual_(net[5])  # the second block
    assert resnet.branch_ratios(net, torch.rand(8, 1, 28, 28))[1] == 0


def test_resized_prepends_an_upsample():
    net = resnet.resized(nn.Flatten(), size=12)
    assert net(torch.rand(2, 1, 28, 28)).shape == (2, 144)
    assert isinstance(resnet.resized(nn.Flatten(), size=None), nn.Flatten)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="use_1x1conv=True"):
        resnet.Residual(3, 6)  # channels change without a 1x1 conv on the shortcut
    with pytest.raises(ValueError, match="use_1x1conv=True"):
        resnet.Residual(3, 3, stride=2)
    with pytest.raises(ValueError, match="needs shortcut=True"):
        resnet.Residual(3, 6, use_1x1conv=True, shortcut=False)
    with pytest.raises(ValueError, match="positive"):
        resnet.Residual(0, 3)
    with pytest.raises(ValueError, match="not its input"):
        resnet.zero_init_residual_(resnet.Residual(3, 3, shortcut=False))
    with pytest.raises(ValueError, match="growth_rate"):
        resnet.DenseBlock(2, 3, 0)
    with pytest.raises(ValueError, match="positive channels"):
        resnet.transition_block(4, 0)
    with pytest.raises(ValueError, match="one channel count per stage"):
        resnet.resnet(10, channels=(16, 32), num_residuals=(1,))
    with pytest.raises(ValueError, match="first stage keeps"):
        resnet.resnet_stage(16, 32, 1, first_stage=True)
    with pytest.raises(ValueError, match="num_blocks"):
        resnet.deep_cnn(num_blocks=0, width=8, residual=True)
    with pytest.raises(ValueError, match="no top-level Residual"):
        resnet.deepen_with_identity(nn.Sequential(nn.ReLU()), num_extra=1)
    with pytest.raises(ValueError, match="no residual blocks"):
        resnet.branch_ratios(nn.Sequential(nn.ReLU()), torch.rand(1, 2))


def test_the_biases_before_batch_norm_are_found_and_get_no_gradient():
    torch.manual_seed(0)
    block = resnet.Residual(3, 6, use_1x1conv=True).double()
    X = torch.randn(4, 3, 8, 8, dtype=torch.float64)
    dead = resnet.biases_before_batch_norm(block, X)
    assert {id(b) for b in dead} == {id(block.conv1.bias), id(block.conv2.bias)}  # not the 1x1 shortcut's
    block.train()
    block(X).square().sum().backward()
    for b in dead:
        torch.testing.assert_close(b.grad, torch.zeros_like(b.grad), atol=1e-10, rtol=0)  # zero up to rounding
    assert block.conv3.bias.grad.abs().max() > 1e-3  # the shortcut's bias is alive
    plain = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.BatchNorm2d(2))  # a ReLU in between
    assert resnet.biases_before_batch_norm(plain, torch.randn(2, 1, 5, 5)) == []
    assert plain.training  # the mode is put back
