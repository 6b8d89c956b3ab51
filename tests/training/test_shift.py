"""Distribution shift: density ratios, weighted logistic regression, prior estimation under label shift."""

import math

import pytest
import torch

from dlnotes.training import shift


def test_normal_density_integrates_to_one_and_matches_torch():
    x = torch.linspace(-10, 12, 20001, dtype=torch.float64)
    p = shift.normal_density(x, mean=1.0, std=2.0)
    assert torch.trapezoid(p, x).item() == pytest.approx(1.0, abs=1e-6)
    reference = torch.distributions.Normal(1.0, 2.0).log_prob(x).exp()
    torch.testing.assert_close(p, reference)


def test_polynomial_features_and_bad_degree():
    x = torch.tensor([2.0, -1.0])
    torch.testing.assert_close(shift.polynomial_features(x, degree=3), torch.tensor([[2.0, 4.0, 8.0], [-1.0, 1.0, -1.0]]))
    with pytest.raises(ValueError, match="degree must be at least 1"):
        shift.polynomial_features(x, degree=0)


def test_weighted_logistic_regression_equals_duplicating_examples():
    """Integer weights count an example that many times: the same optimum as repeating it."""
    g = torch.Generator().manual_seed(0)
    X = torch.randn(40, 2, generator=g, dtype=torch.float64)
    y = (X[:, 0] + 0.5 * torch.randn(40, generator=g, dtype=torch.float64) > 0).double()
    w = torch.randint(1, 4, (40,), generator=g).double()
    weighted = shift.fit_logistic(X, y, weights=w, l2=0.0)
    repeated = shift.fit_logistic(X.repeat_interleave(w.long(), dim=0), y.repeat_interleave(w.long()), l2=0.0)
    torch.testing.assert_close(weighted.weight, repeated.weight, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="non-negative"):
        shift.fit_logistic(X, y, weights=-w)


def test_domain_classifier_recovers_the_density_ratio_of_two_gaussians():
    g = torch.Generator().manual_seed(1)
    source = torch.randn(4000, generator=g, dtype=torch.float64)
    target = 1.0 + 0.5 * torch.randn(4000, generator=g, dtype=torch.float64)
    _, beta = shift.importance_weights(source, target)
    true = shift.normal_density(source, mean=1.0, std=0.5) / shift.normal_density(source, mean=0.0, std=1.0)
    inside = (source > -0.5) & (source < 2.0)  # where both domains have data
    assert torch.corrcoef(torch.stack([beta[inside], true[inside]]))[0, 1] > 0.99
    assert beta.mean().item() == pytest.approx(1.0, abs=0.1)  # E_p[q/p] = 1


def test_importance_weighting_repairs_a_misspecified_model_under_covariate_shift():
    g = torch.Generator().manual_seed(0)
    xs, ys = shift.sample_covariate_domain(2000, mean=0.0, std=1.0, generator=g)
    xt, yt = shift.sample_covariate_domain(2000, mean=1.0, std=0.5, generator=g)
    _, beta = shift.importance_weights(xs, xt)
    line = lambda x: shift.polynomial_features(x, degree=1)  # noqa: E731
    plain = shift.binary_accuracy(shift.fit_logistic(line(xs), ys), line(xt), yt)
    weighted = shift.binary_accuracy(shift.fit_logistic(line(xs), ys, weights=beta), line(xt), yt)
    assert plain < 0.6 < 0.8 < weighted


def test_prior_estimate_is_exact_for_a_perfect_classifier():
    class Oracle(torch.nn.Module):  # predicts the true class from a one-hot input
        def forward(self, X):
            return X

    eye = torch.eye(3, dtype=torch.float64)
    y_val = torch.tensor([0, 1, 2] * 10)
    y_t = torch.tensor([0] * 2 + [1] * 3 + [2] * 5)
    q = shift.estimate_target_priors(Oracle(), eye[y_val], y_val, eye[y_t], num_classes=3)
    torch.testing.assert_close(q, torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64))


def test_label_shift_correction_estimates_priors_and_raises_accuracy():
    means = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0]], dtype=torch.float64)
    target = torch.tensor([0.1, 0.2, 0.7], dtype=torch.float64)
    r = shift.label_shift_experiment(means=means, std=1.0, source_priors=torch.full((3,), 1 / 3, dtype=torch.float64),
                                     target_priors=target, num_train=2000, num_val=2000, num_target=2000, seed=0)
    assert (r.estimated_priors - target).abs().max() < 0.03
    assert r.accuracy_after > r.accuracy_before + 0.03
    assert abs(r.accuracy_after - r.accuracy_oracle) < 0.01
    assert math.isclose(r.estimated_priors.sum().item(), 1.0)
