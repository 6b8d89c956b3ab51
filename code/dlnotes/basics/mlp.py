"""Multilayer perceptrons: the perceptron and XOR, a hidden layer by hand, an MLP from scratch."""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor, nn


def separable_data(*, num_examples: int, w: Sequence[float] | Tensor = (1.0, -2.0), b: float = 0.25,
                   margin: float = 0.1, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Points uniform in [-1, 1]², class 1 where w·x + b > 0, none closer than ``margin`` to that line.

    Returns X (n, 2) and class labels y (n,) in {0, 1}.
    """
    if margin < 0:
        raise ValueError(f"margin must be non-negative, got {margin}")
    w_true = torch.as_tensor(w, dtype=torch.float32)  # (2,)
    kept: list[Tensor] = []
    while sum(len(k) for k in kept) < num_examples:  # rejection sampling
        X = 2 * torch.rand(2 * num_examples, 2, generator=generator) - 1  # (2n, 2)
        distance = (X @ w_true + b).abs() / w_true.norm()  # (2n,): distance to the line
        kept.append(X[distance >= margin])
    X = torch.cat(kept)[:num_examples]  # (n, 2)
    return X, (X @ w_true + b > 0).long()


def xor_data(*, num_per_corner: int, noise: float = 0.1,
             generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """A noisy cloud around each corner of the unit square, labelled x₁ XOR x₂ of its corner, shuffled.

    Returns X (4m, 2) and class labels y (4m,) in {0, 1}.
    """
    corners = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])  # (4, 2)
    labels = torch.tensor([0, 1, 1, 0])
    X = corners.repeat_interleave(num_per_corner, dim=0)  # (4m, 2)
    X = X + noise * torch.randn(X.shape, generator=generator)
    order = torch.randperm(len(X), generator=generator)  # mixed, so no corner comes as one block
    return X[order], labels.repeat_interleave(num_per_corner)[order]


class Perceptron:
    """Rosenblatt's perceptron o = sign(w·x + b), for labels y in {-1, +1}.

    It has no loss to differentiate: ``fit`` applies the mistake-driven rule directly.
    """

    def __init__(self, *, num_inputs: int):
        self.w = torch.zeros(num_inputs)  # (d,)
        self.b = torch.zeros(())

    def decision(self, X: Tensor) -> Tensor:
        return X @ self.w + self.b  # (n, d) @ (d,) -> (n,)

    def predict(self, X: Tensor) -> Tensor:
        """+1 where w·x + b > 0, else -1."""
        return torch.where(self.decision(X) > 0, 1, -1)

    def fit(self, X: Tensor, y: Tensor, *, num_epochs: int) -> list[int]:
        """Visit the examples in order ``num_epochs`` times; return the number of mistakes per epoch.

        On a mistake, y_i (w·x_i + b) <= 0, update w <- w + y_i x_i and b <- b + y_i.
        """
        if X.ndim != 2 or X.shape[1] != len(self.w) or y.shape != (len(X),):
            raise ValueError(f"expected X (n, {len(self.w)}) and y (n,), got {tuple(X.shape)} and {tuple(y.shape)}")
        if not torch.isin(y, torch.tensor([-1, 1])).all():
            raise ValueError("perceptron labels must be -1 or +1; for classes c in {0, 1} pass 2 * c - 1")
        X, y = X.float(), y.float()
        mistakes = []
        for _ in range(num_epochs):
            count = 0
            for x_i, y_i in zip(X, y):
                if y_i * (x_i @ self.w + self.b) <= 0:  # a score of 0 counts as wrong for both classes
                    self.w += y_i * x_i
                    self.b += y_i
                    count += 1
            mistakes.append(count)
        return mistakes


def mistake_bound(X: Tensor, y: Tensor, *, w: Sequence[float] | Tensor, b: float) -> float:
    """Novikoff's bound (R / ρ)² on the perceptron's total number of mistakes.

    ``(w, b)`` is any separating line; ρ is its margin and R the largest norm, both measured
    on the augmented vectors (x, 1) and (w, b) / ‖(w, b)‖. A better line gives a tighter bound.
    """
    X1 = torch.cat([X, torch.ones(len(X), 1, dtype=X.dtype)], dim=1)  # (n, d + 1)
    w = torch.as_tensor(w, dtype=X.dtype).reshape(-1)  # (d,)
    wb = torch.cat([w, torch.tensor([float(b)], dtype=X.dtype)])  # (d + 1,)
    margin = (y * (X1 @ wb)).min() / wb.norm()
    if margin <= 0:
        raise ValueError("(w, b) does not separate the data, so no bound follows")
    return (X1.norm(dim=1).max() / margin).item() ** 2


def xor_net() -> nn.Sequential:
    """A 2-2-1 ReLU network with weights chosen by hand: it computes XOR exactly on {0, 1}².

    h₁ = relu(x₁ + x₂), h₂ = relu(x₁ + x₂ - 1), o = h₁ - 2 h₂.
    """
    net = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 1.0], [1.0, 1.0]]))  # (2 hidden, 2 inputs)
        net[0].bias.copy_(torch.tensor([0.0, -1.0]))
        net[2].weight.copy_(torch.tensor([[1.0, -2.0]]))  # (1 output, 2 hidden)
        net[2].bias.zero_()
    return net


def decision_grid(score: Callable[[Tensor], Tensor], *, xlim: tuple[float, float],
                  ylim: tuple[float, float], steps: int = 121) -> tuple[Tensor, Tensor, Tensor]:
    """Evaluate ``score`` (a map from points (N, 2) to N numbers) on a grid over the plane.

    Returns xx, yy, zz of shape (steps, steps), ready for ``ax.contourf(xx, yy, zz)``.
    """
    xx, yy = torch.meshgrid(torch.linspace(*xlim, steps), torch.linspace(*ylim, steps), indexing="xy")
    points = torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1)  # (steps², 2)
    with torch.no_grad():
        zz = score(points)
    if zz.numel() != len(points):
        raise ValueError(f"score must return one number per point, got shape {tuple(zz.shape)} "
                         f"for {len(points)} points")
    return xx, yy, zz.reshape(xx.shape)


def merge_linear(first: nn.Linear, second: nn.Linear) -> nn.Linear:
    """The single nn.Linear equal to ``second(first(x))``: W = W₂W₁, b = W₂b₁ + b₂."""
    if first.out_features != second.in_features:
        raise ValueError(f"cannot compose: first gives {first.out_features} features, "
                         f"second expects {second.in_features}")
    merged = nn.Linear(first.in_features, second.out_features, dtype=first.weight.dtype, device=first.weight.device)
    with torch.no_grad():
        b1 = first.bias if first.bias is not None else first.weight.new_zeros(first.out_features)
        b2 = second.bias if second.bias is not None else second.weight.new_zeros(second.out_features)
        merged.weight.copy_(second.weight @ first.weight)  # (q, h) @ (h, d) -> (q, d)
        merged.bias.copy_(second.weight @ b1 + b2)  # (q, h) @ (h,) -> (q,)
    return merged


def relu(X: Tensor) -> Tensor:
    """max(x, 0) elementwise; its derivative is 1 for x > 0 and 0 otherwise (0 at x = 0, like torch.relu)."""
    return torch.where(X > 0, X, torch.zeros_like(X))


class MLPScratch(nn.Module):
    """One hidden layer with parameters created by hand: O = relu(X W₁ + b₁) W₂ + b₂."""

    def __init__(self, *, num_inputs: int, num_hiddens: int, num_outputs: int, sigma: float = 0.01):
        super().__init__()
        self.num_inputs = num_inputs
        self.W1 = nn.Parameter(sigma * torch.randn(num_inputs, num_hiddens))  # (d, h)
        self.b1 = nn.Parameter(torch.zeros(num_hiddens))
        self.W2 = nn.Parameter(sigma * torch.randn(num_hiddens, num_outputs))  # (h, q)
        self.b2 = nn.Parameter(torch.zeros(num_outputs))

    def forward(self, X: Tensor) -> Tensor:
        X = X.reshape(len(X), -1)  # (B, 1, 28, 28) -> (B, d): the image becomes a flat vector
        if X.shape[1] != self.num_inputs:
            raise ValueError(f"each example has {X.shape[1]} numbers, but the model expects {self.num_inputs}")
        H = relu(X @ self.W1 + self.b1)  # (B, d) @ (d, h) -> (B, h): the hidden layer
        return H @ self.W2 + self.b2  # (B, h) @ (h, q) -> (B, q): logits; softmax lives in the loss
