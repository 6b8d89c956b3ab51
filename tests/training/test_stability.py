"""Tests of dlnotes.training.stability: gradient norms per layer, scratch Xavier/He init, scratch gradient clipping."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from dlnotes.training import stability
from dlnotes.data import TensorLoader
from dlnotes.train import fit

# ---------------------------------------------------------------- why depth multiplies


def test_sigmoid_grad_matches_autograd_and_peaks_at_a_quarter():
    x = torch.linspace(-8, 8, 201, dtype=torch.float64, requires_grad=True)
    (auto,) = torch.autograd.grad(torch.sigmoid(x).sum(), x)
    torch.testing.assert_close(stability.sigmoid_grad(x.detach()), auto)
    assert stability.sigmoid_grad(torch.zeros(())).item() == 0.25
    assert auto.max().item() <= 0.25


def test_matrix_product_norms_equal_the_explicit_product():
    g = torch.Generator().manual_seed(0)
    norms = stability.matrix_product_norms(num_matrices=5, size=3, std=0.7, generator=g)
    M = torch.randn(5, 3, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 0.7
    torch.testing.assert_close(norms[-1], torch.linalg.matrix_norm(M[0] @ M[1] @ M[2] @ M[3] @ M[4]))
    torch.testing.assert_close(norms[0], torch.linalg.matrix_norm(M[0]))
    with pytest.raises(ValueError, match="num_matrices"):
        stability.matrix_product_norms(num_matrices=0)


# ---------------------------------------------------------------- measuring a deep net


def test_deep_mlp_has_the_asked_layers_and_rejects_unknown_activations():
    net = stability.deep_mlp(num_inputs=5, num_hiddens=7, num_layers=4, num_outputs=3, activation="tanh")
    linears = [m for m in net if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(5, 7), (7, 7), (7, 7), (7, 3)]
    assert sum(isinstance(m, nn.Tanh) for m in net) == 3 and isinstance(net[-1], nn.Linear)
    with pytest.raises(ValueError, match="unknown activation"):
        stability.deep_mlp(num_inputs=5, num_hiddens=7, num_layers=4, activation="swish")


def test_layer_grad_norms_equal_the_norms_of_backward_grads():
    torch.manual_seed(0)
    net = stability.deep_mlp(num_inputs=4, num_hiddens=6, num_layers=3, activation="sigmoid")
    X, y = torch.randn(10, 4), torch.randn(10, 1)
    norms = stability.layer_grad_norms(net, X, y, loss_fn=nn.MSELoss())
    assert all(p.grad is None for p in net.parameters())  # .grad left untouched
    nn.MSELoss()(net(X), y).backward()
    expected = torch.stack([net[i].weight.grad.norm() for i in (0, 2, 4)])
    torch.testing.assert_close(norms, expected)


def test_layer_grad_norms_vanish_through_sigmoid_but_not_relu():
    X, y = torch.randn(128, 32, generator=torch.Generator().manual_seed(1)), torch.randn(128, 1)
    ratios = {}
    for act in ("sigmoid", "relu"):
        net = stability.deep_mlp(num_inputs=32, num_hiddens=32, num_layers=12, activation=act)
        stability.init_weights_(net, scheme="kaiming_normal", generator=torch.Generator().manual_seed(0))
        norms = stability.layer_grad_norms(net, X, y, loss_fn=nn.MSELoss())
        ratios[act] = (norms[0] / norms[-1]).item()
    assert ratios["sigmoid"] < 1e-4  # geometric decay towards the input: σ' <= 1/4 per layer
    assert 1e-2 < ratios["relu"] < 1e2


def test_activation_variances_follows_the_linear_layers():
    net = stability.deep_mlp(num_inputs=3, num_hiddens=4, num_layers=2, activation="relu")
    X = torch.randn(50, 3)
    v = stability.activation_variances(net, X)
    torch.testing.assert_close(v, torch.stack([net[0](X).var(), net(X).var()]).detach())
    with pytest.raises(ValueError, match="Sequential"):
        stability.activation_variances(nn.Linear(3, 1), X)


# ---------------------------------------------------------------- initialisation


def test_fans_of_a_linear_and_a_conv_weight():
    assert stability.fans(torch.empty(30, 20)) == (20, 30)  # nn.Linear(20, 30) stores (out, in)
    assert stability.fans(torch.empty(8, 3, 5, 5)) == (75, 200)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        stability.fans(torch.empty(5))


@pytest.mark.parametrize("shape", [(300, 200), (64, 512)])
def test_xavier_uniform_scratch_has_torchs_bound_and_variance(shape):
    n_out, n_in = shape
    bound = 1.5 * math.sqrt(6 / (n_in + n_out))
    ours = stability.xavier_uniform_scratch(torch.empty(shape), gain=1.5,
                                            generator=torch.Generator().manual_seed(0))
    ref = nn.init.xavier_uniform_(torch.empty(shape), gain=1.5, generator=torch.Generator().manual_seed(1))
    assert not torch.equal(ours, ref)
    for W in (ours, ref):
        assert W.abs().max() <= bound and W.abs().max() > 0.99 * bound  # fills (-a, a)
    expected_var = 1.5**2 * 2 / (n_in + n_out)
    assert abs(ours.var().item() / expected_var - 1) < 0.03
    assert abs(ours.var().item() / ref.var().item() - 1) < 0.04
    assert abs(ours.mean().item()) < 0.01 * bound


def test_xavier_normal_and_kaiming_scratch_match_torchs_std():
    g = torch.Generator().manual_seed(0)
    ours = stability.xavier_normal_scratch(torch.empty(400, 300), generator=g)
    ref = nn.init.xavier_normal_(torch.empty(400, 300))
    assert abs(ours.std().item() / ref.std().item() - 1) < 0.02
    assert abs(ours.std().item() - math.sqrt(2 / 700)) < 0.02 * math.sqrt(2 / 700)
    he = stability.kaiming_normal_scratch(torch.empty(400, 300), generator=g)
    he_ref = nn.init.kaiming_normal_(torch.empty(400, 300), nonlinearity="relu")  # fan_in mode
    assert abs(he.std().item() / he_ref.std().item() - 1) < 0.02


def test_xavier_preserves_the_variance_through_a_deep_linear_net():
    X = torch.randn(2000, 128, generator=torch.Generator().manual_seed(0))
    net = stability.deep_mlp(num_inputs=128, num_hiddens=128, num_layers=10, num_outputs=128, activation="identity")
    g = torch.Generator().manual_seed(0)
    xavier = stability.activation_variances(stability.init_weights_(net, scheme="xavier_uniform", generator=g), X)
    assert ((xavier > 0.6) & (xavier < 1.6)).all()  # stays near Var(x) = 1 for all 10 layers
    naive = stability.activation_variances(stability.init_weights_(net, scheme="normal", std=0.01, generator=g), X)
    torch.testing.assert_close(naive[1:] / naive[:-1], torch.full((9,), 128 * 0.01**2), rtol=0.15, atol=0)


def test_init_weights_zeroes_biases_and_checks_its_arguments():
    net = stability.deep_mlp(num_inputs=3, num_hiddens=4, num_layers=2)
    stability.init_weights_(net, scheme="normal", std=2.0)
    assert all((m.bias == 0).all() for m in net if isinstance(m, nn.Linear))
    with pytest.raises(ValueError, match="unknown scheme"):
        stability.init_weights_(net, scheme="orthogonal")
    with pytest.raises(ValueError, match="std"):
        stability.init_weights_(net, scheme="normal")
    with pytest.raises(ValueError, match="std"):
        stability.init_weights_(net, scheme="xavier_normal", std=1.0)


# ---------------------------------------------------------------- gradient clipping


def _two_nets_with_grads(scale: float):
    torch.manual_seed(0)
    a = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 2))
    b = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 2))
    b.load_state_dict(a.state_dict())
    X = torch.randn(8, 5)
    for net in (a, b):
        (scale * net(X).pow(2).sum()).backward()
    return a, b


@pytest.mark.parametrize("scale, max_norm", [(10.0, 1.0), (0.001, 1.0), (1.0, 0.3)])
def test_clip_grad_norm_scratch_matches_torch(scale, max_norm):
    ours, ref = _two_nets_with_grads(scale)
    norm = stability.clip_grad_norm_scratch(ours.parameters(), max_norm=max_norm)
    ref_norm = nn.utils.clip_grad_norm_(ref.parameters(), max_norm=max_norm)
    torch.testing.assert_close(norm, ref_norm)  # both return the norm before clipping
    for p, q in zip(ours.parameters(), ref.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-5, atol=1e-7)
    after = torch.linalg.vector_norm(torch.cat([p.grad.reshape(-1) for p in ours.parameters()]))
    assert after.item() <= max_norm * (1 + 1e-5)
    if norm < max_norm:  # a small gradient is left as it was
        assert after.item() == pytest.approx(norm.item(), rel=1e-6)


def test_clip_grad_norm_scratch_keeps_the_direction_and_rejects_bad_thresholds():
    p = nn.Parameter(torch.zeros(2))
    p.grad = torch.tensor([3.0, 4.0])
    assert stability.clip_grad_norm_scratch([p], max_norm=1.0).item() == 5.0
    torch.testing.assert_close(p.grad, torch.tensor([0.6, 0.8]))
    p.grad = torch.zeros(2)
    stability.clip_grad_norm_scratch([p], max_norm=1.0)
    assert torch.equal(p.grad, torch.zeros(2))  # a zero gradient stays zero, no NaN
    with pytest.raises(ValueError, match="max_norm"):
        stability.clip_grad_norm_scratch([p], max_norm=0.0)


def test_clipped_optimizer_keeps_an_exploding_run_finite():
    X = torch.randn(64, 3, generator=torch.Generator().manual_seed(0))
    y = X @ torch.tensor([[1.0], [-2.0], [0.5]])
    losses = {}
    for max_norm in (float("inf"), 1.0):
        torch.manual_seed(0)
        net = nn.Linear(3, 1)
        opt = stability.ClippedOptimizer(torch.optim.SGD(net.parameters(), lr=1.5), max_norm=max_norm)
        fit(model=net, train_loader=TensorLoader(X, y, batch_size=64), loss_fn=nn.MSELoss(), optimizer=opt,
            num_epochs=30, progress=False)
        assert len(opt.norms) == 30
        losses[max_norm] = nn.MSELoss()(net(X), y).item()
    assert losses[float("inf")] > 1e6  # lr far above 2/λ_max: the loss grows geometrically
    assert losses[1.0] < 10.0  # clipped steps have length <= lr θ: the weights stay bounded
