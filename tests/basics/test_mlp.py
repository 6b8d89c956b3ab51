"""Tests of dlnotes.basics.mlp: data generators, the perceptron, the XOR network, merging layers, MLPScratch."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dlnotes.basics import mlp
from dlnotes.data import TensorLoader
from dlnotes.train import accuracy, evaluate, fit

CORNERS = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])


# ---------------------------------------------------------------- data


def test_separable_data_respects_line_and_margin():
    g = torch.Generator().manual_seed(0)
    X, y = mlp.separable_data(num_examples=300, w=(1.0, -2.0), b=0.25, margin=0.2, generator=g)
    assert X.shape == (300, 2) and y.shape == (300,) and y.dtype == torch.int64
    assert X.abs().max() <= 1
    score = X @ torch.tensor([1.0, -2.0]) + 0.25
    assert torch.equal(y, (score > 0).long())
    assert (score.abs() / torch.tensor([1.0, -2.0]).norm()).min() >= 0.2
    assert 0 < y.sum() < 300  # both classes present


def test_separable_data_is_reproducible_and_rejects_negative_margin():
    a = mlp.separable_data(num_examples=50, generator=torch.Generator().manual_seed(3))
    b = mlp.separable_data(num_examples=50, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    with pytest.raises(ValueError, match="margin must be non-negative"):
        mlp.separable_data(num_examples=5, margin=-0.1)


def test_xor_data_labels_are_xor_of_nearest_corner():
    X, y = mlp.xor_data(num_per_corner=40, noise=0.1, generator=torch.Generator().manual_seed(0))
    assert X.shape == (160, 2) and y.shape == (160,)
    corner = X.round().clamp(0, 1).long()  # noise 0.1 keeps each point near its own corner
    assert torch.equal(y, corner[:, 0] ^ corner[:, 1])
    assert torch.bincount(y).tolist() == [80, 80]
    assert not torch.equal(y[:40], y[:1].expand(40))  # shuffled: the first 40 are not one corner


# ---------------------------------------------------------------- perceptron


def test_perceptron_converges_on_separable_data_within_novikoff_bound():
    X, y = mlp.separable_data(num_examples=200, margin=0.05, generator=torch.Generator().manual_seed(1))
    p = mlp.Perceptron(num_inputs=2)
    mistakes = p.fit(X, 2 * y - 1, num_epochs=50)
    assert mistakes[-1] == 0 and mistakes[0] > 0
    first_clean = mistakes.index(0)
    assert all(m == 0 for m in mistakes[first_clean:])  # once clean, the line never moves again
    assert torch.equal(p.predict(X), 2 * y - 1)
    assert sum(mistakes) <= mlp.mistake_bound(X, 2 * y - 1, w=(1.0, -2.0), b=0.25)


def test_perceptron_never_converges_on_xor():
    p = mlp.Perceptron(num_inputs=2)
    mistakes = p.fit(CORNERS, torch.tensor([-1, 1, 1, -1]), num_epochs=200)
    assert min(mistakes) >= 1
    assert (p.predict(CORNERS) == torch.tensor([-1, 1, 1, -1])).sum() <= 3  # no line gets all four


def test_perceptron_update_is_an_sgd_step_on_the_perceptron_loss():
    """On a mistake, w <- w + y x equals one SGD step (lr 1) on max(0, -y (w·x + b))."""
    p = mlp.Perceptron(num_inputs=3)
    p.w, p.b = torch.tensor([0.5, -1.0, 2.0]), torch.tensor(0.3)
    x, y = torch.tensor([[1.0, 2.0, -0.5]]), torch.tensor([1])  # score 0.5 - 2 - 1 + 0.3 < 0: wrong
    w = p.w.clone().requires_grad_(True)
    b = p.b.clone().requires_grad_(True)
    loss = torch.clamp(-y * (x[0] @ w + b), min=0)
    loss.backward()
    assert p.fit(x, y, num_epochs=1) == [1]
    torch.testing.assert_close(p.w, (w - w.grad).detach())
    torch.testing.assert_close(p.b, (b - b.grad).detach())


def test_perceptron_rejects_class_indices_and_bad_shapes():
    p = mlp.Perceptron(num_inputs=2)
    with pytest.raises(ValueError, match=r"-1 or \+1.*2 \* c - 1"):
        p.fit(CORNERS, torch.tensor([0, 1, 1, 0]), num_epochs=1)
    with pytest.raises(ValueError, match=r"expected X \(n, 2\)"):
        p.fit(torch.zeros(4, 3), torch.tensor([1, 1, -1, -1]), num_epochs=1)


def test_mistake_bound_needs_a_separating_line():
    X, y = CORNERS, torch.tensor([-1, -1, 1, 1])  # separated by x1 = 0.5
    assert mlp.mistake_bound(X, y, w=(1.0, 0.0), b=-0.5) == pytest.approx(15.0)  # R² = ‖(1, 1, 1)‖² = 3, ρ² = 0.5² / 1.25
    with pytest.raises(ValueError, match="does not separate"):
        mlp.mistake_bound(X, y, w=(0.0, 1.0), b=-0.5)


# ---------------------------------------------------------------- XOR with a hidden layer


def test_hand_chosen_network_computes_xor_exactly():
    out = mlp.xor_net()(CORNERS)
    assert out.shape == (4, 1)
    assert torch.equal(out.detach().reshape(-1), torch.tensor([0.0, 1.0, 1.0, 0.0]))


def test_small_mlp_learns_xor_by_gradient_descent():
    X, y = mlp.xor_data(num_per_corner=25, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 2))
    loader = TensorLoader(X, y, batch_size=len(X))
    fit(model=net, train_loader=loader, loss_fn=nn.CrossEntropyLoss(), num_epochs=300,
        optimizer=torch.optim.SGD(net.parameters(), lr=0.5), progress=False)
    assert evaluate(model=net, loader=loader, metric=accuracy)["accuracy"] == 1.0


def test_decision_grid_evaluates_score_at_grid_points():
    xx, yy, zz = mlp.decision_grid(lambda P: P[:, 0] - 2 * P[:, 1], xlim=(-1, 1), ylim=(0, 3), steps=7)
    assert xx.shape == yy.shape == zz.shape == (7, 7)
    assert xx[0, 0] == -1 and xx[0, -1] == 1 and yy[0, 0] == 0 and yy[-1, 0] == 3
    torch.testing.assert_close(zz, xx - 2 * yy)
    _, _, zz2 = mlp.decision_grid(lambda P: P.sum(dim=1, keepdim=True), xlim=(0, 1), ylim=(0, 1), steps=3)
    assert zz2.shape == (3, 3)  # an (N, 1) score is fine too
    with pytest.raises(ValueError, match="one number per point"):
        mlp.decision_grid(lambda P: P, xlim=(0, 1), ylim=(0, 1), steps=3)


# ---------------------------------------------------------------- linear layers collapse


def test_merge_linear_equals_the_two_layers():
    torch.manual_seed(0)
    first, second = nn.Linear(6, 4).double(), nn.Linear(4, 3).double()
    merged = mlp.merge_linear(first, second)
    X = torch.randn(10, 6, dtype=torch.float64)
    assert merged.weight.dtype == torch.float64 and merged.weight.shape == (3, 6)
    torch.testing.assert_close(merged(X), second(first(X)), rtol=0, atol=1e-12)


def test_merge_linear_without_biases_and_with_bad_shapes():
    torch.manual_seed(0)
    first, second = nn.Linear(5, 4, bias=False), nn.Linear(4, 2, bias=False)
    X = torch.randn(3, 5)
    torch.testing.assert_close(mlp.merge_linear(first, second)(X), second(first(X)))
    with pytest.raises(ValueError, match="first gives 4 features, second expects 3"):
        mlp.merge_linear(first, nn.Linear(3, 2))


# ---------------------------------------------------------------- relu and MLPScratch


def test_relu_matches_torch_values_and_gradients():
    x = torch.tensor([-2.0, -0.5, 0.0, 0.5, 3.0], requires_grad=True)
    y = mlp.relu(x)
    torch.testing.assert_close(y, torch.relu(x))
    (grad,) = torch.autograd.grad(y.sum(), x)
    x2 = x.detach().clone().requires_grad_(True)
    (grad_ref,) = torch.autograd.grad(torch.relu(x2).sum(), x2)
    torch.testing.assert_close(grad, grad_ref)  # includes the convention relu'(0) = 0
    assert grad[2] == 0


def test_relu_gradcheck_away_from_zero():
    x = torch.tensor([-1.5, -0.3, 0.2, 1.7], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(mlp.relu, (x,))


def _copy_into_sequential(scratch: mlp.MLPScratch, net: nn.Sequential) -> None:
    with torch.no_grad():
        net[1].weight.copy_(scratch.W1.T)  # nn.Linear stores (out, in)
        net[1].bias.copy_(scratch.b1)
        net[3].weight.copy_(scratch.W2.T)
        net[3].bias.copy_(scratch.b2)


def test_mlp_scratch_matches_nn_sequential_with_copied_weights():
    torch.manual_seed(0)
    scratch = mlp.MLPScratch(num_inputs=12, num_hiddens=5, num_outputs=3, sigma=0.5)
    with torch.no_grad():
        scratch.b1.normal_()
        scratch.b2.normal_()
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 5), nn.ReLU(), nn.Linear(5, 3))
    X = torch.randn(8, 1, 3, 4)
    assert not torch.allclose(scratch(X), net(X))  # differ before the copy: the test can fail
    _copy_into_sequential(scratch, net)
    out = scratch(X)
    assert out.shape == (8, 3)
    torch.testing.assert_close(out, net(X))
    # the same gradients too
    torch.nn.functional.cross_entropy(out, torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])).backward()
    torch.nn.functional.cross_entropy(net(X), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])).backward()
    torch.testing.assert_close(scratch.W1.grad, net[1].weight.grad.T)
    torch.testing.assert_close(scratch.b2.grad, net[3].bias.grad)


def test_mlp_scratch_gradcheck_in_float64():
    torch.manual_seed(0)
    scratch = mlp.MLPScratch(num_inputs=4, num_hiddens=3, num_outputs=2, sigma=1.0).double()
    X = torch.randn(5, 4, dtype=torch.float64)
    params = (scratch.W1, scratch.b1, scratch.W2, scratch.b2)

    def f(W1, b1, W2, b2):
        return mlp.relu(X @ W1 + b1) @ W2 + b2

    torch.testing.assert_close(f(*params), scratch(X))
    assert torch.autograd.gradcheck(f, params)


def test_mlp_scratch_overfits_a_tiny_data_set():
    g = torch.Generator().manual_seed(0)
    X, y = torch.rand(64, 1, 4, 4, generator=g), torch.randint(0, 4, (64,), generator=g)
    torch.manual_seed(0)
    net = mlp.MLPScratch(num_inputs=16, num_hiddens=64, num_outputs=4, sigma=0.5)
    loader = TensorLoader(X, y, batch_size=64)
    fit(model=net, train_loader=loader, loss_fn=nn.CrossEntropyLoss(), num_epochs=500,
        optimizer=torch.optim.Adam(net.parameters(), lr=0.01), progress=False)
    assert evaluate(model=net, loader=loader, metric=accuracy)["accuracy"] == 1.0


def test_mlp_scratch_rejects_wrong_input_size():
    net = mlp.MLPScratch(num_inputs=784, num_hiddens=8, num_outputs=10)
    with pytest.raises(ValueError, match="each example has 64 numbers, but the model expects 784"):
        net(torch.zeros(2, 1, 8, 8))


def test_stacked_linear_mlp_is_no_more_expressive_than_one_layer():
    """Without an activation, Flatten-Linear-Linear is exactly one Linear."""
    torch.manual_seed(0)
    stack = nn.Sequential(nn.Flatten(), nn.Linear(16, 32), nn.Linear(32, 10)).double()
    one = mlp.merge_linear(stack[1], stack[2])
    X = torch.randn(7, 1, 4, 4, dtype=torch.float64)
    torch.testing.assert_close(one(X.flatten(1)), stack(X), rtol=0, atol=1e-12)
    assert sum(p.numel() for p in one.parameters()) == 16 * 10 + 10
