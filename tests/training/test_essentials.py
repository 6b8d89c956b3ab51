"""PyTorch essentials: containers and layers against PyTorch's own, parameters, tying, devices, sums."""

import copy
import math

import pytest
import torch
from torch import nn

from dlnotes.training import essentials


def test_mlp_class_equals_nn_sequential_once_weights_are_copied():
    torch.manual_seed(0)
    net = essentials.MLP(num_inputs=5, num_hiddens=7, num_outputs=3)
    seq = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 3))
    X = torch.randn(4, 5)
    assert not torch.allclose(net(X), seq(X))
    seq[0].load_state_dict(net.hidden.state_dict())
    seq[2].load_state_dict(net.out.state_dict())
    torch.testing.assert_close(net(X), seq(X))


def test_sequential_scratch_matches_nn_sequential_and_registers_children_in_order():
    torch.manual_seed(0)
    blocks = [nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2)]
    scratch, reference = essentials.SequentialScratch(*blocks), nn.Sequential(*blocks)
    assert list(scratch.children()) == blocks and len(scratch) == 3 and scratch[2] is blocks[2]
    # the same names as nn.Sequential, so state_dicts are interchangeable
    assert list(scratch.state_dict()) == list(reference.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    X = torch.randn(3, 4)
    torch.testing.assert_close(scratch(X), reference(X))
    other = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
    assert not torch.allclose(other(X), reference(X))
    other.load_state_dict(scratch.state_dict())
    torch.testing.assert_close(other(X), scratch(X))


def test_sequential_scratch_refuses_non_modules():
    with pytest.raises(ValueError, match="block 1 is a .*not an nn.Module"):
        essentials.SequentialScratch(nn.ReLU(), torch.relu)


def test_fixed_hidden_mlp_trains_only_its_linear_layer_and_keeps_the_constant():
    g = torch.Generator().manual_seed(0)
    net = essentials.FixedHiddenMLP(num_features=6, generator=g)
    assert [n for n, _ in net.named_parameters()] == ["linear.weight", "linear.bias"]
    assert "rand_weight" in net.state_dict()  # saved, although not trained
    out = net(torch.randn(3, 6, generator=g))
    assert out.ndim == 0 and out.abs() <= 1  # the loop halves until the sum of |X| is at most 1
    out.backward()
    assert net.linear.weight.grad is not None and net.rand_weight.grad is None


def test_nested_blocks_collect_all_parameters():
    torch.manual_seed(0)
    chimera = nn.Sequential(essentials.NestMLP(num_inputs=20), nn.Linear(16, 20), essentials.FixedHiddenMLP())
    expected = (20 * 64 + 64) + (64 * 32 + 32) + (32 * 16 + 16) + (16 * 20 + 20) + (20 * 20 + 20)
    assert essentials.count_parameters(chimera) == expected
    assert chimera(torch.randn(2, 20)).ndim == 0


def test_centered_layer_has_zero_mean_and_no_parameters():
    layer = essentials.CenteredLayer()
    Y = layer(torch.tensor([1.0, 2.0, 3.0, 10.0]))
    torch.testing.assert_close(Y, torch.tensor([-3.0, -2.0, -1.0, 6.0]))
    assert essentials.count_parameters(layer) == 0
    net = nn.Sequential(nn.Linear(8, 128), essentials.CenteredLayer())
    assert abs(net(torch.rand(4, 8)).mean().item()) < 1e-6


def test_linear_scratch_matches_nn_linear_and_its_gradients():
    g = torch.Generator().manual_seed(0)
    scratch, reference = essentials.LinearScratch(5, 3, generator=g), nn.Linear(5, 3)
    X = torch.randn(4, 5, generator=g)
    assert not torch.allclose(scratch(X), reference(X))
    reference.load_state_dict(scratch.state_dict())  # same names and shapes as nn.Linear
    torch.testing.assert_close(scratch(X), reference(X))
    scratch(X).square().sum().backward()
    reference(X).square().sum().backward()
    torch.testing.assert_close(scratch.weight.grad, reference.weight.grad)
    torch.testing.assert_close(scratch.bias.grad, reference.bias.grad)
    assert scratch.weight.abs().max() <= 1 / math.sqrt(5)  # nn.Linear's default range
    with pytest.raises(ValueError, match="expected 5 input features, got 4"):
        scratch(torch.zeros(2, 4))


def test_linear_scratch_gradcheck():
    layer = essentials.LinearScratch(3, 2).double()
    X = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (X,))


def test_count_parameters_counts_a_shared_layer_once_and_can_skip_frozen_ones():
    shared = nn.Linear(8, 8)
    net = nn.Sequential(nn.Linear(4, 8), shared, nn.ReLU(), shared, nn.Linear(8, 1))
    assert essentials.count_parameters(net) == (4 * 8 + 8) + (8 * 8 + 8) + (8 + 1)
    net[0].weight.requires_grad_(False)
    assert essentials.count_parameters(net, trainable_only=True) == 8 + (8 * 8 + 8) + (8 + 1)


def test_init_schemes_give_the_expected_statistics():
    g = torch.Generator().manual_seed(0)
    net = nn.Sequential(nn.Linear(400, 300), nn.ReLU(), nn.Linear(300, 10))
    net.apply(essentials.init_fn("normal", generator=g))
    assert abs(net[0].weight.std().item() - 0.01) < 0.0005 and torch.all(net[0].bias == 0)
    net.apply(essentials.init_fn("zeros"))
    assert torch.all(net[0].weight == 0)
    net.apply(essentials.init_fn("constant"))
    assert torch.all(net[2].weight == 1)
    net.apply(essentials.init_fn("xavier", generator=g))
    bound = math.sqrt(6 / (400 + 300))  # Glorot: U(-a, a) with a = sqrt(6 / (fan_in + fan_out))
    assert net[0].weight.abs().max() <= bound and net[0].weight.abs().max() > 0.95 * bound
    net.apply(essentials.init_fn("custom", generator=g))
    w = net[0].weight
    assert torch.all((w == 0) | (w.abs() >= 5)) and abs((w == 0).float().mean().item() - 0.5) < 0.01
    with pytest.raises(ValueError, match="unknown scheme 'ones'"):
        essentials.init_fn("ones")


def test_tied_layer_gets_the_sum_of_both_uses_gradients_and_untie_separates_them():
    torch.manual_seed(0)
    shared = nn.Linear(8, 8)
    tied = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), shared, nn.ReLU(), shared, nn.ReLU(), nn.Linear(8, 1))
    untied = essentials.untie(tied)
    assert untied[2] is not untied[4]
    torch.testing.assert_close(untied[2].weight, untied[4].weight)
    X = torch.randn(5, 4)
    torch.testing.assert_close(tied(X), untied(X))
    tied(X).sum().backward()
    untied(X).sum().backward()
    torch.testing.assert_close(shared.weight.grad, untied[2].weight.grad + untied[4].weight.grad)
    assert not torch.allclose(shared.weight.grad, untied[2].weight.grad)
    deep = copy.deepcopy(tied)
    assert deep[2] is deep[4]  # deepcopy keeps the tie, which is why untie exists


def test_module_to_moves_parameters_and_buffers_but_not_plain_tensors():
    block = essentials.StatefulBlock(3)
    assert block.to(torch.float64) is block  # in place, returns itself
    assert block.linear.weight.dtype == block.scale.dtype == torch.float64
    assert block.plain.dtype == torch.float32
    x = torch.ones(3)
    assert x.to(torch.float64) is not x and x.dtype == torch.float32  # a tensor is copied
    meta = essentials.StatefulBlock(3).to("meta")
    devices = essentials.tensor_devices(meta)
    assert devices == {"linear.weight": "meta", "linear.bias": "meta", "scale": "meta", "plain": "cpu"}


def test_state_created_in_forward_must_follow_the_input_device():
    X = torch.ones(2, 3, device="meta")  # a second device that exists on every machine
    careful = essentials.StatefulBlock(3).to("meta")
    assert careful(X).device.type == "meta"
    careless = essentials.StatefulBlock(3, state_on_input_device=False).to("meta")
    with pytest.raises(RuntimeError, match="device"):
        careless(X)


def test_timers_return_positive_numbers_and_check_their_input():
    times = essentials.row_column_times(64, repeats=1)
    assert set(times) == {"rows", "columns"} and all(t > 0 for t in times.values())
    assert essentials.matmul_gflops(16, repeats=1, min_time=1e-3) > 0
    with pytest.raises(ValueError, match="n >= 2"):
        essentials.row_column_times(1)
    with pytest.raises(ValueError, match="repeats >= 1"):
        essentials.matmul_gflops(8, repeats=0)


def test_float32_addition_is_not_associative():
    a, b, c = (torch.tensor(v, dtype=torch.float32) for v in (1.0, 1e8, -1e8))
    assert ((a + b) + c).item() == 0.0 and (a + (b + c)).item() == 1.0


def test_summation_orders_agree_in_value_but_not_in_the_last_bits():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(20_000, generator=g)
    sums = essentials.summation_orders(x, generator=g)
    exact = sums["exact"]
    assert exact == pytest.approx(math.fsum(x.double().tolist()))
    assert all(abs(s - exact) / exact < 1e-4 for s in sums.values())  # all are the sum ...
    assert len({v for k, v in sums.items() if k != "exact"}) > 2  # ... but not all the same float32
    assert abs(sums["pairwise"] - exact) < abs(sums["left to right"] - exact)
    sums64 = essentials.summation_orders(x.double(), generator=g)
    spread = lambda d: max(d.values()) - min(d.values())  # noqa: E731
    assert spread(sums64) < 1e-6 * spread(sums)
    with pytest.raises(ValueError, match="1-D float"):
        essentials.summation_orders(torch.arange(5))


def test_shuffled_sums_vary_in_float32_and_are_reproducible_with_a_generator():
    x = torch.rand(5_000, generator=torch.Generator().manual_seed(1))
    a = essentials.shuffled_sums(x, num_runs=30, generator=torch.Generator().manual_seed(2))
    b = essentials.shuffled_sums(x, num_runs=30, generator=torch.Generator().manual_seed(2))
    assert a.shape == (30,) and torch.equal(a, b) and a.unique().numel() > 1
    exact = math.fsum(x.double().tolist())
    assert (a - exact).abs().max() / exact < 1e-5
    # the same values in float64: the orders still round differently, but far less
    c = essentials.shuffled_sums(x.double(), num_runs=30, generator=torch.Generator().manual_seed(2))
    assert (c - exact).abs().max() < 1e-6 * (a - exact).abs().max()
    with pytest.raises(ValueError, match="num_runs >= 1"):
        essentials.shuffled_sums(x, num_runs=0)
