"""dlnotes.sequences.series: lag features, linear autoregression, k-step-ahead forecasts."""

from __future__ import annotations

import pytest
import torch

from dlnotes.sequences import series


def ar2(n: int, *, noise: float, seed: int = 0) -> torch.Tensor:
    """x_t = 1.5 x_{t-1} - 0.75 x_{t-2} + noise: a damped oscillation (roots of modulus 0.87)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, dtype=torch.float64)
    x[0], x[1] = 1.0, 0.5
    eps = noise * torch.randn(n, generator=g, dtype=torch.float64)
    for t in range(2, n):
        x[t] = 1.5 * x[t - 1] - 0.75 * x[t - 2] + eps[t]
    return x


def test_lag_features_are_the_windows_and_the_value_after_each():
    x = torch.arange(10.0)
    features, labels = series.lag_features(x, tau=3)
    assert features.shape == (7, 3) and labels.shape == (7,)
    for t in range(7):
        assert features[t].tolist() == x[t:t + 3].tolist() and labels[t] == x[t + 3]


@pytest.mark.parametrize("tau", [0, 10])
def test_lag_features_reject_a_window_that_does_not_fit(tau):
    with pytest.raises(ValueError, match="tau"):
        series.lag_features(torch.arange(10.0), tau=tau)


def test_lag_features_need_a_one_dimensional_series():
    with pytest.raises(ValueError, match=r"\(T,\)"):
        series.lag_features(torch.zeros(5, 2), tau=2)


def test_least_squares_recovers_the_coefficients_of_an_ar2_process():
    x = ar2(4000, noise=0.1)
    predict = series.fit_linear_ar(*series.lag_features(x, tau=2))
    # the predictor is linear: reading it on unit windows gives the weights (oldest value first)
    bias = predict(torch.zeros(1, 2, dtype=x.dtype))[0]
    weights = predict(torch.eye(2, dtype=x.dtype)) - bias
    assert torch.allclose(weights, torch.tensor([-0.75, 1.5], dtype=x.dtype), atol=0.03)
    assert abs(bias) < 0.01


def test_recursive_forecasts_of_a_noise_free_recurrence_are_exact_at_every_horizon():
    x = ar2(200, noise=0.0)
    predict = series.fit_linear_ar(*series.lag_features(x[:100], tau=2))
    starts = torch.arange(100, 180)
    forecasts = series.k_step_forecasts(predict, x, tau=2, starts=starts, max_k=20)
    truth = series.targets(x, starts=starts, max_k=20)
    assert forecasts.shape == truth.shape == (80, 20)
    assert series.rmse_by_horizon(forecasts, truth).max() < 1e-9


def test_the_first_step_sees_the_true_window_and_errors_grow_with_the_horizon_on_noisy_data():
    x = ar2(3000, noise=0.5, seed=1)
    predict = series.fit_linear_ar(*series.lag_features(x[:2000], tau=2))
    starts = torch.arange(2000, 2990)
    forecasts = series.k_step_forecasts(predict, x, tau=2, starts=starts, max_k=10)
    windows = torch.stack([x[t - 2:t] for t in starts.tolist()])
    assert torch.allclose(forecasts[:, 0], predict(windows))
    error = series.rmse_by_horizon(forecasts, series.targets(x, starts=starts, max_k=10))
    assert error[0] == pytest.approx(0.5, rel=0.1)  # one step ahead: only the new noise is unknown
    assert error[4] > 1.5 * error[0]  # a few steps ahead: the unknown noise has piled up


def test_direct_forecasts_match_recursive_ones_one_step_ahead_and_are_exact_without_noise():
    x = ar2(300, noise=0.2, seed=2)
    starts = torch.arange(200, 290)
    recursive = series.k_step_forecasts(series.fit_linear_ar(*series.lag_features(x[:200], tau=3)), x,
                                        tau=3, starts=starts, max_k=5)
    direct = series.direct_forecasts(x, tau=3, train_end=200, starts=starts, max_k=5)
    assert torch.allclose(direct[:, 0], recursive[:, 0], atol=1e-10)
    clean = ar2(300, noise=0.0)
    exact = series.direct_forecasts(clean, tau=2, train_end=200, starts=starts, max_k=8)
    assert torch.allclose(exact, series.targets(clean, starts=starts, max_k=8), atol=1e-8)


def test_forecast_starts_outside_the_series_are_an_error():
    x = torch.arange(20.0)
    with pytest.raises(ValueError, match="starts"):
        series.k_step_forecasts(lambda w: w[:, -1], x, tau=3, starts=torch.tensor([2]), max_k=1)
    with pytest.raises(ValueError, match="starts"):
        series.k_step_forecasts(lambda w: w[:, -1], x, tau=3, starts=torch.tensor([18]), max_k=3)
    with pytest.raises(ValueError, match="max_k"):
        series.k_step_forecasts(lambda w: w[:, -1], x, tau=3, starts=torch.tensor([5]), max_k=0)


def test_rmse_needs_forecasts_and_truth_of_one_shape():
    with pytest.raises(ValueError, match="shape"):
        series.rmse_by_horizon(torch.zeros(3, 2), torch.zeros(3, 3))


def test_the_sunspot_and_co2_series_load_without_a_download():
    years, spots = series.load_series("sunspots")
    assert len(spots) == 309 and years[0] == 1700 and years[-1] == 2008 and spots.min() >= 0
    time, co2 = series.load_series("co2")
    assert torch.isfinite(co2).all() and 310 < co2[0] < 320 and co2[-1] > 365
    assert torch.allclose(time[1:] - time[:-1], torch.full((len(time) - 1,), 1 / 12), atol=1e-4)
    with pytest.raises(ValueError, match="unknown series"):
        series.load_series("stocks")
