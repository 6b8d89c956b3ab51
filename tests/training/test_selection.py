"""Model selection: factorial polynomial features, K-fold splits, the three final models, balanced tests."""

import math

import pytest
import torch
from torch import nn

from dlnotes import config, data, train
from dlnotes.basics import ml_basics
from dlnotes.training import selection


def test_factorial_features_divide_each_power_by_its_factorial():
    x = torch.tensor([-2.0, 0.5, 3.0])
    X = selection.factorial_features(x, degree=5)
    assert X.shape == (3, 6)
    for i in range(6):
        torch.testing.assert_close(X[:, i], x**i / math.factorial(i))
    torch.testing.assert_close(selection.factorial_features(x, degree=5, scaled=False),
                               ml_basics.polynomial_features(x, degree=5))
    with pytest.raises(ValueError, match="degree"):
        selection.factorial_features(x, degree=-1)


def test_polynomial_data_follows_d2l_generator():
    g = torch.Generator().manual_seed(0)
    x, y = selection.polynomial_data(20000, noise=0.1, generator=g)
    assert x.shape == (20000,) and y.shape == (20000, 1)
    clean = 5 + 1.2 * x - 3.4 * x**2 / 2 + 5.6 * x**3 / 6
    assert abs((y[:, 0] - clean).std().item() - 0.1) < 0.005
    again = selection.polynomial_data(20000, noise=0.1, generator=torch.Generator().manual_seed(0))
    assert torch.equal(y, again[1])


def test_standardize_uses_the_training_statistics_and_keeps_the_ones_column():
    g = torch.Generator().manual_seed(0)
    train_X = selection.factorial_features(torch.randn(50, generator=g), degree=4, scaled=False)
    other = selection.factorial_features(torch.randn(30, generator=g) + 1, degree=4, scaled=False)
    a, b = selection.standardize(train_X, other)
    torch.testing.assert_close(a[:, 0], torch.ones(50))
    torch.testing.assert_close(a[:, 1:].mean(0), torch.zeros(4), atol=1e-5, rtol=0)
    torch.testing.assert_close(a[:, 1:].std(0), torch.ones(4))
    expected = (other[:, 1:] - train_X[:, 1:].mean(0)) / train_X[:, 1:].std(0)  # the training mean, not its own
    torch.testing.assert_close(b[:, 1:], expected)
    assert abs(b[:, 1].mean().item()) > 0.3  # shifted data stays shifted


def test_train_regression_recovers_the_cubic_with_sgd():
    g = config.seed_everything(0)
    x, y = selection.polynomial_data(100, generator=g)
    X = selection.factorial_features(x, degree=3)
    net = nn.Linear(4, 1, bias=False)
    history = selection.train_regression(net, X, y, val=(X, y), lr=0.05, num_epochs=150, batch_size=10,
                                         generator=g)
    assert history.num_epochs == 150 and history.final("test_loss") < 0.02
    torch.testing.assert_close(net.weight.detach()[0], torch.tensor(selection.D2L_WEIGHTS), atol=0.1, rtol=0)


def test_least_squares_matches_the_polynomial_fit_of_basics():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(30, generator=g, dtype=torch.float64)
    y = torch.sin(3 * x)[:, None]
    model = selection.least_squares(ml_basics.polynomial_features(x, degree=4), y)
    torch.testing.assert_close(model.weight.detach()[0], ml_basics.fit_polynomial(x, y[:, 0], degree=4))
    assert selection.model_mse(model, ml_basics.polynomial_features(x, degree=4), y) == pytest.approx(
        ml_basics.polynomial_mse(model.weight.detach()[0], x, y[:, 0]))


def test_mse_refuses_flat_labels():
    model = selection.least_squares(torch.eye(3), torch.ones(3, 1))
    with pytest.raises(ValueError, match=r"\(3, 1\) but labels \(3,\)"):
        selection.model_mse(model, torch.eye(3), torch.ones(3))


def test_cross_validate_validates_each_example_once_and_trains_on_the_rest():
    n, k = 23, 5
    X = torch.arange(float(n))[:, None]  # each row names its example
    y = torch.zeros(n, 1)
    trained_on = []

    def fit(X_part, y_part):
        trained_on.append(X_part[:, 0].long())
        return selection.least_squares(torch.ones(1, 1), torch.zeros(1, 1))  # predicts 0 from any 1 input

    splits = data.k_fold_splits(n, k=k, generator=torch.Generator().manual_seed(3))
    cv = selection.cross_validate(fit, X, y, splits=splits)
    counts = torch.bincount(torch.cat(trained_on), minlength=n)
    assert torch.equal(counts, torch.full((n,), k - 1))  # trained on by all folds but its own
    for (_, held_out), seen in zip(splits, trained_on):
        assert not set(held_out.tolist()) & set(seen.tolist())
    assert cv.val_losses.shape == (k,) and cv.loss == 0.0


def test_cross_validation_loss_weights_folds_by_size():
    cv = selection.CrossValidation(models=[], val_losses=torch.tensor([1.0, 4.0], dtype=torch.float64),
                                   fold_sizes=torch.tensor([3.0, 1.0], dtype=torch.float64))
    assert cv.loss == pytest.approx((3 * 1.0 + 1 * 4.0) / 4)


def test_ensemble_of_identical_models_equals_one_model():
    torch.manual_seed(0)
    net = nn.Linear(4, 3)
    copies = [nn.Linear(4, 3) for _ in range(5)]
    X = torch.randn(8, 4)
    assert not torch.allclose(copies[0](X), net(X))  # they differ before the copy
    for c in copies:
        c.load_state_dict(net.state_dict())
    torch.testing.assert_close(selection.Ensemble(copies)(X), net(X))
    votes = selection.Ensemble(copies, vote=True)(X)
    assert torch.equal(votes.argmax(1), net(X).argmax(1)) and torch.all(votes.sum(1) == 5)


def test_ensemble_averages_and_votes():
    def constant(row):  # a model that outputs the same row for every input
        m = nn.Linear(1, len(row), bias=True)
        with torch.no_grad():
            m.weight.zero_()
            m.bias.copy_(torch.tensor(row))
        return m

    members = [constant([1.0, 0.0, 0.0]), constant([0.0, 2.0, 0.0]), constant([0.0, 3.0, 0.0]),
               constant([0.0, 0.0, 9.0])]
    X = torch.zeros(2, 1)
    torch.testing.assert_close(selection.Ensemble(members)(X)[0], torch.tensor([0.25, 1.25, 2.25]))
    votes = selection.Ensemble(members, vote=True)(X)
    assert votes[0].tolist() == [1.0, 2.0, 1.0]  # class 1 wins 2 of 4 votes; the mean would pick class 2
    tie = selection.Ensemble(members[2:], vote=True)(X)
    assert tie.argmax(1).tolist() == [1, 1]  # a tie goes to the smaller class index
    with pytest.raises(ValueError, match="at least one"):
        selection.Ensemble([])


def test_final_models_pick_the_best_fold_average_and_retrain():
    g = torch.Generator().manual_seed(0)
    x, y = selection.polynomial_data(40, generator=g)
    X = selection.factorial_features(x, degree=3).double()
    splits = data.k_fold_splits(40, k=5, generator=g)
    cv = selection.cross_validate(selection.least_squares, X, y, splits=splits)
    finals = selection.final_models(cv, selection.least_squares, X, y)
    assert finals["best_fold"] is cv.models[int(cv.val_losses.argmin())]
    mean_weight = torch.stack([m.weight for m in cv.models]).mean(0)
    torch.testing.assert_close(finals["ensemble"](X), X @ mean_weight.T.detach())  # linear models average
    torch.testing.assert_close(finals["retrain"].weight, selection.least_squares(X, y).weight)
    assert selection.model_mse(finals["retrain"], X, y) <= min(selection.model_mse(m, X, y) for m in cv.models)


def test_imbalanced_blobs_have_the_requested_minority_share():
    X, y = selection.imbalanced_blobs(20000, minority_fraction=0.05, generator=torch.Generator().manual_seed(0))
    assert X.shape == (20000, 2) and y.shape == (20000,)
    assert abs(y.float().mean().item() - 0.05) < 0.005
    assert X[y == 1, 0].mean() - X[y == 0, 0].mean() > 2
    with pytest.raises(ValueError, match="minority_fraction"):
        selection.imbalanced_blobs(10, minority_fraction=1.0)


def test_balanced_split_has_equal_class_counts_in_the_test_part():
    y = torch.tensor([0] * 50 + [1] * 8 + [2] * 20)
    train_idx, test_idx = selection.balanced_split(y, per_class=5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(torch.bincount(y[test_idx]), torch.tensor([5, 5, 5]))
    assert torch.equal(torch.cat([train_idx, test_idx]).sort().values, torch.arange(len(y)))
    assert torch.equal(torch.bincount(y[train_idx]), torch.tensor([45, 3, 15]))
    with pytest.raises(ValueError, match="per_class"):
        selection.balanced_split(y, per_class=9)
    _, all_rare = selection.balanced_split(y, per_class=8)
    assert torch.equal(torch.bincount(y[all_rare]), torch.tensor([8, 8, 8]))


def test_balanced_accuracy_matches_scikit_learn_and_sees_through_the_majority_rule():
    from sklearn.metrics import balanced_accuracy_score

    g = torch.Generator().manual_seed(0)
    y = (torch.rand(200, generator=g) < 0.2).long() + (torch.rand(200, generator=g) < 0.1).long()  # 3 classes
    y_hat = torch.randn(200, 3, generator=g)
    expected = balanced_accuracy_score(y.numpy(), y_hat.argmax(1).numpy())
    assert selection.balanced_accuracy(y_hat, y).item() == pytest.approx(expected)
    majority = torch.tensor([[1.0, 0.0]]).expand(100, 2)
    labels = torch.tensor([0] * 95 + [1] * 5)
    assert train.accuracy(majority, labels).item() == pytest.approx(0.95)
    assert selection.balanced_accuracy(majority, labels).item() == pytest.approx(0.5)
    with pytest.raises(ValueError, match="balanced_accuracy expects"):
        selection.balanced_accuracy(torch.zeros(3), labels[:3])
