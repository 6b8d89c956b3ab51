"""Sequence models on a real series: lag features, autoregressive fits, k-step-ahead forecasts.

The series come with statsmodels (no download): the yearly sunspot numbers 1700-2008 and the
Mauna Loa CO2 record. Forecasts are computed for every start at once: one batched model call per
step ahead, not one call per window.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from dlnotes.training.selection import least_squares

SERIES = ("sunspots", "co2")
Predictor = Callable[[Tensor], Tensor]  # windows (N, tau) -> next values (N,)


def load_series(name: str) -> tuple[Tensor, Tensor]:
    """(time (T,), values (T,)) in float32 of a series shipped with statsmodels.

    ``sunspots``: the yearly mean sunspot number, 1700-2008. ``co2``: the Mauna Loa CO2 record in
    ppm, averaged per month from the weekly values (March 1958 to December 2001; the few missing
    months are interpolated); time is in years.
    """
    if name not in SERIES:
        raise ValueError(f"unknown series {name!r}; choose one of {SERIES}")
    import statsmodels.api as sm

    if name == "sunspots":
        frame = sm.datasets.sunspots.load_pandas().data
        time, values = frame["YEAR"].to_numpy(), frame["SUNACTIVITY"].to_numpy()
    else:
        monthly = sm.datasets.co2.load_pandas().data["co2"].resample("MS").mean().interpolate()
        time = (monthly.index.year + (monthly.index.month - 1) / 12).to_numpy()
        values = monthly.to_numpy()
    return torch.tensor(time, dtype=torch.float32), torch.tensor(values, dtype=torch.float32)


def lag_features(x: Tensor, *, tau: int) -> tuple[Tensor, Tensor]:
    """Windows of the last ``tau`` values and the value that follows each.

    x (T,) -> features (T - tau, tau), row t holding x[t : t + tau], and labels (T - tau,), x[t + tau].
    """
    if x.ndim != 1:
        raise ValueError(f"expected a series (T,), got shape {tuple(x.shape)}")
    if not 1 <= tau < len(x):
        raise ValueError(f"need 1 <= tau < len(x) = {len(x)}, got tau={tau}")
    return x.unfold(0, tau, 1)[:-1], x[tau:]


def fit_linear_ar(features: Tensor, labels: Tensor) -> Predictor:
    """Least-squares autoregression x_t ~ w . (x_{t-tau}, ..., x_{t-1}) + b; returns the predictor.

    The exact fit is model selection's ``least_squares`` (float64) on the windows plus a 1s column.
    """
    if features.ndim != 2 or labels.shape != features.shape[:1]:
        raise ValueError(f"expected features (N, tau) and labels (N,), got {tuple(features.shape)} "
                         f"and {tuple(labels.shape)}")
    linear = least_squares(_with_ones(features), labels[:, None])  # (tau + 1) weights, the last one b

    def predict(windows: Tensor) -> Tensor:  # (N, tau) -> (N,)
        with torch.no_grad():
            return linear(_with_ones(windows).double())[:, 0].to(windows.dtype)

    return predict


def _with_ones(windows: Tensor) -> Tensor:
    return torch.cat([windows, torch.ones(len(windows), 1, dtype=windows.dtype)], dim=1)  # (N, tau + 1)


def k_step_forecasts(predict: Predictor, x: Tensor, *, tau: int, starts: Tensor, max_k: int) -> Tensor:
    """Recursive forecasts: from each start t, the model sees only x[t - tau : t] and feeds its own
    predictions back in for the steps after the first.

    Returns (len(starts), max_k): column k - 1 is the k-step-ahead forecast of x[t + k - 1].
    """
    if max_k < 1:
        raise ValueError(f"max_k must be at least 1, got {max_k}")
    starts = torch.as_tensor(starts)
    if len(starts) == 0 or starts.min() < tau or starts.max() + max_k > len(x):
        raise ValueError(f"starts must lie in [tau, len(x) - max_k] = [{tau}, {len(x) - max_k}]")
    windows = x.unfold(0, tau, 1)[starts - tau]  # (N, tau): the true past of every start
    forecasts = []
    with torch.no_grad():
        for _ in range(max_k):
            step = predict(windows)  # (N,)
            forecasts.append(step)
            windows = torch.cat([windows[:, 1:], step[:, None]], dim=1)
    return torch.stack(forecasts, dim=1)


def direct_forecasts(x: Tensor, *, tau: int, train_end: int, starts: Tensor, max_k: int) -> Tensor:
    """One linear model per horizon k, fitted on x[:train_end] to map a window straight to x[t + k - 1].

    No prediction is fed back in. Returns (len(starts), max_k), like :func:`k_step_forecasts`.
    """
    starts = torch.as_tensor(starts)
    windows = x.unfold(0, tau, 1)[starts - tau]  # (N, tau)
    columns = []
    for k in range(1, max_k + 1):  # pairs (x[s : s + tau], x[s + tau + k - 1]) inside x[:train_end]
        features = x.unfold(0, tau, 1)[: train_end - tau - k + 1]
        columns.append(fit_linear_ar(features, x[tau + k - 1 : train_end])(windows))
    return torch.stack(columns, dim=1)


def targets(x: Tensor, *, starts: Tensor, max_k: int) -> Tensor:
    """The true values the forecasts aim at: (len(starts), max_k), entry (i, k - 1) = x[starts[i] + k - 1]."""
    starts = torch.as_tensor(starts)
    return x.unfold(0, max_k, 1)[starts]


def rmse_by_horizon(forecasts: Tensor, truth: Tensor) -> Tensor:
    """(N, K) forecasts and truth -> (K,): the root-mean-square error of each horizon."""
    if forecasts.shape != truth.shape:
        raise ValueError(f"forecasts {tuple(forecasts.shape)} and truth {tuple(truth.shape)} differ in shape")
    return (forecasts - truth).pow(2).mean(dim=0).sqrt()
