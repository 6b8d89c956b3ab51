"""Numerical stability: vanishing and exploding gradients, Xavier/He initialisation, gradient clipping.

The tools measure a deep net layer by layer (gradient norms, activation variances), initialise it
from scratch (Xavier, He) and clip its gradients from scratch, each checked against PyTorch.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable

import torch
from torch import Tensor, nn

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "identity": nn.Identity,
}

# --- Why depth multiplies ---------------------------------------------------------------------


def sigmoid_grad(x: Tensor) -> Tensor:
    """σ'(x) = σ(x) (1 - σ(x)): at most 1/4, reached at x = 0, and near 0 once |x| is large."""
    s = torch.sigmoid(x)
    return s * (1 - s)


def matrix_product_norms(*, num_matrices: int, size: int = 4, std: float = 1.0,
                         generator: torch.Generator | None = None) -> Tensor:
    """Frobenius norm of M_1 M_2 ... M_k for k = 1 .. num_matrices; entries of each M_i iid N(0, std²).

    Computed in float64 so that the growth itself, not float32's range, is what we see.
    """
    if num_matrices < 1 or size < 1:
        raise ValueError(f"need num_matrices >= 1 and size >= 1, got {num_matrices} and {size}")
    M = torch.randn(num_matrices, size, size, generator=generator, dtype=torch.float64) * std  # (k, n, n)
    product = torch.eye(size, dtype=torch.float64)
    norms = []
    for i in range(num_matrices):
        product = product @ M[i]  # (n, n)
        norms.append(torch.linalg.matrix_norm(product))
    return torch.stack(norms)  # (k,)


# --- A deep MLP and what to measure in it -------------------------------------------------------


def deep_mlp(*, num_inputs: int, num_hiddens: int, num_layers: int, num_outputs: int = 1,
             activation: str = "relu") -> nn.Sequential:
    """``num_layers`` linear layers (the last one is the output layer), ``activation`` between them."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")
    if num_layers < 1:
        raise ValueError(f"num_layers must be >= 1, got {num_layers}")
    widths = [num_inputs] + [num_hiddens] * (num_layers - 1) + [num_outputs]
    layers: list[nn.Module] = []
    for fan_in, fan_out in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(fan_in, fan_out), ACTIVATIONS[activation]()]
    return nn.Sequential(*layers[:-1])  # no activation after the output layer


def weight_matrices(model: nn.Module) -> list[nn.Parameter]:
    """The weights of ``model`` that are matrices or kernels (ndim >= 2), input side first; no biases."""
    weights = [p for name, p in model.named_parameters() if name.endswith("weight") and p.ndim >= 2]
    if not weights:
        raise ValueError("the model has no weight matrices (parameters named '...weight' with ndim >= 2)")
    return weights


def layer_grad_norms(model: nn.Module, X: Tensor, y: Tensor, *, loss_fn: Callable) -> Tensor:
    """‖∂loss/∂W_l‖ for every weight matrix W_l, input side first, after one forward and backward pass.

    Uses ``torch.autograd.grad``, so the model's ``.grad`` fields are left untouched.
    """
    weights = weight_matrices(model)
    loss = loss_fn(model(X), y)
    if loss.ndim != 0:
        raise ValueError(f"loss_fn must return a scalar, got shape {tuple(loss.shape)}")
    grads = torch.autograd.grad(loss, weights)
    return torch.stack([g.norm() for g in grads])  # (num_layers,)


@torch.no_grad()
def activation_variances(model: nn.Sequential, X: Tensor) -> Tensor:
    """Variance of the output of every ``nn.Linear`` of a Sequential (over examples and units), in order."""
    if not isinstance(model, nn.Sequential):
        raise ValueError(f"activation_variances needs an nn.Sequential, got {type(model).__name__}")
    variances = []
    h = X
    for layer in model:
        h = layer(h)
        if isinstance(layer, nn.Linear):
            variances.append(h.var())  # (B, fan_out) -> one number per layer
    if not variances:
        raise ValueError("the Sequential holds no nn.Linear layer")
    return torch.stack(variances)


# --- Initialisation from scratch --------------------------------------------------------------


def fans(weight: Tensor) -> tuple[int, int]:
    """(n_in, n_out) of a weight: an nn.Linear stores (n_out, n_in); a conv kernel multiplies both by its size."""
    if weight.ndim < 2:
        raise ValueError(f"fan-in and fan-out need a weight with at least 2 dimensions, "
                         f"got shape {tuple(weight.shape)}")
    receptive = math.prod(weight.shape[2:])  # 1 for a matrix
    return weight.shape[1] * receptive, weight.shape[0] * receptive


def xavier_uniform_scratch(weight: Tensor, *, gain: float = 1.0,
                           generator: torch.Generator | None = None) -> Tensor:
    """Fill ``weight`` in place from U(-a, a), a = gain sqrt(6 / (n_in + n_out)); return it.

    U(-a, a) has variance a²/3 = gain² 2 / (n_in + n_out): the compromise between keeping the
    forward variance (n_in σ² = 1) and the backward variance (n_out σ² = 1).
    """
    n_in, n_out = fans(weight)
    bound = gain * math.sqrt(6.0 / (n_in + n_out))
    with torch.no_grad():
        sample = torch.rand(weight.shape, generator=generator, dtype=weight.dtype)  # U(0, 1)
        return weight.copy_((2 * sample - 1) * bound)


def xavier_normal_scratch(weight: Tensor, *, gain: float = 1.0,
                          generator: torch.Generator | None = None) -> Tensor:
    """Fill ``weight`` in place from N(0, σ²), σ = gain sqrt(2 / (n_in + n_out)); return it."""
    n_in, n_out = fans(weight)
    std = gain * math.sqrt(2.0 / (n_in + n_out))
    with torch.no_grad():
        return weight.copy_(torch.randn(weight.shape, generator=generator, dtype=weight.dtype) * std)


def kaiming_normal_scratch(weight: Tensor, *, gain: float = 1.0,
                           generator: torch.Generator | None = None) -> Tensor:
    """He/Kaiming for ReLU: N(0, σ²) with σ = gain sqrt(2 / n_in), since ReLU zeroes half of its inputs."""
    n_in, _ = fans(weight)
    std = gain * math.sqrt(2.0 / n_in)
    with torch.no_grad():
        return weight.copy_(torch.randn(weight.shape, generator=generator, dtype=weight.dtype) * std)


INIT_SCHEMES = ("normal", "xavier_uniform", "xavier_normal", "kaiming_normal")


def init_weights_(model: nn.Module, *, scheme: str, std: float | None = None, gain: float = 1.0,
                  generator: torch.Generator | None = None) -> nn.Module:
    """Re-initialise every weight matrix of ``model`` and zero its biases; return the model.

    ``scheme="normal"`` draws N(0, std²) (the naive choice); the others call the scratch
    versions above with ``gain``.
    """
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r}; choose one of {', '.join(INIT_SCHEMES)}")
    if (scheme == "normal") != (std is not None):
        raise ValueError("pass std with scheme='normal', and only then")
    for W in weight_matrices(model):
        if scheme == "normal":
            with torch.no_grad():
                W.copy_(torch.randn(W.shape, generator=generator, dtype=W.dtype) * std)
        else:
            {"xavier_uniform": xavier_uniform_scratch, "xavier_normal": xavier_normal_scratch,
             "kaiming_normal": kaiming_normal_scratch}[scheme](W, gain=gain, generator=generator)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.zero_()
    return model


# --- Gradient clipping ------------------------------------------------------------------------


def clip_grad_norm_scratch(params: Iterable[Tensor], *, max_norm: float) -> Tensor:
    """Scale all gradients together, g <- min(1, θ / ‖g‖) g with θ = ``max_norm``; return the ‖g‖ before.

    ‖g‖ is the global norm: all parameters' gradients seen as one long vector. Clipping it keeps
    the direction of the step and bounds only its length.
    """
    if not max_norm > 0:
        raise ValueError(f"max_norm must be positive, got {max_norm}")
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    # a norm of norms, not sqrt(Σ g²) in one go: squaring large entries first would overflow sooner
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.detach()) for g in grads]))
    scale = torch.clamp(max_norm / total, max=1.0)  # 1 when ‖g‖ <= θ (and when ‖g‖ = 0: θ/0 = inf)
    for g in grads:
        g.detach().mul_(scale.to(g.dtype))
    return total


class ClippedOptimizer:
    """Wrap an optimizer so that every ``step()`` first clips the global gradient norm to ``max_norm``.

    It has ``zero_grad()`` and ``step()``, so ``train.fit`` takes it as it is. ``norms`` keeps the
    norm before clipping of every step.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, *, max_norm: float):
        if not max_norm > 0:
            raise ValueError(f"max_norm must be positive, got {max_norm}")
        self.optimizer, self.max_norm = optimizer, max_norm
        self.norms: list[float] = []

    def zero_grad(self) -> None:
        self.optimizer.zero_grad()

    def step(self) -> None:
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        self.norms.append(clip_grad_norm_scratch(params, max_norm=self.max_norm).item())
        self.optimizer.step()
