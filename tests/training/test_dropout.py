"""Dropout: scratch function and layer against nn.Dropout, sub-network sampling, parallel regression nets."""

import pytest
import torch
from torch import nn

from dlnotes import data, train
from dlnotes.training import dropout


def test_dropout_scratch_zeroes_about_p_and_scales_survivors():
    X = torch.arange(1.0, 10001.0)
    g = torch.Generator().manual_seed(0)
    out = dropout.dropout_scratch(X, p=0.3, generator=g)
    kept = out != 0
    assert abs(1 - kept.float().mean().item() - 0.3) < 0.02  # about p of the units are dropped
    torch.testing.assert_close(out[kept], X[kept] / 0.7)  # survivors are scaled by 1 / (1 - p)


def test_dropout_scratch_keeps_the_expectation_and_has_the_predicted_variance():
    h = torch.tensor([0.5, -1.0, 2.0, 3.0])
    p = 0.4
    g = torch.Generator().manual_seed(1)
    samples = dropout.dropout_scratch(h.expand(200_000, -1), p=p, generator=g)  # (S, 4)
    torch.testing.assert_close(samples.mean(0), h, atol=0.02, rtol=0.01)
    torch.testing.assert_close(samples.var(0), h**2 * p / (1 - p), atol=0.02, rtol=0.02)


def test_dropout_scratch_matches_nn_dropout_in_distribution():
    X = torch.ones(400_000)
    torch.manual_seed(0)
    ours = dropout.dropout_scratch(X, p=0.5)
    theirs = nn.functional.dropout(X, p=0.5, training=True)
    assert set(ours.unique().tolist()) == set(theirs.unique().tolist()) == {0.0, 2.0}
    assert abs((ours == 0).float().mean() - (theirs == 0).float().mean()) < 0.01


def test_dropout_scratch_edge_probabilities_and_bad_p():
    X = torch.randn(5, 3)
    assert torch.equal(dropout.dropout_scratch(X, p=0.0), X)
    assert torch.equal(dropout.dropout_scratch(X, p=1.0), torch.zeros_like(X))
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match=r"p must lie in \[0, 1\]"):
            dropout.dropout_scratch(X, p=bad)
    with pytest.raises(ValueError, match="must lie in"):
        dropout.DropoutScratch(2.0)


def test_dropout_scratch_takes_one_probability_per_row():
    X = torch.ones(3, 20_000)
    p = torch.tensor([[0.0], [0.25], [0.9]])  # (3, 1) broadcasts over the columns
    out = dropout.dropout_scratch(X, p=p, generator=torch.Generator().manual_seed(0))
    dropped = (out == 0).float().mean(1)
    torch.testing.assert_close(dropped, p[:, 0], atol=0.01, rtol=0)
    torch.testing.assert_close(out.mean(1), torch.ones(3), atol=0.05, rtol=0)  # expectation kept per row
    with pytest.raises(ValueError, match="must lie in"):
        dropout.dropout_scratch(X, p=torch.tensor([[0.1], [1.2], [0.0]]))


def test_dropout_scratch_is_reproducible_with_a_generator():
    X = torch.randn(50, 20)
    a = dropout.dropout_scratch(X, p=0.5, generator=torch.Generator().manual_seed(7))
    b = dropout.dropout_scratch(X, p=0.5, generator=torch.Generator().manual_seed(7))
    c = dropout.dropout_scratch(X, p=0.5, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_dropout_scratch_gradient_is_the_mask_times_the_scale():
    X = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    out = dropout.dropout_scratch(X, p=0.5, generator=torch.Generator().manual_seed(0))
    out.sum().backward()
    torch.testing.assert_close(X.grad, (out != 0).double() * 2)
    # with a fixed mask the op is linear, so gradcheck applies
    assert torch.autograd.gradcheck(
        lambda A: dropout.dropout_scratch(A, p=0.3, generator=torch.Generator().manual_seed(3)), (X,))


def test_layer_is_random_in_train_mode_and_the_identity_in_eval_mode():
    for layer in (dropout.DropoutScratch(0.5), nn.Dropout(0.5)):
        X = torch.ones(2, 100)
        layer.train()
        assert not torch.equal(layer(X), layer(X))
        layer.eval()
        assert torch.equal(layer(X), X)


def test_scratch_and_torch_mlp_agree_in_eval_mode_with_the_same_weights():
    torch.manual_seed(0)
    ours = dropout.dropout_mlp(num_inputs=12, num_hiddens=8, num_outputs=3, scratch=True)
    theirs = dropout.dropout_mlp(num_inputs=12, num_hiddens=8, num_outputs=3)
    X = torch.arange(24.0).reshape(2, 1, 3, 4) / 24
    ours.eval(), theirs.eval()
    assert isinstance(ours[3], dropout.DropoutScratch) and isinstance(theirs[3], nn.Dropout)
    assert not torch.allclose(ours(X), theirs(X))  # they differ before the copy
    theirs.load_state_dict(ours.state_dict())
    torch.testing.assert_close(ours(X), theirs(X))


def test_subnetwork_outputs_differ_restore_the_mode_and_average_to_the_mean_for_a_linear_head():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Dropout(0.5), nn.Linear(10, 1))  # dropout then linear: E[out] = eval output
    X = torch.randn(3, 10)
    net.eval()
    S = dropout.subnetwork_outputs(net, X, num_samples=20_000)
    assert S.shape == (20_000, 3, 1) and not net.training
    assert S[0].ne(S[1]).any()
    with torch.no_grad():
        torch.testing.assert_close(S.mean(0), net(X), atol=0.03, rtol=0.0)
    probs = dropout.subnetwork_outputs(nn.Sequential(nn.Dropout(0.5), nn.Linear(10, 4)), X, num_samples=5, softmax=True)
    torch.testing.assert_close(probs.sum(-1), torch.ones(5, 3))
    with pytest.raises(ValueError, match="num_samples"):
        dropout.subnetwork_outputs(net, X, num_samples=0)


def test_parallel_models_match_separate_linear_layers():
    torch.manual_seed(0)
    par = dropout.ParallelDropoutMLP((3, 5, 1), num_models=2, dropout=(0.5,))
    X = torch.randn(7, 3)
    par.eval()
    for m in range(2):
        ref = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 1))
        with torch.no_grad():
            assert not torch.allclose(ref(X)[:, 0], par(X)[m])
            ref[0].weight.copy_(par.weights[0][m].T)
            ref[0].bias.copy_(par.biases[0][m, 0])
            ref[2].weight.copy_(par.weights[1][m].T)
            ref[2].bias.copy_(par.biases[1][m, 0])
            torch.testing.assert_close(ref(X)[:, 0], par(X)[m])


def test_parallel_models_get_independent_masks_and_gradients():
    torch.manual_seed(0)
    par = dropout.ParallelDropoutMLP((1, 50, 1), num_models=2, dropout=(0.5,))
    with torch.no_grad():  # two identical models
        for P in (*par.weights, *par.biases):
            P[1] = P[0]
    X = torch.linspace(-1, 1, 9)[:, None]
    out = par(X)  # train mode: different masks per model
    assert not torch.allclose(out[0], out[1])
    # the summed loss gives model 0 exactly the gradient of its own loss, and model 1 none of it
    y = torch.zeros(9)
    (g_sum,) = torch.autograd.grad(dropout.parallel_mse(out, y), par.weights[0], retain_graph=True)
    (g_own,) = torch.autograd.grad(((out[0] - y) ** 2).mean(), par.weights[0])
    assert g_own[0].abs().sum() > 0
    torch.testing.assert_close(g_sum[0], g_own[0])
    assert torch.count_nonzero(g_own[1]) == 0


def test_parallel_bad_configuration_and_parallel_mse_shapes():
    with pytest.raises(ValueError, match="one dropout probability per hidden layer"):
        dropout.ParallelDropoutMLP((1, 8, 8, 1), num_models=2, dropout=(0.5,))
    with pytest.raises(ValueError, match="one output"):
        dropout.ParallelDropoutMLP((1, 8, 2), num_models=2, dropout=(0.5,))
    with pytest.raises(ValueError, match=r"y_hat \(M, N\)"):
        dropout.parallel_mse(torch.zeros(2, 5), torch.zeros(5, 1))
    with pytest.raises(ValueError, match="data for 3 models"):
        dropout.ParallelDropoutMLP((1, 8, 1), num_models=2, dropout=(0.5,))(torch.zeros(3, 4, 1))


def test_per_model_probabilities_and_per_model_data():
    torch.manual_seed(0)
    par = dropout.ParallelDropoutMLP((2, 400, 1), num_models=3, dropout=([0.0, 0.5, 1.0],))
    X = torch.randn(3, 5, 2)  # a data set per model
    out = par(X)
    assert out.shape == (3, 5)
    par.eval()
    clean = par(X)
    torch.testing.assert_close(out[0], clean[0])  # p = 0: no unit dropped
    assert not torch.allclose(out[1], clean[1])  # p = 0.5: a random sub-network
    bias_only = torch.einsum("nh,ho->no", torch.zeros(5, 400), par.weights[1][2]) + par.biases[1][2]
    torch.testing.assert_close(out[2], bias_only[:, 0])  # p = 1: every hidden unit dropped
    torch.testing.assert_close(dropout.parallel_mse(out, torch.zeros(3, 5)), (out**2).mean(1).sum())


def test_dropout_regularises_a_wide_regression_net_on_few_noisy_points():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    x, y = dropout.noisy_sine(num_examples=12, noise=0.3, generator=g)
    assert x.shape == (12, 1) and y.shape == (12,)
    train_mse = {}
    for p in (0.0, 0.5):
        torch.manual_seed(0)
        net = dropout.ParallelDropoutMLP((1, 32, 32, 1), num_models=2, dropout=(p, p))
        train.fit(model=net, train_loader=data.TensorLoader(x, y, batch_size=12), loss_fn=dropout.parallel_mse,
                  optimizer=torch.optim.Adam(net.parameters(), lr=0.02), num_epochs=200, progress=False)
        net.eval()
        with torch.no_grad():
            train_mse[p] = ((net(x) - y) ** 2).mean().item()
    assert train_mse[0.0] < 0.3**2 / 2  # without dropout the net fits the noise
    assert train_mse[0.5] > 2 * train_mse[0.0]  # dropout keeps it from doing so


def test_integer_activations_are_an_error_not_silently_kept():
    with pytest.raises(TypeError, match="floating-point"):
        dropout.dropout_scratch(torch.ones(4, 4, dtype=torch.long), p=0.5)
    kept = dropout.dropout_scratch(torch.ones(1000, dtype=torch.float64), p=0.5,
                                   generator=torch.Generator().manual_seed(0))
    assert 0.4 < (kept == 0).double().mean() < 0.6 and set(kept.unique().tolist()) == {0.0, 2.0}
