"""Optimisation: test functions, momentum against torch.optim.SGD, convexity checks, SGD runs, data."""

import math
import os

import pytest
import torch
from torch import nn

from dlnotes.basics import linreg, ml_basics
from dlnotes.training import optimization as opt


def test_quadratic_values_and_shape_check():
    x = torch.tensor([[1.0, 2.0], [3.0, -1.0]])
    torch.testing.assert_close(opt.diagonal_quadratic(x, coeffs=(1.0, 2.0)), torch.tensor([9.0, 11.0]))
    with pytest.raises(ValueError, match="3 coordinates.*2 coeffs"):
        opt.diagonal_quadratic(torch.zeros(4, 3), coeffs=(1.0, 2.0))


def test_gradient_descent_on_x_squared_multiplies_x_by_one_minus_two_lr():
    """x <- x - lr 2x: the factor (1 - 2 lr) decides slow, oscillating or divergent."""
    lrs = torch.tensor([0.05, 0.2, 0.9, 1.05], dtype=torch.float64)
    path = ml_basics.gradient_descent(lambda x: x**2, torch.full((4,), 10.0, dtype=torch.float64), lr=lrs, num_steps=8)
    torch.testing.assert_close(path[-1], 10.0 * (1 - 2 * lrs) ** 8)
    assert path[-1, 3].abs() > 10  # lr > 1 diverges
    assert (path[1:, 2] * path[:-1, 2] < 0).all()  # 0.5 < lr < 1 flips sign every step


def test_newton_step_per_coordinate_solves_a_diagonal_quadratic_in_one_step():
    coeffs = torch.tensor([0.1, 2.0], dtype=torch.float64)
    f = lambda x: opt.diagonal_quadratic(x, coeffs=coeffs)  # noqa: E731
    path = ml_basics.gradient_descent(f, torch.tensor([-5.0, -2.0], dtype=torch.float64), lr=1 / (2 * coeffs), num_steps=1)
    torch.testing.assert_close(path[-1], torch.zeros(2, dtype=torch.float64))


def test_momentum_scratch_matches_torch_sgd_step_by_step():
    torch.manual_seed(0)
    a, b, c = nn.Linear(4, 2), nn.Linear(4, 2), nn.Linear(4, 2)
    X, Y = torch.randn(6, 4), torch.randn(6, 2)
    assert not torch.allclose(a.weight, b.weight)  # differ before the copy
    b.load_state_dict(a.state_dict())
    c.load_state_dict(a.state_dict())
    scratch = opt.SGDMomentumScratch(a.parameters(), lr=0.05, beta=0.9)
    reference = torch.optim.SGD(b.parameters(), lr=0.05, momentum=0.9)
    plain = torch.optim.SGD(c.parameters(), lr=0.05)
    for step in range(5):
        for model, optimizer in ((a, scratch), (b, reference), (c, plain)):
            optimizer.zero_grad()
            ((model(X + step) - Y) ** 2).mean().backward()  # a different gradient every step
            optimizer.step()
        for pa, pb in zip(a.parameters(), b.parameters()):
            torch.testing.assert_close(pa, pb)
    assert not torch.allclose(a.weight, c.weight)  # momentum did change the path
    v = reference.state[b.weight]["momentum_buffer"]
    torch.testing.assert_close(scratch.velocities[0], v)


def test_momentum_with_a_constant_gradient_approaches_lr_over_one_minus_beta():
    p = nn.Parameter(torch.zeros(1, dtype=torch.float64))
    optimizer = opt.SGDMomentumScratch([p], lr=0.1, beta=0.9)
    for _ in range(300):
        optimizer.zero_grad()
        p.grad = torch.ones(1, dtype=torch.float64)
        optimizer.step()
    torch.testing.assert_close(optimizer.velocities[0], torch.tensor([10.0], dtype=torch.float64))


def test_momentum_descent_with_beta_zero_is_gradient_descent_and_beta_helps_when_ill_conditioned():
    f = lambda x: opt.diagonal_quadratic(x, coeffs=(0.1, 2.0))  # noqa: E731
    start = torch.tensor([-5.0, -2.0], dtype=torch.float64)
    plain = ml_basics.gradient_descent(f, start, lr=0.4, num_steps=20)
    torch.testing.assert_close(opt.momentum_descent(f, start, lr=0.4, beta=0.0, num_steps=20), plain)
    heavy = opt.momentum_descent(f, start, lr=0.4, beta=0.5, num_steps=20)
    assert f(heavy[-1]) < f(plain[-1]) / 10
    with pytest.raises(ValueError, match="beta"):
        opt.SGDMomentumScratch([], lr=0.1, beta=1.0)


def test_chord_gaps_separate_convex_from_non_convex():
    g = torch.Generator().manual_seed(0)
    assert opt.worst_chord_gap(lambda x: x**2, lo=-10, hi=10, generator=g) >= 0
    assert opt.worst_chord_gap(torch.exp, lo=-3, hi=3, generator=g) >= 0
    assert opt.worst_chord_gap(opt.x_cos, lo=-10, hi=10, generator=g) < -1  # clearly violated
    f2 = lambda x: opt.diagonal_quadratic(x, coeffs=(0.1, 2.0))  # noqa: E731
    assert opt.worst_chord_gap(f2, lo=-5, hi=5, dim=2, num_pairs=1000, generator=g) >= 0
    # the gap of x² is exactly λ(1 - λ)(a - b)²
    a, b, lam = torch.tensor([1.0, -2.0]), torch.tensor([3.0, 5.0]), torch.tensor([0.25, 0.5])
    torch.testing.assert_close(opt.chord_gaps(lambda x: x**2, a, b, lam), lam * (1 - lam) * (a - b) ** 2)
    with pytest.raises(ValueError, match="same shape"):
        opt.chord_gaps(lambda x: x**2, a, b[:1], lam)


def test_load_regression_diabetes_is_standardised():
    X, y = opt.load_regression("diabetes-sklearn")
    assert X.shape == (442, 10) and y.shape == (442, 1) and X.dtype == torch.float32
    torch.testing.assert_close(X.mean(0), torch.zeros(10), atol=1e-5, rtol=0)
    torch.testing.assert_close(X.std(0, unbiased=False), torch.ones(10), atol=1e-4, rtol=0)
    assert abs(y.mean().item()) < 1e-5 and abs(y.std(unbiased=False).item() - 1) < 1e-4
    assert opt.load_regression("diabetes-sklearn", num_examples=50)[0].shape == (50, 10)
    with pytest.raises(LookupError, match="unknown regression data set"):
        opt.load_regression("boston")


@pytest.mark.skipif(not os.environ.get("DLNOTES_MIRROR"), reason="DLNOTES_MIRROR is not set")
def test_load_regression_airfoil_from_the_mirror(tmp_path, monkeypatch):
    monkeypatch.setenv("DLNOTES_CACHE", str(tmp_path))
    X, y = opt.load_regression("airfoil")
    assert X.shape == (1503, 5) and y.shape == (1503, 1)
    torch.testing.assert_close(X.mean(0), torch.zeros(5), atol=1e-5, rtol=0)
    torch.testing.assert_close(X.std(0, unbiased=False), torch.ones(5), atol=1e-4, rtol=0)


def test_least_squares_loss_is_a_lower_bound_that_sgd_approaches():
    X, y = opt.load_regression("diabetes-sklearn")
    best = opt.least_squares_loss(X, y)
    assert 0.2 < best < 0.3  # a linear model explains about half of the variance (loss 0.5 = the mean)
    g = torch.Generator().manual_seed(0)
    run = opt.train_linear_regression(X, y, batch_size=len(X), lr=0.3, momentum=0.9, num_epochs=300, generator=g)
    assert run.losses[0] == pytest.approx(0.5, abs=1e-5)  # w = 0, b = 0 predicts the mean of y
    assert run.losses[-1] >= best - 1e-6
    assert run.losses[-1] - best < 1e-3
    assert run.steps[-1] == 300 and len(run.losses) == len(run.seconds) == 301


def test_train_linear_regression_stops_on_divergence_and_answers_time_queries():
    X, y = opt.load_regression("diabetes-sklearn", num_examples=100)
    g = torch.Generator().manual_seed(0)
    run = opt.train_linear_regression(X, y, batch_size=1, lr=1.0, num_epochs=50, generator=g)
    assert run.diverged and len(run.losses) < 51 and run.loss_after(epochs=50) == math.inf
    ok = opt.train_linear_regression(X, y, batch_size=10, lr=0.05, num_epochs=2, seconds=0.05, generator=g)
    assert ok.seconds[-1] >= 0.05 and len(ok.losses) >= 3
    assert ok.loss_after(seconds=0.0) == ok.losses[0]
    assert ok.loss_after(epochs=2) == ok.losses[2]
    with pytest.raises(ValueError, match="before"):
        ok.loss_after(seconds=ok.seconds[-1] + 10)
    with pytest.raises(ValueError, match="exactly one"):
        ok.loss_after()
    with pytest.raises(ValueError, match="batch_size"):
        opt.train_linear_regression(X, y, batch_size=0, lr=0.1, num_epochs=1)


def test_decaying_learning_rate_beats_the_same_constant_one_with_batch_size_one():
    """Constant-lr SGD stalls at a noise floor; lr / (1 + decay e) keeps going down."""
    X, y = opt.load_regression("diabetes-sklearn", num_examples=200)
    best = opt.least_squares_loss(X, y)
    runs = [opt.train_linear_regression(X, y, batch_size=1, lr=0.05, decay=decay, num_epochs=8,
                                        generator=torch.Generator().manual_seed(0)) for decay in (0.0, 2.0)]
    assert runs[1].losses[-1] - best < (runs[0].losses[-1] - best) / 2


def test_seconds_per_step_is_positive():
    assert 0 < opt.seconds_per_step(batch_size=16, num_features=3, num_steps=3) < 1


def test_descent_path_with_sgd_equals_plain_gradient_descent():
    f = lambda x: opt.diagonal_quadratic(x, coeffs=(0.1, 2.0))  # noqa: E731
    path = opt.descent_path(lambda p: linreg.SGDScratch(p, lr=0.2), f, torch.tensor([-5.0, -2.0]), num_steps=5)
    torch.testing.assert_close(path[-1], torch.tensor([-5.0 * 0.96**5, -2.0 * 0.2**5]))
    assert path.shape == (6, 2)
