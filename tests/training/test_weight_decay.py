"""Weight decay: the penalty, the decayed update against torch optimizers, hard vs soft constraint."""

import pytest
import torch
from torch import nn

from dlnotes.basics import linreg
from dlnotes.training import weight_decay


def small_problem(seed: int = 0, *, num_inputs: int = 30, num_train: int = 8):
    g = torch.Generator().manual_seed(seed)
    return weight_decay.high_dim_data(num_inputs=num_inputs, num_train=num_train, num_test=16, generator=g)


def test_l2_penalty_is_half_the_squared_norm_and_its_gradient_is_w():
    w = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(weight_decay.l2_penalty(w), torch.linalg.vector_norm(w) ** 2 / 2)
    weight_decay.l2_penalty(w).backward()
    torch.testing.assert_close(w.grad, w.detach())
    assert torch.autograd.gradcheck(weight_decay.l2_penalty, (w,))


def test_penalized_loss_adds_lambda_w_to_the_gradient_of_the_weights_only():
    torch.manual_seed(0)
    model = linreg.LinearRegressionScratch(num_inputs=4)
    X, y = torch.randn(6, 4), torch.randn(6, 1)
    grads = {}
    for lambd in (0.0, 0.7):
        model.zero_grad()
        weight_decay.PenalizedLoss(linreg.squared_loss, [model.w], lambd=lambd)(model(X), y).backward()
        grads[lambd] = (model.w.grad.clone(), model.b.grad.clone())
    torch.testing.assert_close(grads[0.7][0], grads[0.0][0] + 0.7 * model.w.detach())
    torch.testing.assert_close(grads[0.7][1], grads[0.0][1])  # the bias is not penalised


def test_hand_written_step_equals_torch_sgd_with_weight_decay():
    torch.manual_seed(0)
    net = nn.Linear(4, 1)
    w_before = net.weight.detach().clone()
    net(torch.randn(7, 4)).square().mean().backward()
    grad = net.weight.grad.clone()
    torch.optim.SGD(net.parameters(), lr=0.1, weight_decay=0.5).step()
    by_hand = weight_decay.sgd_weight_decay_step(w_before, grad, lr=0.1, lambd=0.5)
    assert not torch.allclose(by_hand, w_before - 0.1 * grad)  # the decay term matters here
    torch.testing.assert_close(net.weight.detach(), by_hand)


def test_with_zero_gradient_sgd_and_adamw_decay_geometrically_but_adam_does_not():
    lr, steps = 0.01, 50
    expected = (1 - lr * 2.0) ** torch.arange(steps + 1.0)
    sgd = weight_decay.zero_gradient_trajectory(lambda p: torch.optim.SGD(p, lr=lr, weight_decay=2.0),
                                                w0=1.0, num_steps=steps)
    adamw = weight_decay.zero_gradient_trajectory(lambda p: torch.optim.AdamW(p, lr=lr, weight_decay=2.0),
                                                  w0=1.0, num_steps=steps)
    torch.testing.assert_close(sgd, expected)
    torch.testing.assert_close(adamw, expected)
    # coupled L2 in Adam is normalised away: about lr per step whatever lambda is
    adam = [weight_decay.zero_gradient_trajectory(lambda p: torch.optim.Adam(p, lr=lr, weight_decay=wd),
                                                  w0=1.0, num_steps=steps) for wd in (2.0, 0.02)]
    torch.testing.assert_close(adam[0], adam[1], atol=1e-4, rtol=0)
    moved = 1 - adam[0][-1]
    assert 0.8 * lr * steps < moved <= lr * steps  # nearly lr per step, not a factor per step


def test_param_groups_decay_the_weight_but_not_the_bias():
    torch.manual_seed(0)
    net = nn.Linear(3, 2)
    groups = weight_decay.decay_param_groups(net, weight_decay=0.5)
    assert [len(g["params"]) for g in groups] == [1, 1]
    assert groups[0]["params"][0] is net.weight and groups[1]["params"][0] is net.bias
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    for p in net.parameters():
        p.grad = torch.zeros_like(p)  # only decay can move anything
    torch.optim.SGD(groups, lr=0.1).step()
    torch.testing.assert_close(net.weight.detach(), 0.95 * before["weight"])
    torch.testing.assert_close(net.bias.detach(), before["bias"])
    with pytest.raises(ValueError, match="must be >= 0"):
        weight_decay.decay_param_groups(net, weight_decay=-1.0)


def test_scratch_and_concise_versions_follow_the_same_trajectory():
    X_train, y_train, X_test, y_test = small_problem()
    kwargs = dict(lr=0.01, batch_size=3, num_epochs=3, init_std=1.0)
    ws = {}
    for version in weight_decay.VERSIONS:
        for lambd in (0.0, 2.0):
            model, _ = weight_decay.fit_linear(X_train, y_train, X_test, y_test, lambd=lambd, version=version,
                                               generator=torch.Generator().manual_seed(1), **kwargs)
            ws[version, lambd] = weight_decay.weight_vector(model)
    assert not torch.allclose(ws["concise", 2.0], ws["concise", 0.0], atol=1e-3)  # decay changed the weights
    torch.testing.assert_close(ws["scratch", 2.0], ws["concise", 2.0])
    torch.testing.assert_close(ws["scratch", 0.0], ws["concise", 0.0])


def test_training_never_moves_the_null_space_part_but_decay_shrinks_it_exactly():
    X_train, y_train, X_test, y_test = small_problem()
    kwargs = dict(lr=0.01, batch_size=4, num_epochs=5, init_std=1.0)  # 2 steps per epoch: 10 steps
    null = {}
    for lambd in (0.0, 2.0):
        model, _ = weight_decay.fit_linear(X_train, y_train, X_test, y_test, lambd=lambd,
                                           generator=torch.Generator().manual_seed(1), **kwargs)
        null[lambd] = weight_decay.null_space_part(weight_decay.weight_vector(model), X_train)
    w0 = torch.randn(30, 1, generator=torch.Generator().manual_seed(1)).reshape(-1)  # fit_linear's first draw
    torch.testing.assert_close(null[0.0], weight_decay.null_space_part(w0, X_train))
    torch.testing.assert_close(null[2.0], (1 - 0.01 * 2.0) ** 10 * null[0.0])
    assert (X_train @ null[0.0]).abs().max() < 1e-4  # orthogonal to every training input


def test_weight_decay_fixes_overfitting_on_the_high_dimensional_problem():
    X_train, y_train, X_test, y_test = small_problem(num_inputs=100, num_train=10)
    sweep = weight_decay.sweep_lambd(X_train, y_train, X_test, y_test, lambds=(0.0, 10.0), seed=1,
                                     lr=0.01, batch_size=5, num_epochs=100, init_std=1.0)
    assert sweep["train_loss"][0] < 1e-3 and sweep["test_loss"][0] > 10  # memorised, does not generalise
    assert sweep["test_loss"][1] < 0.1 and sweep["w_norm"][1] < 0.2 * sweep["w_norm"][0]


def test_hard_constraint_solution_is_the_soft_one_for_the_multiplier():
    X, y, _, _ = small_problem()
    w_free, b_free = weight_decay.constrained_least_squares(X, y, theta=10.0)  # too large a budget to bind
    assert (w_free @ w_free).item() < 10.0
    assert abs(weight_decay.lagrange_multiplier(X, y, w_free, b_free)) < 1e-6
    for theta in (1e-4, 3e-4):
        w_hard, b_hard = weight_decay.constrained_least_squares(X, y, theta=theta)
        assert abs((w_hard @ w_hard).item() - theta) < 1e-9  # the constraint binds
        lambd = weight_decay.lagrange_multiplier(X, y, w_hard, b_hard)
        assert lambd > 0
        w_soft, b_soft = weight_decay.ridge_regression(X, y, lambd=lambd)
        torch.testing.assert_close(w_hard, w_soft, atol=1e-7, rtol=0)
        torch.testing.assert_close(b_hard, b_soft, atol=1e-7, rtol=0)
    with pytest.raises(ValueError, match="must be positive"):
        weight_decay.constrained_least_squares(X, y, theta=0.0)


def test_ridge_regression_matches_an_augmented_least_squares_problem():
    X, y, _, _ = small_problem()
    n, d = X.shape
    lambd = 0.3
    w, b = weight_decay.ridge_regression(X, y, lambd=lambd)
    # mean ½(Xw+b-y)² + λ/2‖w‖² is least squares with √(nλ)·I appended below X (and zeros below y)
    X1 = torch.cat([X.double(), torch.ones(n, 1, dtype=torch.float64)], dim=1)
    extra = torch.cat([(n * lambd) ** 0.5 * torch.eye(d, dtype=torch.float64), torch.zeros(d, 1, dtype=torch.float64)], 1)
    wb = torch.linalg.lstsq(torch.cat([X1, extra]), torch.cat([y.double().reshape(-1), torch.zeros(d, dtype=torch.float64)])).solution
    torch.testing.assert_close(w, wb[:-1])
    torch.testing.assert_close(b, wb[-1])


def test_bad_input_gets_clear_errors():
    X_train, y_train, X_test, y_test = small_problem()
    with pytest.raises(ValueError, match="version must be one of"):
        weight_decay.fit_linear(X_train, y_train, X_test, y_test, lambd=1.0, lr=0.1, batch_size=2, num_epochs=1,
                                init_std=1.0, generator=torch.Generator(), version="fast")
    with pytest.raises(ValueError, match="must be >= 0"):
        weight_decay.PenalizedLoss(linreg.squared_loss, [], lambd=-0.1)
    with pytest.raises(ValueError, match="sizes must be positive"):
        weight_decay.high_dim_data(num_inputs=10, num_train=0, num_test=5)
