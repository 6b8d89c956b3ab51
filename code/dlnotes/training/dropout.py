"""Dropout: the function and layer from scratch, sub-networks sampled from a trained net, and
independent regression nets trained side by side to test where dropout helps."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from dlnotes.basics.ml_basics import ParallelMLP


def _check_p(p: float | Tensor) -> None:
    if not bool(((torch.as_tensor(p) >= 0) & (torch.as_tensor(p) <= 1)).all()):
        raise ValueError(f"dropout probability p must lie in [0, 1], got {p}")


def dropout_scratch(X: Tensor, *, p: float | Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Zero each entry of ``X`` with probability ``p``; scale the survivors by 1 / (1 - p).

    The scaling ("inverted dropout") keeps the expectation: E[h'] = (1 - p) · h / (1 - p) = h,
    so the layer needs no change at test time, when every unit is kept. ``p`` is a number, or
    a tensor that broadcasts against ``X`` (e.g. one probability per model, shape (M, 1, 1)).
    """
    _check_p(p)
    if not X.is_floating_point():  # an integer mask would round 1 / (1 - p) and keep every unit
        raise TypeError(f"dropout needs floating-point activations, got {X.dtype}")
    p = torch.as_tensor(p, dtype=X.dtype, device=X.device)
    where = generator.device if generator is not None else X.device  # a generator draws on its own device
    keep = torch.rand(X.shape, generator=generator, device=where).to(X.device) >= p  # True with prob. 1 - p
    scale = torch.where(p < 1, 1 / (1 - p), 0.0)  # p = 1 drops every unit: no division by zero
    return keep * X * scale


class DropoutScratch(nn.Module):
    """``dropout_scratch`` in training mode, the identity in eval mode (like ``nn.Dropout``).

    An optional ``generator`` gives this layer its own random stream, independent of the
    global seed that also drives initialisation and shuffling.
    """

    def __init__(self, p: float = 0.5, *, generator: torch.Generator | None = None):
        super().__init__()
        _check_p(p)
        self.p, self.generator = p, generator

    def forward(self, X: Tensor) -> Tensor:
        if not self.training:
            return X
        return dropout_scratch(X, p=self.p, generator=self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def dropout_mlp(*, num_inputs: int, num_hiddens: int, num_outputs: int, dropout: tuple[float, float] = (0.5, 0.5),
                scratch: bool = False) -> nn.Sequential:
    """Two hidden ReLU layers, each followed by dropout (d2l's model): flatten → 784 → h → h → 10.

    ``dropout`` holds the probability after the first and after the second hidden layer;
    ``scratch=True`` uses ``DropoutScratch`` instead of ``nn.Dropout``.
    """
    for p in dropout:
        _check_p(p)
    layer = DropoutScratch if scratch else nn.Dropout
    return nn.Sequential(
        nn.Flatten(),  # (B, 1, 28, 28) -> (B, 784)
        nn.Linear(num_inputs, num_hiddens), nn.ReLU(), layer(dropout[0]),
        nn.Linear(num_hiddens, num_hiddens), nn.ReLU(), layer(dropout[1]),
        nn.Linear(num_hiddens, num_outputs),
    )


@torch.no_grad()
def subnetwork_outputs(model: nn.Module, X: Tensor, *, num_samples: int, softmax: bool = False) -> Tensor:
    """Outputs of ``num_samples`` random sub-networks on the same ``X``: shape (S, *model(X).shape).

    Each forward pass in training mode draws fresh masks, i.e. one weight-sharing sub-network.
    ``softmax=True`` turns logits into probabilities (average those, not logits, for an ensemble).
    The model's mode is restored afterwards.
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be at least 1, got {num_samples}")
    was_training = model.training
    model.train()
    try:
        outs = [model(X) for _ in range(num_samples)]
    finally:
        model.train(was_training)
    out = torch.stack(outs)  # (S, ...)
    return out.softmax(dim=-1) if softmax else out


def noisy_sine(*, num_examples: int, noise: float,
               generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """x uniform in [-2, 2], y = sin(3x) + Gaussian noise: x (n, 1), y (n,)."""
    x = 4 * torch.rand(num_examples, 1, generator=generator) - 2  # (n, 1)
    y = torch.sin(3 * x[:, 0]) + noise * torch.randn(num_examples, generator=generator)  # (n,)
    return x, y


class ParallelDropoutMLP(ParallelMLP):
    """``num_models`` independent regression MLPs (own initialisation, own masks) in one module.

    :class:`dlnotes.basics.ml_basics.ParallelMLP` with dropout after each hidden ReLU: the
    per-model losses are summed, so each model receives exactly its own gradient. ``dropout[i]``
    is the probability after hidden layer ``i``: one number for all models, or one per model (so
    several dropout settings train side by side). Input (N, d) shared, or (M, N, d) one data set
    per model; output (M, N).
    """

    def __init__(self, widths: Sequence[int], *, num_models: int, dropout: Sequence[float | Sequence[float]],
                 generator: torch.Generator | None = None):
        if len(widths) < 2 or widths[-1] != 1:
            raise ValueError(f"widths run from the input size to one output, e.g. (1, 64, 64, 1); "
                             f"got {tuple(widths)}")
        if len(dropout) != len(widths) - 2:
            raise ValueError(f"need one dropout probability per hidden layer ({len(widths) - 2}), "
                             f"got {len(dropout)}")
        probs = []
        for p in dropout:
            p = torch.as_tensor(p, dtype=torch.float32).expand(num_models).clone()  # (M,)
            _check_p(p)
            probs.append(p.reshape(num_models, 1, 1))  # (M, 1, 1): broadcasts over (M, N, h)
        super().__init__(widths, num_models=num_models)
        self.probs, self.generator = probs, generator

    def after_hidden(self, h: Tensor, *, layer: int) -> Tensor:  # (M, N, h) -> (M, N, h)
        if not self.training:
            return h
        # masks are drawn per entry, so they differ between models
        return dropout_scratch(h, p=self.probs[layer].to(h.device), generator=self.generator)


def parallel_mse(y_hat: Tensor, y: Tensor) -> Tensor:
    """Sum over models of each model's mean squared error: y_hat (M, N), y (N,) or (M, N) -> scalar."""
    if y_hat.ndim != 2 or y.shape not in (y_hat.shape, y_hat.shape[1:]):
        raise ValueError(f"expected y_hat (M, N) and y (N,) or (M, N), got {tuple(y_hat.shape)} "
                         f"and {tuple(y.shape)}")
    return ((y_hat - y) ** 2).mean(dim=1).sum()
