"""Tests of dlnotes.basics.ml_basics: losses, gradient descent, ReLU/sigmoid pieces, polynomials, depth."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dlnotes.basics import ml_basics


def grid(n: int = 2**10 + 1, lo: float = 0.0, hi: float = 1.0) -> torch.Tensor:
    return torch.linspace(lo, hi, n, dtype=torch.float64)


# --- losses and gradient descent -------------------------------------------------------------


def test_mae_and_mse_match_torch():
    g = torch.Generator().manual_seed(0)
    y_hat, y = torch.randn(3, 50, generator=g), torch.randn(3, 50, generator=g)
    torch.testing.assert_close(ml_basics.mae(y_hat, y), F.l1_loss(y_hat, y, reduction="none").mean(-1))
    torch.testing.assert_close(ml_basics.mse(y_hat, y), F.mse_loss(y_hat, y, reduction="none").mean(-1))


def test_losses_reject_mismatched_examples():
    with pytest.raises(ValueError, match="4 examples.*but y has 1"):
        ml_basics.mse(torch.zeros(4), torch.zeros(4, 1))


def test_loss_grid_matches_a_loop():
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(7, generator=g), torch.rand(7, generator=g)
    ws, bs = torch.linspace(-1, 1, 5), torch.linspace(0, 2, 3)
    surface = ml_basics.loss_grid(x, y, ws=ws, bs=bs, loss=ml_basics.mae)
    assert surface.shape == (3, 5)
    for i, b in enumerate(bs):
        for j, w in enumerate(ws):
            torch.testing.assert_close(surface[i, j], ml_basics.mae(b + w * x, y))


def test_gradient_descent_on_a_quadratic_converges_to_the_minimiser():
    target = torch.tensor([1.5, -2.0], dtype=torch.float64)
    path = ml_basics.gradient_descent(lambda p: ((p - target) ** 2).sum(), torch.zeros(2, dtype=torch.float64),
                                   lr=0.1, num_steps=200)
    assert path.shape == (201, 2)
    torch.testing.assert_close(path[-1], target)
    # one step by hand: p - lr * 2 (p - target)
    torch.testing.assert_close(path[1], 0.2 * target)


def test_gradient_descent_runs_independent_learning_rates_at_once():
    start = torch.full((3,), 2.0, dtype=torch.float64)
    lrs = torch.tensor([0.1, 0.5, 1.1], dtype=torch.float64)
    path = ml_basics.gradient_descent(lambda w: w**2, start, lr=lrs, num_steps=30)
    for i, lr in enumerate(lrs):
        alone = ml_basics.gradient_descent(lambda w: w**2, start[i], lr=lr.item(), num_steps=30)
        torch.testing.assert_close(path[:, i], alone)
    assert path[-1, 1] == 0  # lr = 1/2 jumps straight to the minimum of w²
    assert path[-1, 2].abs() > 2  # lr > 1 diverges on w²


def test_gradient_descent_on_mse_recovers_least_squares():
    g = torch.Generator().manual_seed(2)
    x = 2 * torch.rand(30, generator=g, dtype=torch.float64)
    y = 0.5 + 1.5 * x + 0.1 * torch.randn(30, generator=g, dtype=torch.float64)
    path = ml_basics.gradient_descent(lambda p: ml_basics.mse(p[1] + p[0] * x, y),
                                   torch.zeros(2, dtype=torch.float64), lr=0.2, num_steps=2000)
    exact = torch.linalg.lstsq(torch.stack([x, torch.ones_like(x)], 1), y[:, None]).solution[:, 0]
    torch.testing.assert_close(path[-1], exact)


def test_gradient_descent_rejects_negative_steps():
    with pytest.raises(ValueError, match="num_steps"):
        ml_basics.gradient_descent(lambda w: w**2, torch.zeros(1), lr=0.1, num_steps=-1)


# --- the 1-D landscape -----------------------------------------------------------------------


def test_bumpy_loss_has_three_minima_and_the_middle_one_is_global():
    minima = ml_basics.local_minima(ml_basics.bumpy_loss, lo=-6, hi=6)
    assert len(minima) == 3
    values = ml_basics.bumpy_loss(minima)
    assert values.argmin() == 1 and minima[1].abs() < 0.01
    # the derivative vanishes there (autograd in float64)
    w = minima.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(ml_basics.bumpy_loss(w).sum(), w)
    assert grad.abs().max() < 1e-3


def test_classify_runs():
    minima = torch.tensor([-1.0, 1.0], dtype=torch.float64)
    T = 50
    settled = torch.full((T,), 0.999, dtype=torch.float64)
    creeping = torch.linspace(5, 4, T, dtype=torch.float64)
    oscillating = torch.tensor([1.0, -1.0], dtype=torch.float64).repeat(T // 2)
    path = torch.stack([settled, creeping, oscillating], dim=1)  # (T, 3)
    assert ml_basics.classify_runs(path, minima).tolist() == [1, -1, -2]


# --- sigmoid, hard sigmoid, ReLU construction --------------------------------------------------


def test_sigmoid_unit_is_the_corrected_formula():
    x = torch.linspace(-5, 5, 11, dtype=torch.float64)
    c, b, w = 2.0, 0.5, -1.5
    torch.testing.assert_close(ml_basics.sigmoid_unit(x, c=c, b=b, w=w), c / (1 + torch.exp(-(b + w * x))))
    assert ml_basics.sigmoid_unit(x, c=c, b=b, w=w).max() < c


def test_hard_sigmoid_is_flat_ramp_flat():
    x = grid(301, -1, 2)
    y = ml_basics.hard_sigmoid(x, c=1.0, b=0.0, b2=-2.0, w=2.0)
    assert (y[x <= 0] == 0).all()
    torch.testing.assert_close(y[x >= 1], torch.full_like(y[x >= 1], 2.0))  # height c (b - b')
    assert ml_basics.count_linear_pieces(x, y).item() == 3


def test_relu_net_from_knots_is_exact_and_matches_numpy_interp():
    knots_x = torch.tensor([0.0, 0.1, 0.45, 0.5, 0.8, 1.0], dtype=torch.float64)
    knots_y = torch.tensor([1.0, -2.0, 0.3, 0.3, 4.0, 0.0], dtype=torch.float64)
    net = ml_basics.relu_net_from_knots(knots_x, knots_y)
    x = grid()
    with torch.no_grad():
        out = net(x[:, None])[:, 0]
    expected = torch.from_numpy(np.interp(x.numpy(), knots_x.numpy(), knots_y.numpy()))
    torch.testing.assert_close(out, expected, atol=1e-12, rtol=0)
    torch.testing.assert_close(ml_basics.piecewise_linear(x, knots_x=knots_x, knots_y=knots_y), expected)
    assert net[0].out_features == len(knots_x) - 1
    # one flat piece (0.45 -> 0.5 at height 0.3) still counts: 5 pieces
    assert ml_basics.count_linear_pieces(x, out).item() == 5


def test_relu_net_from_knots_rejects_bad_knots():
    with pytest.raises(ValueError, match="strictly increasing"):
        ml_basics.relu_net_from_knots(torch.tensor([0.0, 0.5, 0.5]), torch.tensor([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="same length"):
        ml_basics.relu_net_from_knots(torch.tensor([0.0, 1.0]), torch.tensor([0.0, 1.0, 2.0]))


def test_sigmoid_sum_formula_and_gradients():
    torch.manual_seed(0)
    model = ml_basics.SigmoidSum(4).double()
    with torch.no_grad():
        model.c.copy_(torch.tensor([1.0, -2.0, 0.5, 3.0]))
    x = torch.linspace(0, 1, 9, dtype=torch.float64)
    expected = model.bias + sum(model.c[i] * torch.sigmoid(model.b[i] + model.w[i] * x) for i in range(4))
    torch.testing.assert_close(model(x), expected)
    params = tuple(p.detach().clone().requires_grad_(True) for p in (model.w, model.b, model.c, model.bias))

    def functional(w, b, c, bias):
        return bias + torch.sigmoid(b + w * x[:, None]) @ c

    assert torch.autograd.gradcheck(functional, params)
    assert sum(p.numel() for p in model.parameters()) == 3 * 4 + 1


def test_sigmoid_sum_starts_constant_and_fits_a_ramp():
    torch.manual_seed(0)
    model = ml_basics.SigmoidSum(3)
    x = torch.linspace(0, 1, 101)
    assert torch.all(model(x) == 0)
    target = ml_basics.piecewise_linear(x, knots_x=torch.tensor([0.0, 0.3, 0.7, 1.0]),
                                     knots_y=torch.tensor([0.0, 0.0, 1.0, 1.0]))
    losses = ml_basics.fit_curve(model, x, target, lr=0.05, num_steps=800)
    assert losses[-1] < 1e-3 < losses[0]


def test_sigmoid_sum_rejects_zero_pieces():
    with pytest.raises(ValueError, match="num_pieces"):
        ml_basics.SigmoidSum(0)


# --- polynomials and cross-validation ----------------------------------------------------------


def test_fit_polynomial_matches_numpy_polyfit():
    g = torch.Generator().manual_seed(3)
    x = torch.rand(20, generator=g, dtype=torch.float64) * 2 - 1
    y = torch.randn(20, generator=g, dtype=torch.float64)
    coeffs = ml_basics.fit_polynomial(x, y, degree=4)
    expected = np.polyfit(x.numpy(), y.numpy(), 4)[::-1].copy()  # numpy: highest power first
    torch.testing.assert_close(coeffs, torch.from_numpy(expected))


def test_training_error_never_rises_with_the_degree():
    g = torch.Generator().manual_seed(4)
    x = torch.rand(12, generator=g, dtype=torch.float64) * 2 - 1
    y = x**2 + 0.3 * torch.randn(12, generator=g, dtype=torch.float64)
    errors = [ml_basics.polynomial_mse(ml_basics.fit_polynomial(x, y, degree=d), x, y) for d in range(12)]
    assert all(a >= b - 1e-12 for a, b in zip(errors, errors[1:]))
    assert errors[11] < 1e-12  # 12 points, degree 11: interpolation


def test_leave_one_out_matches_a_hand_loop():
    g = torch.Generator().manual_seed(5)
    x = torch.rand(8, generator=g, dtype=torch.float64)
    y = torch.randn(8, generator=g, dtype=torch.float64)
    by_hand = []
    for i in range(8):
        keep = torch.arange(8) != i
        c = ml_basics.fit_polynomial(x[keep], y[keep], degree=2)
        by_hand.append(ml_basics.polynomial_mse(c, x[i:i + 1], y[i:i + 1]))
    assert ml_basics.k_fold_mse(x, y, degree=2, k=8) == pytest.approx(sum(by_hand) / 8)
    with pytest.raises(ValueError, match="between 2 and the number of examples"):
        ml_basics.k_fold_mse(x, y, degree=2, k=9)


# --- pieces, depth and parameter counts --------------------------------------------------------


@pytest.mark.parametrize("depth", [1, 2, 3, 5, 8])
def test_triangle_net_is_exact_and_has_2_to_the_depth_pieces(depth):
    x = grid(2**12 + 1)
    net = ml_basics.triangle_net(depth).double()
    with torch.no_grad():
        out = net(x[:, None])[:, 0]
    torch.testing.assert_close(out, ml_basics.triangle_wave(x, depth=depth), atol=1e-12, rtol=0)
    assert ml_basics.count_linear_pieces(x, out).item() == 2**depth
    assert sum(p.numel() for p in net.parameters()) == 6 * depth + 1


def test_triangle_wave_is_the_composed_tent_map():
    x = grid()
    tent = 2 * torch.relu(x) - 4 * torch.relu(x - 0.5)
    torch.testing.assert_close(ml_basics.triangle_wave(x, depth=1), tent)
    composed = x
    for _ in range(4):
        composed = 2 * torch.relu(composed) - 4 * torch.relu(composed - 0.5)
    torch.testing.assert_close(ml_basics.triangle_wave(x, depth=4), composed)
    with pytest.raises(ValueError, match="depth must be >= 1"):
        ml_basics.triangle_wave(x, depth=0)


def test_count_linear_pieces_on_known_functions():
    x = grid(2001, -1, 1)
    assert ml_basics.count_linear_pieces(x, 3 * x - 1).item() == 1
    assert ml_basics.count_linear_pieces(x, x.abs()).item() == 2
    # kinks between grid points (at ±1/3) count once each
    y = torch.relu(x - 1 / 3) + torch.relu(-x - 1 / 3)
    assert ml_basics.count_linear_pieces(x, y).item() == 3
    # a batch of curves at once
    batch = torch.stack([x, x.abs(), y])
    assert ml_basics.count_linear_pieces(x, batch).tolist() == [1, 2, 3]


def test_a_shallow_relu_net_has_at_most_n_plus_1_pieces():
    torch.manual_seed(0)
    x = grid(2**14 + 1, -4, 4)
    for n in (1, 3, 8):
        nets = ml_basics.ParallelMLP([1, n, 1], num_models=64).double()
        with torch.no_grad():
            pieces = ml_basics.count_linear_pieces(x, nets(x))
        assert pieces.max().item() <= n + 1
        assert pieces.max().item() >= 2  # the nets do bend inside the window


@pytest.mark.parametrize("widths", [[1, 1], [1, 5, 1], [1, 2, 2, 2, 1], [3, 7, 4, 2]])
def test_mlp_num_params_matches_numel(widths):
    assert ml_basics.mlp_num_params(widths) == sum(p.numel() for p in ml_basics.mlp(widths).parameters())
    parallel = ml_basics.ParallelMLP(widths, num_models=3)
    assert sum(p.numel() for p in parallel.parameters()) == 3 * ml_basics.mlp_num_params(widths)


def test_mlp_structure():
    net = ml_basics.mlp([1, 4, 4, 1])
    assert [type(m) for m in net] == [nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, nn.Linear]


def test_parallel_mlp_equals_separate_sequential_nets():
    torch.manual_seed(0)
    widths = [1, 4, 3, 1]
    parallel = ml_basics.ParallelMLP(widths, num_models=3)
    x = torch.linspace(-1, 1, 17)
    out = parallel(x)
    assert out.shape == (3, 17)
    for m in range(3):
        net = ml_basics.mlp(widths)
        linears = [layer for layer in net if isinstance(layer, nn.Linear)]
        assert not torch.allclose(net(x[:, None])[:, 0], out[m])  # differs before the copy
        with torch.no_grad():
            for layer, W, b in zip(linears, parallel.weights, parallel.biases):
                layer.weight.copy_(W[m].T)  # nn.Linear stores (fan_out, fan_in)
                layer.bias.copy_(b[m, 0])
        torch.testing.assert_close(net(x[:, None])[:, 0], out[m])


def test_parallel_mlp_init_matches_nn_linear_bounds():
    torch.manual_seed(0)
    parallel = ml_basics.ParallelMLP([1, 16, 4], num_models=200)
    for W, fan_in in zip(parallel.weights, (1, 16)):
        bound = 1 / fan_in**0.5
        assert W.abs().max() <= bound and W.abs().max() > 0.95 * bound


def test_parallel_nets_train_independently():
    """Training M nets together gives each the same result as training it alone."""
    x = torch.linspace(-1, 1, 33)
    y = x.abs()
    torch.manual_seed(0)
    together = ml_basics.ParallelMLP([1, 4, 1], num_models=2)
    alone = ml_basics.ParallelMLP([1, 4, 1], num_models=1)
    with torch.no_grad():
        for a, t in zip(list(alone.weights) + list(alone.biases), list(together.weights) + list(together.biases)):
            a.copy_(t[1:2])
    losses_together = ml_basics.fit_curve(together, x, y, lr=0.01, num_steps=50)
    losses_alone = ml_basics.fit_curve(alone, x, y, lr=0.01, num_steps=50)
    torch.testing.assert_close(losses_together[:, 1], losses_alone[:, 0])
