"""Batch normalisation: the function and layer from scratch (matching PyTorch's conventions),
layer normalisation for comparison, the batch-norm layer a LeNet takes (``lenet.lenet(norm=...)``),
and the spread of batch statistics at small batch sizes."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn


def _stat_dims(X: Tensor) -> tuple[int, ...]:
    """Axes the batch statistics average over: the batch, plus height and width for images."""
    if X.ndim == 2:
        return (0,)  # (B, C): one mean per feature, over the examples
    if X.ndim == 4:
        return (0, 2, 3)  # (B, C, H, W): one mean per channel, over examples and positions
    raise ValueError(f"batch norm expects (B, C) or (B, C, H, W) input, got {X.ndim} dims {tuple(X.shape)}")


def batch_norm_scratch(X: Tensor, *, gamma: Tensor, beta: Tensor, running_mean: Tensor, running_var: Tensor,
                       eps: float = 1e-5, momentum: float = 0.1, training: bool) -> Tensor:
    """Normalise each feature (channel) of ``X``, then scale by ``gamma`` and shift by ``beta``.

    Training: use the batch's mean and *biased* variance, and update the running estimates in
    place as PyTorch does, ``running = (1 - momentum) * running + momentum * batch``, with the
    *unbiased* variance (n / (n - 1) times the biased one, n values per channel).
    Eval: use the running estimates, so each example's output no longer depends on its batch.
    """
    dims = _stat_dims(X)
    C = X.shape[1]
    for name, t in (("gamma", gamma), ("beta", beta), ("running_mean", running_mean), ("running_var", running_var)):
        if t.shape != (C,):
            raise ValueError(f"X has {C} channels but {name} has shape {tuple(t.shape)}, expected ({C},)")
    if not 0 <= momentum <= 1:
        raise ValueError(f"momentum must lie in [0, 1], got {momentum}")
    if not eps > 0:  # eps keeps the division finite for a channel with zero variance
        raise ValueError(f"eps must be positive, got {eps}")
    shape = (1, C) if X.ndim == 2 else (1, C, 1, 1)  # broadcasts a per-channel vector against X
    if training:
        n = X.numel() // C  # values per channel: B, or B * H * W
        if n < 2:
            raise ValueError(f"batch norm in training mode needs more than 1 value per channel, got input "
                             f"{tuple(X.shape)}; use eval mode for single examples")
        mean = X.mean(dim=dims)  # (C,)
        var = ((X - mean.reshape(shape)) ** 2).mean(dim=dims)  # (C,) biased: divides by n
        with torch.no_grad():  # the running estimates are statistics, not part of the graph
            running_mean.mul_(1 - momentum).add_(momentum * mean.detach())
            running_var.mul_(1 - momentum).add_(momentum * var.detach() * n / (n - 1))
    else:
        mean, var = running_mean, running_var
    X_hat = (X - mean.reshape(shape)) / torch.sqrt(var.reshape(shape) + eps)
    return gamma.reshape(shape) * X_hat + beta.reshape(shape)


class BatchNormScratch(nn.Module):
    """``batch_norm_scratch`` as a layer: ``num_dims=2`` for (B, C) like ``nn.BatchNorm1d``,
    ``num_dims=4`` for (B, C, H, W) like ``nn.BatchNorm2d``.

    gamma starts at 1 and beta at 0 (the layer starts as a plain standardisation); the running
    mean starts at 0 and the running variance at 1, as in PyTorch.
    """

    def __init__(self, num_features: int, *, num_dims: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        if num_dims not in (2, 4):
            raise ValueError(f"num_dims must be 2 (B, C) or 4 (B, C, H, W), got {num_dims}")
        if not eps > 0:
            raise ValueError(f"eps must be positive, got {eps}")
        self.num_dims, self.eps, self.momentum = num_dims, eps, momentum
        self.gamma = nn.Parameter(torch.ones(num_features))
        self.beta = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))  # buffers move with .to(device)
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, X: Tensor) -> Tensor:
        if X.ndim != self.num_dims:
            raise ValueError(f"this layer was built for {self.num_dims}-D input, got {X.ndim}-D {tuple(X.shape)}")
        return batch_norm_scratch(X, gamma=self.gamma, beta=self.beta, running_mean=self.running_mean,
                                  running_var=self.running_var, eps=self.eps, momentum=self.momentum,
                                  training=self.training)

    def extra_repr(self) -> str:
        return f"{self.gamma.numel()}, num_dims={self.num_dims}, eps={self.eps}, momentum={self.momentum}"


def layer_norm_scratch(X: Tensor, *, eps: float = 1e-5) -> Tensor:
    """Normalise each example over all its features (every axis but the first); no batch statistics.

    Equals ``nn.LayerNorm(X.shape[1:], elementwise_affine=False)``: the same computation as batch
    norm with the roles of the axes swapped, and the same in training and eval.
    """
    if X.ndim < 2:
        raise ValueError(f"layer norm expects a batch of examples (B, ...), got shape {tuple(X.shape)}")
    dims = tuple(range(1, X.ndim))
    mean = X.mean(dim=dims, keepdim=True)  # (B, 1, ...): one mean per example
    var = X.var(dim=dims, unbiased=False, keepdim=True)  # (B, 1, ...)
    return (X - mean) / torch.sqrt(var + eps)


def batch_norm_layer(num_features: int, *, num_dims: int) -> nn.Module:
    """PyTorch's batch norm for (B, C, H, W) (``num_dims=4``) or (B, C) (``num_dims=2``) inputs.

    With :class:`BatchNormScratch`, which takes the same arguments, it is the ``norm`` of
    :func:`dlnotes.cnn.lenet.lenet`.
    """
    if num_dims not in (2, 4):
        raise ValueError(f"num_dims must be 2 (B, C) or 4 (B, C, H, W), got {num_dims}")
    return nn.BatchNorm2d(num_features) if num_dims == 4 else nn.BatchNorm1d(num_features)


def batch_mean_spread(values: Tensor, *, batch_sizes: Sequence[int], num_batches: int,
                      generator: torch.Generator | None = None) -> Tensor:
    """Standard deviation, across random batches, of the batch mean of one feature (channel).

    ``values`` is (N, ...): the feature's value for each of N examples (e.g. (N, H, W) for one
    channel of a conv layer; the mean runs over the batch and the positions, as in batch norm).
    Returns one spread per batch size: how much the mean BN subtracts jitters from batch to batch.
    """
    N = len(values)
    if max(batch_sizes) > N or min(batch_sizes) < 1:
        raise ValueError(f"batch sizes must lie in 1..{N} (the number of examples), got {tuple(batch_sizes)}")
    per_example = values.reshape(N, -1).mean(dim=1)  # (N,): equal positions per example, so the mean of means
    spreads = []
    for b in batch_sizes:
        idx = torch.stack([torch.randperm(N, generator=generator)[:b] for _ in range(num_batches)])  # (K, b)
        spreads.append(per_example[idx].mean(dim=1).std())
    return torch.stack(spreads)
