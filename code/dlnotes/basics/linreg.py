"""Linear regression: synthetic data, a model and an optimizer written by hand, the squared loss."""

from __future__ import annotations

from typing import Iterable

import torch
from torch import Tensor, nn


def synthetic_data(*, w: Tensor, b: float, num_examples: int, noise: float = 0.01,
                   generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Draw X ~ N(0, 1) and y = Xw + b + N(0, noise²); return X (n, d) and y (n, 1)."""
    X = torch.randn(num_examples, len(w), generator=generator)  # (n, d)
    y = X @ w + b  # (n,)
    y += noise * torch.randn(y.shape, generator=generator)
    return X, y.reshape(-1, 1)  # (n, 1): a column, like the model's output


class LinearRegressionScratch(nn.Module):
    """y_hat = Xw + b, with the parameters created by hand instead of by nn.Linear."""

    def __init__(self, *, num_inputs: int, sigma: float = 0.01):
        super().__init__()
        self.w = nn.Parameter(sigma * torch.randn(num_inputs, 1))  # (d, 1)
        self.b = nn.Parameter(torch.zeros(1))

    def forward(self, X: Tensor) -> Tensor:
        return X @ self.w + self.b  # (n, d) @ (d, 1) -> (n, 1)


def squared_loss(y_hat: Tensor, y: Tensor) -> Tensor:
    """Mean of (y_hat - y)² / 2 over the batch; the shapes must agree exactly."""
    if y_hat.shape != y.shape:
        try:
            what = f"would broadcast to {tuple(torch.broadcast_shapes(y_hat.shape, y.shape))}"
        except RuntimeError:
            what = "cannot even be broadcast"
        raise ValueError(
            f"y_hat has shape {tuple(y_hat.shape)} but y has {tuple(y.shape)}: y_hat - y {what}; "
            f"give y the model's output shape, e.g. y.reshape(-1, 1)"
        )
    return ((y_hat - y) ** 2).mean() / 2


class SGDScratch:
    """Minibatch stochastic gradient descent: p <- p - lr * grad, for every parameter p."""

    def __init__(self, params: Iterable[nn.Parameter], *, lr: float):
        if not lr > 0:
            raise ValueError(f"lr must be positive, got {lr}")
        self.params, self.lr = list(params), lr

    @torch.no_grad()
    def step(self) -> None:
        for p in self.params:
            if p.grad is None:  # not used by the loss (or frozen): left alone, as torch.optim.SGD does
                continue
            p -= self.lr * p.grad  # the loss is a batch mean, so no division by batch size

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None
