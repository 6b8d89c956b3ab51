"""dlnotes.cnn.modern_cnn: builder shapes, parameter and MAC counts by hand, Inception, timing helpers."""

import pytest
import torch
from torch import nn

from dlnotes.training import essentials
from dlnotes.cnn import conv, modern_cnn

META = torch.device("meta")  # shapes without data: a full-size forward pass costs nothing


def meta_build(builder, **kwargs) -> nn.Module:
    with META:
        return builder(**kwargs)


@pytest.mark.parametrize("builder,kwargs,last_side", [
    (modern_cnn.alexnet, {}, 5), (modern_cnn.vgg, {}, 7), (modern_cnn.nin, {}, 5), (modern_cnn.googlenet, {}, 7)])
def test_full_size_shapes_on_the_meta_device(builder, kwargs, last_side):
    net = meta_build(builder, **kwargs)
    rows = modern_cnn.layer_shapes(net, (1, 1, 224, 224))
    assert rows[-1][1] == (1, 10)
    # the last feature map before the classifier has d2l's size (5x5 for AlexNet and NiN, 7x7 otherwise)
    sides = [shape[-1] for _, shape, _ in rows if len(shape) == 4]
    assert last_side in sides
    assert sum(p for _, _, p in rows) == essentials.count_parameters(net)


def test_alexnet_layer_sizes_follow_the_formula():
    net = meta_build(modern_cnn.alexnet)
    shapes = [shape for _, shape, _ in modern_cnn.layer_shapes(net, (1, 1, 224, 224))]
    assert shapes[0] == (1, 96, 54, 54)  # (224 - 11 + 2) // 4 + 1
    assert shapes[2] == (1, 96, 26, 26)
    assert (1, 6400) in shapes


@pytest.mark.parametrize("builder,kwargs,side", [
    (modern_cnn.alexnet, dict(image_size=65), 65), (modern_cnn.vgg, dict(image_size=32), 32),
    (modern_cnn.nin, {}, 67), (modern_cnn.googlenet, {}, 8)])
def test_real_forward_on_the_smallest_input(builder, kwargs, side):
    torch.manual_seed(0)
    net = builder(**kwargs).eval()
    with torch.no_grad():
        assert net(torch.rand(2, 1, side, side)).shape == (2, 10)


def test_too_small_inputs_are_refused():
    with pytest.raises(ValueError, match="kernel spans"):
        meta_build(modern_cnn.vgg, image_size=31)  # five halvings need 32 pixels
    net = meta_build(modern_cnn.nin)
    with pytest.raises(RuntimeError):
        modern_cnn.layer_shapes(net, (1, 1, 66, 66))


def test_narrow_vgg_with_resize_takes_28_pixel_digits():
    arch = modern_cnn.narrow_arch(modern_cnn.VGG11_ARCH, divisor=16)
    assert arch == ((1, 4), (1, 8), (2, 16), (2, 32), (2, 32))
    net = modern_cnn.with_resize(modern_cnn.vgg(arch, image_size=32, fc_width=32), image_size=32)
    assert net(torch.rand(3, 1, 28, 28)).shape == (3, 10)
    with pytest.raises(ValueError, match="without channels"):
        modern_cnn.narrow_arch(modern_cnn.VGG11_ARCH, divisor=128)


def test_vgg_block_has_num_convs_3x3_convs_then_a_pool():
    block = modern_cnn.vgg_block(3, 2, 5)
    convs = [m for m in block if isinstance(m, nn.Conv2d)]
    assert len(convs) == 3 and all(c.kernel_size == (3, 3) for c in convs)
    assert isinstance(block[-1], nn.MaxPool2d)
    assert block(torch.rand(1, 2, 8, 8)).shape == (1, 5, 4, 4)
    with pytest.raises(ValueError, match="at least one"):
        modern_cnn.vgg_block(0, 2, 5)


def test_vgg_block_with_batch_norm_normalises_before_each_relu():
    block = modern_cnn.vgg_block(2, 3, 4, batch_norm=True)
    kinds = [type(m) for m in block]
    assert kinds == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d]
    x = torch.randn(8, 3, 6, 6)
    normalised = block[1](block[0](x))  # in training mode: per-channel batch statistics
    assert torch.allclose(normalised.mean(dim=(0, 2, 3)), torch.zeros(4), atol=1e-5)
    assert block(x).shape == (8, 4, 3, 3)


def test_nin_has_no_dense_layer_and_nin_block_is_conv_then_two_1x1():
    net = meta_build(modern_cnn.nin)
    assert not any(isinstance(m, nn.Linear) for m in net.modules())
    block = modern_cnn.nin_block(3, 8, kernel_size=5, padding=2)
    kernels = [m.kernel_size for m in block if isinstance(m, nn.Conv2d)]
    assert kernels == [(5, 5), (1, 1), (1, 1)]


def test_a_1x1_convolution_is_a_dense_layer_at_every_pixel():
    torch.manual_seed(0)
    conv1, dense = nn.Conv2d(4, 3, kernel_size=1), nn.Linear(4, 3)
    X = torch.rand(2, 4, 5, 6)
    by_dense = dense(X.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)  # (B, H, W, C) -> (B, C_out, H, W)
    assert not torch.allclose(conv1(X), by_dense)
    with torch.no_grad():
        dense.weight.copy_(conv1.weight.reshape(3, 4))  # (C_out, C_in, 1, 1) -> (C_out, C_in)
        dense.bias.copy_(conv1.bias)
    torch.testing.assert_close(conv1(X), dense(X.permute(0, 2, 3, 1)).permute(0, 3, 1, 2))


def test_inception_concatenates_its_four_paths():
    block = modern_cnn.Inception(7, 2, (3, 4), (2, 5), 6)
    assert block.out_channels == 2 + 4 + 5 + 6
    out = block(torch.rand(2, 7, 9, 9))
    assert out.shape == (2, 17, 9, 9)
    X = torch.rand(2, 7, 9, 9)
    with torch.no_grad():  # the channels come in path order: 1x1 | 3x3 | 5x5 | pool
        out = block(X)
        parts = [block.p1(X), block.p2(X), block.p3(X), block.p4(X)]
    assert [p.shape[1] for p in parts] == [2, 4, 5, 6]
    torch.testing.assert_close(out, torch.cat(parts, dim=1))
    torch.testing.assert_close(out[:, 6:11], block.p3(X))


def test_googlenet_stages_have_d2l_channels():
    net = meta_build(modern_cnn.googlenet)
    shapes = [shape for _, shape, _ in modern_cnn.layer_shapes(net, (1, 1, 96, 96))]
    assert shapes[:5] == [(1, 64, 24, 24), (1, 192, 12, 12), (1, 480, 6, 6), (1, 832, 3, 3), (1, 1024)]


def test_count_parameters_is_the_sum_of_numels_and_matches_the_formula():
    net = modern_cnn.nin_block(3, 8, kernel_size=5, padding=2)
    assert essentials.count_parameters(net) == sum(p.numel() for p in net.parameters())
    expected = (conv.conv_num_params(in_channels=3, out_channels=8, kernel_size=5)
                + 2 * conv.conv_num_params(in_channels=8, out_channels=8, kernel_size=1))
    assert essentials.count_parameters(net) == expected


def test_count_flops_by_hand_on_a_tiny_conv_and_linear_net():
    # conv 2 -> 3, 3x3, no padding, 6x6 input: 4x4 output, each of the 3*4*4 outputs costs 2*3*3 MACs;
    # pool to 2x2, flatten 12 -> linear 12 -> 5 costs 60 MACs
    net = nn.Sequential(nn.Conv2d(2, 3, kernel_size=3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(12, 5))
    assert modern_cnn.count_macs(net, (1, 2, 6, 6)) == 3 * 4 * 4 * (2 * 3 * 3) + 12 * 5
    assert modern_cnn.count_macs(net, (4, 2, 6, 6)) == 4 * (3 * 4 * 4 * 18 + 60)  # linear in the batch


def test_count_flops_of_1x1_strided_and_grouped_convolutions():
    assert modern_cnn.count_macs(nn.Conv2d(16, 8, kernel_size=1), (1, 16, 10, 10)) == 8 * 10 * 10 * 16
    strided = nn.Conv2d(4, 6, kernel_size=3, stride=2, padding=1)  # 9x9 -> 5x5
    assert modern_cnn.count_macs(strided, (1, 4, 9, 9)) == 6 * 5 * 5 * 4 * 9
    grouped = nn.Conv2d(4, 6, kernel_size=3, padding=1, groups=2)  # each output sees 2 of the 4 channels
    assert modern_cnn.count_macs(grouped, (1, 4, 5, 5)) == 6 * 5 * 5 * 2 * 9


def test_count_flops_works_on_meta_and_leaves_no_hooks_and_keeps_the_mode():
    net = meta_build(modern_cnn.alexnet)
    net.train()
    macs = modern_cnn.count_macs(net, (1, 1, 224, 224))
    assert macs == modern_cnn.count_macs(net, (1, 1, 224, 224))  # hooks were removed: no double counting
    assert net.training
    assert all(not m._forward_hooks for m in net.modules())
    # the first convolution alone: 96 * 54 * 54 outputs, 11 * 11 MACs each
    assert macs > 96 * 54 * 54 * 121


def test_conv_stack_same_receptive_field_fewer_parameters():
    c = 8
    two3 = modern_cnn.conv_stack(kernel_size=3, num_layers=2, channels=c)
    one5 = modern_cnn.conv_stack(kernel_size=5, num_layers=1, channels=c)
    assert two3(torch.rand(1, c, 7, 7)).shape == (1, c, 7, 7)
    weights = lambda net: sum(m.weight.numel() for m in net if isinstance(m, nn.Conv2d))
    assert weights(two3) == 2 * 9 * c * c and weights(one5) == 25 * c * c
    assert conv.receptive_field([(3, 1)] * 2) == 5 and conv.receptive_field([(3, 1)] * 3) == 7
    with pytest.raises(ValueError, match="odd"):
        modern_cnn.conv_stack(kernel_size=4, num_layers=1, channels=c)


def test_timing_helpers_return_positive_times_and_consistent_rows():
    net = modern_cnn.conv_stack(kernel_size=3, num_layers=1, channels=2)
    times = modern_cnn.time_forward_backward([net, net], torch.rand(1, 2, 6, 6), repeats=3)
    assert len(times) == 2 and all(t > 0 for t in times)
    assert net[0].weight.grad is not None  # the backward pass ran
    with pytest.raises(ValueError, match="repeats"):
        modern_cnn.time_forward_backward([net], torch.rand(1, 2, 6, 6), repeats=0)
    rows = modern_cnn.small_vs_large_kernels(channels=(4,), image_sizes=(8,), batch_size=1, repeats=1)
    assert [r["stack"] for r in rows] == ["2x 3x3", "1x 5x5", "3x 3x3", "1x 7x7"]
    assert [r["receptive_field"] for r in rows] == [5, 5, 7, 7]
    assert rows[0]["macs"] == 2 * 4 * 8 * 8 * 4 * 9 and rows[1]["macs"] == 4 * 8 * 8 * 4 * 25
    assert all(r["seconds"] > 0 for r in rows)


def test_narrow_alexnet_divides_the_channels_and_rejects_too_small_images():
    net = modern_cnn.alexnet(image_size=96, width_divisor=8, fc_width=64)
    convs = [m.out_channels for m in net if isinstance(m, nn.Conv2d)]
    assert convs == [12, 32, 48, 48, 32]
    assert [m.out_features for m in net if isinstance(m, nn.Linear)] == [64, 64, 10]
    with torch.no_grad():
        assert net(torch.rand(3, 1, 96, 96)).shape == (3, 10)
    for too_small in (64, 40):
        with pytest.raises(ValueError, match="image_size >= 65"):
            modern_cnn.alexnet(image_size=too_small)
    modern_cnn.alexnet(image_size=65)  # the smallest that works
