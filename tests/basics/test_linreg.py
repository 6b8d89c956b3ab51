"""Linear regression: data generator, scratch model, loss and optimizer against PyTorch."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from dlnotes import config, data, train
from dlnotes.basics import linreg


def test_synthetic_data_shapes_and_statistics():
    g = torch.Generator().manual_seed(0)
    w = torch.tensor([2.0, -3.4])
    X, y = linreg.synthetic_data(w=w, b=4.2, num_examples=20000, noise=0.01, generator=g)
    assert X.shape == (20000, 2) and y.shape == (20000, 1)
    residual = y[:, 0] - (X @ w + 4.2)
    assert abs(residual.std().item() - 0.01) < 0.001  # exactly the noise we asked for
    assert abs(X.mean().item()) < 0.03 and abs(X.std().item() - 1) < 0.02


def test_synthetic_data_is_reproducible_with_a_generator():
    w = torch.tensor([1.0, 2.0, 3.0])
    a = linreg.synthetic_data(w=w, b=0.5, num_examples=10, generator=torch.Generator().manual_seed(3))
    b = linreg.synthetic_data(w=w, b=0.5, num_examples=10, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_scratch_model_matches_nn_linear_with_the_same_weights():
    torch.manual_seed(0)
    scratch, reference = linreg.LinearRegressionScratch(num_inputs=3), nn.Linear(3, 1)
    X = torch.arange(12.0).reshape(4, 3)
    assert not torch.allclose(scratch(X), reference(X))  # they differ before the copy
    with torch.no_grad():
        reference.weight.copy_(scratch.w.T)
        reference.bias.copy_(scratch.b)
    torch.testing.assert_close(scratch(X), reference(X))


def test_squared_loss_is_half_the_mse_and_has_the_right_gradient():
    y_hat = torch.randn(8, 1, dtype=torch.float64, requires_grad=True)
    y = torch.randn(8, 1, dtype=torch.float64)
    torch.testing.assert_close(linreg.squared_loss(y_hat, y), F.mse_loss(y_hat, y) / 2)
    assert torch.autograd.gradcheck(lambda a: linreg.squared_loss(a, y), (y_hat,))


def test_squared_loss_refuses_labels_that_would_broadcast():
    with pytest.raises(ValueError, match=r"broadcast to \(4, 4\).*reshape"):
        linreg.squared_loss(torch.zeros(4, 1), torch.zeros(4))
    with pytest.raises(ValueError, match="cannot even be broadcast"):
        linreg.squared_loss(torch.zeros(4, 1), torch.zeros(3, 2))


def test_sgd_scratch_takes_the_same_step_as_torch_sgd():
    torch.manual_seed(0)
    a = nn.Linear(3, 2)
    b = nn.Linear(3, 2)
    b.load_state_dict(a.state_dict())
    X = torch.randn(5, 3)
    for model, opt in ((a, linreg.SGDScratch(a.parameters(), lr=0.1)),
                       (b, torch.optim.SGD(b.parameters(), lr=0.1))):
        opt.zero_grad()
        model(X).square().mean().backward()
        opt.step()
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb)
    opt = linreg.SGDScratch(a.parameters(), lr=0.1)
    opt.zero_grad()
    assert all(p.grad is None for p in a.parameters())


def test_training_from_scratch_recovers_w_and_b():
    g = config.seed_everything(0)
    true_w = torch.tensor([2.0, -3.4])
    X, y = linreg.synthetic_data(w=true_w, b=4.2, num_examples=1000, generator=g)
    model = linreg.LinearRegressionScratch(num_inputs=2)
    train.fit(model=model, train_loader=data.TensorLoader(X, y, batch_size=10, shuffle=True, generator=g),
              loss_fn=linreg.squared_loss, optimizer=linreg.SGDScratch(model.parameters(), lr=0.03),
              num_epochs=3, progress=False)
    assert (model.w.detach().reshape(-1) - true_w).abs().max() < 0.01
    assert abs(model.b.item() - 4.2) < 0.01


def test_flat_labels_without_the_check_learn_the_mean_instead():
    """The notes' bug: (n,) labels broadcast against (n, 1) outputs and w collapses."""
    g = config.seed_everything(0)
    X, y = linreg.synthetic_data(w=torch.tensor([2.0, -3.4]), b=4.2, num_examples=1000, generator=g)
    model = linreg.LinearRegressionScratch(num_inputs=2)
    unchecked = lambda y_hat, y: ((y_hat - y) ** 2).mean() / 2  # noqa: E731
    train.fit(model=model, train_loader=data.TensorLoader(X, y.reshape(-1), batch_size=10, shuffle=True, generator=g),
              loss_fn=unchecked, optimizer=linreg.SGDScratch(model.parameters(), lr=0.03), num_epochs=3, progress=False)
    assert model.w.detach().norm() < 1.0  # the true w has norm 3.94
    assert abs(model.b.item() - y.mean().item()) < 0.3


def test_sgd_scratch_skips_parameters_without_gradients_like_torch_sgd():
    torch.manual_seed(0)
    used, unused = nn.Linear(2, 1), nn.Linear(2, 1)
    before = [p.detach().clone() for p in unused.parameters()]
    params = [*used.parameters(), *unused.parameters()]
    ours = linreg.SGDScratch(params, lr=0.1)
    used(torch.ones(3, 2)).sum().backward()  # only `used` gets gradients
    ours.step()
    assert all(torch.equal(a, b) for a, b in zip(before, unused.parameters()))
    ref = nn.Linear(2, 1)
    ref.load_state_dict(unused.state_dict())
    torch.optim.SGD([*used.parameters(), *ref.parameters()], lr=0.1).step()  # torch skips them too
    assert all(torch.equal(a, b) for a, b in zip(ref.parameters(), unused.parameters()))
    for lr in (0.0, -0.1):
        with pytest.raises(ValueError, match="lr must be positive"):
            linreg.SGDScratch(params, lr=lr)
