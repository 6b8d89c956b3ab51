"""Softmax regression: softmax, a stable log-softmax, cross-entropy from logits, a model by hand.

Every function takes *logits* ``O`` (B, K): the raw scores of the last linear layer. Probabilities
are computed inside the loss, in log space, which is what ``nn.CrossEntropyLoss`` does too.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def softmax(O: Tensor, *, dim: int = -1) -> Tensor:
    """exp(O) / sum(exp(O)) along ``dim``, computed naively: exp overflows for logits above ~88."""
    E = torch.exp(O)
    return E / E.sum(dim=dim, keepdim=True)


def log_softmax(O: Tensor, *, dim: int = -1) -> Tensor:
    """log softmax(O) = O - m - log(sum(exp(O - m))), with m the largest logit: never overflows."""
    # Shifting every logit by the same m changes nothing mathematically (it cancels between the
    # two terms), but makes the largest exponent exp(0) = 1, so the sum is finite and >= 1.
    m = O.amax(dim=dim, keepdim=True).detach()  # (B, 1): no gradient needed, its effect cancels
    shifted = O - m  # (B, K), every entry <= 0
    return shifted - torch.log(torch.exp(shifted).sum(dim=dim, keepdim=True))


def _check_labels(O: Tensor, y: Tensor) -> None:
    if O.ndim != 2 or not O.is_floating_point():
        raise ValueError(f"logits must be a float tensor of shape (B, K), got {O.dtype} {tuple(O.shape)}")
    if y.shape == O.shape:
        raise ValueError(f"y has the logits' shape {tuple(y.shape)}: pass class indices (B,), "
                         f"not one-hot rows; e.g. y.argmax(dim=1)")
    if y.ndim != 1 or len(y) != len(O):
        raise ValueError(f"y must hold one class index per row of the logits: expected shape ({len(O)},), "
                         f"got {tuple(y.shape)}")
    if y.is_floating_point() or y.dtype == torch.bool or y.is_complex():
        raise ValueError(f"y must hold integer class indices (torch.long), got {y.dtype}; e.g. y.long()")
    if len(y) and (y.min() < 0 or y.max() >= O.shape[1]):
        raise ValueError(f"class indices must lie in 0..{O.shape[1] - 1} for {O.shape[1]} classes, "
                         f"got values from {y.min().item()} to {y.max().item()}")


def cross_entropy(O: Tensor, y: Tensor) -> Tensor:
    """Mean over the batch of -log softmax(O)[i, y[i]]: logits O (B, K), class indices y (B,)."""
    _check_labels(O, y)
    log_probs = log_softmax(O, dim=1)  # (B, K)
    picked = log_probs[torch.arange(len(y), device=y.device), y]  # (B,): log y_hat of the true class
    return -picked.mean()


def cross_entropy_grad(O: Tensor, y: Tensor) -> Tensor:
    """The gradient of :func:`cross_entropy` with respect to the logits, by the formula.

    For one example, d(-log softmax(o)_y) / do = softmax(o) - onehot(y); the batch mean divides
    every row by B.
    """
    _check_labels(O, y)
    probs = torch.exp(log_softmax(O, dim=1))  # (B, K), the stable softmax
    one_hot = torch.zeros_like(probs)
    one_hot[torch.arange(len(y), device=y.device), y] = 1  # (B, K)
    return (probs - one_hot) / len(y)


def softmax_mse_loss(O: Tensor, y: Tensor) -> Tensor:
    """Squared distance between softmax(O) and the one-hot target, summed over classes, batch mean.

    A classification loss that is *not* cross-entropy (also called the Brier score), used to
    answer whether classifiers need cross-entropy.
    """
    _check_labels(O, y)
    probs = torch.exp(log_softmax(O, dim=1))  # (B, K)
    one_hot = torch.zeros_like(probs)
    one_hot[torch.arange(len(y), device=y.device), y] = 1  # (B, K)
    return ((probs - one_hot) ** 2).sum(dim=1).mean()


class SoftmaxRegressionScratch(nn.Module):
    """Logits O = XW + b for flattened images: one fully connected layer, parameters by hand.

    It returns logits, not probabilities: the loss applies the softmax in log space.
    """

    def __init__(self, *, num_inputs: int, num_outputs: int, sigma: float = 0.01):
        super().__init__()
        self.W = nn.Parameter(sigma * torch.randn(num_inputs, num_outputs))  # (d, K)
        self.b = nn.Parameter(torch.zeros(num_outputs))  # (K,)

    def forward(self, X: Tensor) -> Tensor:
        X = X.reshape(len(X), -1)  # (B, 1, 28, 28) -> (B, d), d = 784
        if X.shape[1] != self.W.shape[0]:
            raise ValueError(f"each input has {X.shape[1]} values but the model expects {self.W.shape[0]}")
        return X @ self.W + self.b  # (B, d) @ (d, K) + (K,) -> (B, K)


@torch.no_grad()
def predict(model: nn.Module, X: Tensor, *, batch_size: int = 1024) -> Tensor:
    """The predicted class (B,) of every input: the index of the largest logit (or probability)."""
    model.eval()
    device = next(model.parameters()).device
    preds = [model(X[i:i + batch_size].to(device)).argmax(dim=1).cpu() for i in range(0, len(X), batch_size)]
    return torch.cat(preds) if preds else torch.empty(0, dtype=torch.long)


def shuffle_pixels(X: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
    """Each image of X (N, ...) with its pixels in its own random order: the same ink, no shape left.

    Used as "none of the above" examples for a dummy class: they look like no digit, yet have
    exactly the brightness histogram of one.
    """
    flat = X.flatten(1)  # (N, D)
    order = torch.argsort(torch.rand(flat.shape, generator=generator), dim=1)  # a random permutation per row
    return flat.gather(1, order).reshape(X.shape)
