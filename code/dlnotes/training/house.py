"""A complete project: Kaggle house prices, from the CSV files to a submission.

The five steps of the workflow, one group of functions each: get the data (``load_kaggle_house``),
preprocess (``fit_preprocessor`` / ``preprocess_frames``), design the model (``house_model``, ``log_rmse``),
validate and tune (``k_fold`` over :func:`dlnotes.data.k_fold_splits`), predict and submit (``fit_and_submit``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from dlnotes import data, download, train

LABEL, ID = "SalePrice", "Id"


# --- 1. Get the data ---------------------------------------------------------------------------


def load_kaggle_house() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The competition's training frame (Id, 79 features, SalePrice) and test frame (no SalePrice)."""
    train_frame = pd.read_csv(download.fetch("kaggle-house-train"))
    test_frame = pd.read_csv(download.fetch("kaggle-house-test"))
    return train_frame, test_frame


# --- 2. Preprocess -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Preprocessor:
    """What preprocessing learned from one frame of features; ``transform`` applies it to any frame."""

    numeric: tuple[str, ...]  # standardised with the statistics below
    mean: dict[str, float]
    std: dict[str, float]
    categories: dict[str, tuple[str, ...]]  # one-hot vocabulary of each non-numeric column

    @property
    def columns(self) -> tuple[str, ...]:
        """Names of the output columns, in order: numeric ones, then ``<column>_<value>`` and ``<column>_nan``."""
        one_hot = [f"{col}_{value}" for col, values in self.categories.items() for value in (*values, "nan")]
        return (*self.numeric, *one_hot)

    def transform(self, features: pd.DataFrame) -> Tensor:
        """Standardise, set missing numbers to 0 (the mean), one-hot encode; return (N, D) float32.

        A category this preprocessor never saw counts as missing, so each categorical column
        still contributes exactly one 1 per row, and every frame gets the same columns.
        """
        absent = [c for c in (*self.numeric, *self.categories) if c not in features.columns]
        if absent:
            raise ValueError(f"the frame lacks columns the preprocessor was fitted on: {absent}")
        numbers = features[list(self.numeric)].astype("float64")
        numbers = ((numbers - pd.Series(self.mean)) / pd.Series(self.std)).fillna(0.0)  # 0 = the mean
        blocks = [numbers]
        for col, values in self.categories.items():
            text = features[col].astype("string")
            known = pd.Categorical(text.where(text.isin(values)), categories=values)  # unseen -> missing
            blocks.append(pd.get_dummies(pd.Series(known, index=features.index), prefix=col, dummy_na=True))
        table = pd.concat(blocks, axis=1)
        return torch.tensor(table.to_numpy(dtype=np.float32))  # (N, D); get_dummies gives bools


def fit_preprocessor(features: pd.DataFrame) -> Preprocessor:
    """Learn mean and standard deviation of each numeric column and the values of each other column."""
    if len(features) < 2:
        raise ValueError(f"need at least 2 rows to estimate a standard deviation, got {len(features)}")
    numeric = tuple(c for c in features.columns if pd.api.types.is_numeric_dtype(features[c]))
    numbers = features[list(numeric)].astype("float64")
    mean = numbers.mean().fillna(0.0)  # pandas skips NaN; an all-missing column gets mean 0
    std = numbers.std().fillna(1.0)
    std[std == 0] = 1.0  # a constant column would divide by zero; it becomes all zeros instead
    categories = {c: tuple(sorted(features[c].dropna().astype(str).unique()))
                  for c in features.columns if c not in numeric}
    return Preprocessor(numeric, mean.to_dict(), std.to_dict(), categories)


@dataclass(frozen=True)
class HouseData:
    """The competition as tensors, ready for training."""

    X_train: Tensor  # (n, D) float32
    y_train: Tensor  # (n, 1) float32 sale prices
    X_test: Tensor  # (m, D) float32
    test_ids: np.ndarray  # (m,) the Id column, for the submission
    preprocessor: Preprocessor

    def __repr__(self) -> str:
        return (f"HouseData(train {tuple(self.X_train.shape)}, test {tuple(self.X_test.shape)}, "
                f"{len(self.preprocessor.numeric)} numeric + "
                f"{len(self.preprocessor.categories)} categorical columns)")


def preprocess_frames(train_frame: pd.DataFrame, test_frame: pd.DataFrame, *,
                      stats_from: str = "train") -> HouseData:
    """Split off Id and SalePrice, fit the preprocessor, transform both frames.

    ``stats_from="train"`` learns the statistics and categories from the training features only
    (what a deployed model can do); ``"all"`` from training and test features together (d2l's way).
    """
    for name, frame, needed in (("train", train_frame, (ID, LABEL)), ("test", test_frame, (ID,))):
        if missing := [c for c in needed if c not in frame.columns]:
            raise ValueError(f"the {name} frame lacks the column(s) {missing}")
    if LABEL in test_frame.columns:
        raise ValueError(f"the test frame has a {LABEL} column: pass the unlabelled test set")
    prices = train_frame[LABEL].to_numpy(dtype=np.float64)
    if not (np.isfinite(prices).all() and (prices > 0).all()):
        raise ValueError(f"every {LABEL} must be a positive number (the metric takes its log)")
    train_features = train_frame.drop(columns=[ID, LABEL])
    test_features = test_frame.drop(columns=[ID])
    if stats_from == "train":
        fitted_on = train_features
    elif stats_from == "all":
        fitted_on = pd.concat([train_features, test_features])
    else:
        raise ValueError(f"stats_from must be 'train' or 'all', got {stats_from!r}")
    pre = fit_preprocessor(fitted_on)
    y = torch.tensor(prices, dtype=torch.float32).reshape(-1, 1)  # (n, 1): the model's output shape
    return HouseData(pre.transform(train_features), y, pre.transform(test_features),
                     test_frame[ID].to_numpy(), pre)


# --- 3. The model and the metric ---------------------------------------------------------------


def log_rmse(y_hat: Tensor, y: Tensor) -> Tensor:
    """sqrt(mean((log max(y_hat, 1) - log y)²)): the RMSE of log prices, so of relative errors.

    Predictions below 1 are clamped to 1 so that a negative guess costs a large finite error
    instead of a NaN; the targets must be positive.
    """
    if y_hat.shape != y.shape:
        raise ValueError(f"y_hat has shape {tuple(y_hat.shape)} but y has {tuple(y.shape)}")
    if not bool((y > 0).all()):
        raise ValueError("log_rmse needs positive targets y; log of a non-positive price is undefined")
    return torch.sqrt(((y_hat.clamp(min=1.0).log() - y.log()) ** 2).mean())


def log_mse(y_hat: Tensor, y: Tensor) -> Tensor:
    """mean((log y_hat - log y)²): the squared loss on log prices (``y_hat`` must be positive)."""
    if y_hat.shape != y.shape:
        raise ValueError(f"y_hat has shape {tuple(y_hat.shape)} but y has {tuple(y.shape)}")
    return ((y_hat.log() - y.log()) ** 2).mean()


class ExpOutput(nn.Module):
    """exp(z): the layers before it predict log prices, the model still outputs prices."""

    def forward(self, z: Tensor) -> Tensor:
        return z.exp()


def house_model(num_inputs: int, *, num_hiddens: int = 0, log_target: bool = False) -> nn.Sequential:
    """A linear model (``num_hiddens=0``) or an MLP with one hidden ReLU layer; output (N, 1) prices.

    With ``log_target`` the last layer's output is read as a log price and exponentiated.
    """
    if num_hiddens < 0:
        raise ValueError(f"num_hiddens must be 0 (linear) or positive, got {num_hiddens}")
    if num_hiddens == 0:
        layers: list[nn.Module] = [nn.Linear(num_inputs, 1)]  # (N, D) -> (N, 1)
    else:
        layers = [nn.Linear(num_inputs, num_hiddens), nn.ReLU(), nn.Linear(num_hiddens, 1)]
    if log_target:
        layers.append(ExpOutput())
    return nn.Sequential(*layers)


def train_model(X: Tensor, y: Tensor, *, num_hiddens: int, log_target: bool, lr: float,
                weight_decay: float, num_epochs: int, batch_size: int,
                valid: tuple[Tensor, Tensor] | None = None, generator: torch.Generator | None = None,
                progress: bool = True) -> tuple[nn.Sequential, train.History]:
    """Adam on the squared loss, of prices or (``log_target``) of log prices; log-RMSE per epoch."""
    model = house_model(X.shape[1], num_hiddens=num_hiddens, log_target=log_target)
    loss_fn = log_mse if log_target else nn.MSELoss()
    loader = data.TensorLoader(X, y, batch_size=batch_size, shuffle=True, generator=generator)
    # the whole validation fold as one batch, so its per-epoch log-RMSE is exact, not a batch mean
    valid_loader = data.TensorLoader(*valid, batch_size=len(valid[0])) if valid is not None else None
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    history = train.fit(model=model, train_loader=loader, test_loader=valid_loader, loss_fn=loss_fn,
                        optimizer=optimizer, num_epochs=num_epochs, metric=log_rmse, progress=progress)
    return model, history


# --- 4. Validate and tune ----------------------------------------------------------------------


@dataclass
class KFoldResult:
    """Final log-RMSE of each fold's model on its training part and on its held-out fold."""

    train_log_rmse: list[float] = field(default_factory=list)
    valid_log_rmse: list[float] = field(default_factory=list)
    histories: list[train.History] = field(default_factory=list)

    @property
    def mean_train(self) -> float:
        return float(np.mean(self.train_log_rmse))

    @property
    def mean_valid(self) -> float:
        return float(np.mean(self.valid_log_rmse))

    def curve(self, key: str) -> np.ndarray:
        """A per-epoch quantity (e.g. ``"test_log_rmse"``) averaged over the folds: (num_epochs,)."""
        return np.mean([h[key] for h in self.histories], axis=0)


def k_fold(X: Tensor, y: Tensor, *, k: int, generator: torch.Generator | None = None,
           **settings) -> KFoldResult:
    """Train one model per fold with ``train_model(**settings)``; score it on the rows it never saw."""
    result = KFoldResult()
    for train_idx, valid_idx in data.k_fold_splits(len(X), k=k, generator=generator):
        model, history = train_model(X[train_idx], y[train_idx], valid=(X[valid_idx], y[valid_idx]),
                                     generator=generator, progress=False, **settings)
        with torch.no_grad():  # exact scores of the final weights, not means over batches
            result.train_log_rmse.append(log_rmse(model.eval()(X[train_idx]), y[train_idx]).item())
            result.valid_log_rmse.append(log_rmse(model(X[valid_idx]), y[valid_idx]).item())
        result.histories.append(history)
    return result


# --- 5. Predict and submit ---------------------------------------------------------------------


def fit_and_submit(house: HouseData, *, path: str | Path = "submission.csv",
                   generator: torch.Generator | None = None, progress: bool = True,
                   **settings) -> tuple[nn.Sequential, train.History, pd.DataFrame]:
    """Train on every training row, predict the test rows, write ``Id,SalePrice`` to ``path``."""
    model, history = train_model(house.X_train, house.y_train, generator=generator, progress=progress,
                                 **settings)
    with torch.no_grad():
        prices = model.eval()(house.X_test).reshape(-1)  # (m, 1) -> (m,)
    submission = pd.DataFrame({ID: house.test_ids, LABEL: prices.numpy()})
    submission.to_csv(path, index=False)
    return model, history, submission
