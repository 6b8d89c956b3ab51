"""Model selection: polynomial data with d2l's 1/i! features, K-fold cross-validation, the three
ways to pick the final model after it, and class-balanced test sets for imbalanced data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import Tensor, nn

from dlnotes import data, train
from dlnotes.basics import ml_basics

Model = Callable[[Tensor], Tensor]  # X (N, D) -> predictions (N, out)

# --- Polynomial regression as in d2l -----------------------------------------------------------

D2L_WEIGHTS = (5.0, 1.2, -3.4, 5.6)  # y = 5 + 1.2 x - 3.4 x²/2! + 5.6 x³/3! + noise


def factorial_features(x: Tensor, *, degree: int, scaled: bool = True) -> Tensor:
    """(N,) -> (N, degree + 1): the columns x^i / i! (or x^i when ``scaled`` is False), i = 0..degree."""
    if degree < 0:
        raise ValueError(f"degree must be >= 0, got {degree}")
    X = ml_basics.polynomial_features(x, degree=degree)  # (N, D+1)
    if not scaled:
        return X
    factorials = torch.tensor([math.factorial(i) for i in range(degree + 1)], dtype=torch.float64)
    return (X.double() / factorials).to(x.dtype)  # divide in float64: 20! is not exact in float32


def polynomial_data(num_examples: int, *, weights: Sequence[float] = D2L_WEIGHTS, noise: float = 0.1,
                    generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """x ~ N(0, 1) and y = Σ_i weights[i] x^i / i! + N(0, noise²); returns x (N,) and y (N, 1)."""
    x = torch.randn(num_examples, generator=generator)  # (N,)
    w = torch.tensor(weights, dtype=torch.float32)
    y = factorial_features(x, degree=len(w) - 1) @ w  # (N,)
    y = y + noise * torch.randn(num_examples, generator=generator)
    return x, y.reshape(-1, 1)  # (N, 1): the shape of the model's output


def standardize(train_X: Tensor, *others: Tensor) -> tuple[Tensor, ...]:
    """Give every non-constant column mean 0 and std 1, using the training set's statistics only."""
    mean, std = train_X.mean(0), train_X.std(0)  # (D,)
    constant = std == 0
    mean, std = mean.masked_fill(constant, 0.0), std.masked_fill(constant, 1.0)  # keep the 1s column
    return tuple((X - mean) / std for X in (train_X, *others))


def train_regression(model: nn.Module, X: Tensor, y: Tensor, *, val: tuple[Tensor, Tensor], lr: float,
                     num_epochs: int, batch_size: int, generator: torch.Generator | None = None,
                     loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None) -> train.History:
    """Minibatch SGD on (X, y) through ``train.fit``; ``val`` is evaluated after every epoch.

    The History calls the ``val`` numbers ``test_loss``: ``fit`` evaluates whatever loader it gets.
    """
    loss_fn = loss_fn or nn.MSELoss()
    train_loader = data.TensorLoader(X, y, batch_size=batch_size, shuffle=True, generator=generator)
    val_loader = data.TensorLoader(*val, batch_size=len(val[0]))
    return train.fit(model=model, train_loader=train_loader, test_loader=val_loader, loss_fn=loss_fn,
                     optimizer=torch.optim.SGD(model.parameters(), lr=lr), num_epochs=num_epochs,
                     progress=False)


def least_squares(X: Tensor, y: Tensor) -> nn.Linear:
    """The exact minimiser of the MSE of a linear model without bias (X holds the 1s column), in float64."""
    w = torch.linalg.lstsq(X.double(), y.double(), driver="gelsd").solution  # (D, out)
    model = nn.utils.skip_init(nn.Linear, X.shape[1], y.shape[1], bias=False, dtype=torch.float64)
    with torch.no_grad():
        model.weight.copy_(w.T)  # (out, D)
    return model


def model_mse(model: Model, X: Tensor, y: Tensor) -> float:
    """Mean squared error of ``model``'s predictions on (X, y), as a float (no gradient)."""
    with torch.no_grad():
        y_hat = model(X.to(_dtype_of(model)))
    if y_hat.shape != y.shape:
        raise ValueError(f"predictions have shape {tuple(y_hat.shape)} but labels {tuple(y.shape)}")
    return ((y_hat - y.to(y_hat.dtype)) ** 2).mean().item()


def _dtype_of(model: Model) -> torch.dtype:
    if isinstance(model, nn.Module):
        return next(model.parameters(), torch.empty(0)).dtype
    return torch.get_default_dtype()


# --- K-fold cross-validation and the final model -----------------------------------------------


@dataclass
class CrossValidation:
    """The K models of one K-fold run, each trained without its fold, and their fold losses."""

    models: list[Model]
    val_losses: Tensor  # (K,): loss of model i on fold i
    fold_sizes: Tensor  # (K,)

    @property
    def loss(self) -> float:
        """The K-fold estimate: the validation loss over all examples (each validated once)."""
        return ((self.val_losses * self.fold_sizes).sum() / self.fold_sizes.sum()).item()


def cross_validate(fit: Callable[[Tensor, Tensor], Model], X: Tensor, y: Tensor, *,
                   splits: Sequence[tuple[Tensor, Tensor]],
                   loss: Callable[[Model, Tensor, Tensor], float] = model_mse) -> CrossValidation:
    """Train ``fit`` once per (train, held-out) split and score it on the rows it did not see.

    ``splits`` come from :func:`dlnotes.data.k_fold_splits`.
    """
    models, losses = [], []
    for i, (train_idx, held_out) in enumerate(splits):
        if len(train_idx) == 0 or len(held_out) == 0:
            raise ValueError(f"split {i} has {len(train_idx)} training and {len(held_out)} held-out rows")
        model = fit(X[train_idx], y[train_idx])
        models.append(model)
        losses.append(loss(model, X[held_out], y[held_out]))
    sizes = torch.tensor([len(held_out) for _, held_out in splits], dtype=torch.float64)
    return CrossValidation(models, torch.tensor(losses, dtype=torch.float64), sizes)


class Ensemble(nn.Module):
    """The K models as one: their mean prediction (regression) or their majority vote (classification).

    With ``vote=True`` each model votes for the class of its largest output; the ensemble returns
    the vote counts (N, C), so ``argmax`` (and ``train.accuracy``) reads the winner.
    Ties go to the smaller class index.
    """

    def __init__(self, models: Sequence[nn.Module], *, vote: bool = False):
        super().__init__()
        if not models:
            raise ValueError("an ensemble needs at least one model")
        self.members = nn.ModuleList(models)
        self.vote = vote

    def forward(self, X: Tensor) -> Tensor:
        outputs = torch.stack([m(X) for m in self.members])  # (K, N, C)
        if not self.vote:
            return outputs.mean(0)  # (N, C)
        choices = outputs.argmax(-1)  # (K, N)
        return nn.functional.one_hot(choices, outputs.shape[-1]).sum(0).to(outputs.dtype)  # (N, C)


def final_models(cv: CrossValidation, fit: Callable[[Tensor, Tensor], nn.Module], X: Tensor, y: Tensor, *,
                 vote: bool = False) -> dict[str, Model]:
    """The three ways to turn a K-fold run into one model to deploy.

    - ``best_fold``: the fold model with the lowest validation loss;
    - ``ensemble``: all K fold models, averaged (or voting);
    - ``retrain``: the same hyperparameters trained once more on all of (X, y).
    """
    return {
        "best_fold": cv.models[int(cv.val_losses.argmin())],
        "ensemble": Ensemble(cv.models, vote=vote),
        "retrain": fit(X, y),
    }


# --- Imbalanced classes: a balanced test set ---------------------------------------------------


def imbalanced_blobs(num_examples: int, *, minority_fraction: float, distance: float = 2.5,
                     generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Two Gaussian clouds in 2-D, unit variance, centres ``distance`` apart; class 1 is rare."""
    if not 0 < minority_fraction < 1:
        raise ValueError(f"minority_fraction must lie strictly between 0 and 1, got {minority_fraction}")
    y = (torch.rand(num_examples, generator=generator) < minority_fraction).long()  # (N,)
    X = torch.randn(num_examples, 2, generator=generator)  # (N, 2)
    X[:, 0] += distance * y  # class 1 sits to the right
    return X, y


def balanced_split(y: Tensor, *, per_class: int, generator: torch.Generator | None = None
                   ) -> tuple[Tensor, Tensor]:
    """Indices (train, test): the test part takes ``per_class`` examples of every class, train the rest."""
    classes, counts = torch.unique(y, return_counts=True)
    if not 1 <= per_class <= counts.min():
        raise ValueError(f"per_class must be between 1 and the smallest class size "
                         f"({counts.min().item()}), got {per_class}")
    test = []
    for c in classes:
        idx = torch.nonzero(y == c).flatten()  # (n_c,)
        test.append(idx[torch.randperm(len(idx), generator=generator)[:per_class]])
    test = torch.cat(test).sort().values
    keep = torch.ones(len(y), dtype=torch.bool)
    keep[test] = False
    return torch.nonzero(keep).flatten(), test


def balanced_accuracy(y_hat: Tensor, y: Tensor) -> Tensor:
    """The mean over classes of the recall (the accuracy within each class).

    A constant guess scores 0.5 on two classes, whatever their sizes.
    """
    if y_hat.ndim != 2 or y.ndim != 1 or len(y_hat) != len(y):
        raise ValueError(f"balanced_accuracy expects y_hat (B, K) and y (B,), got {tuple(y_hat.shape)} "
                         f"and {tuple(y.shape)}")
    correct = (y_hat.argmax(dim=1) == y).float()  # (B,)
    classes = torch.unique(y)
    return torch.stack([correct[y == c].mean() for c in classes]).mean()
