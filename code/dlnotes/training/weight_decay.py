"""Weight decay: the L2 penalty as a hard and a soft constraint, the decayed SGD update, and
d2l's high-dimensional linear regression (200 inputs, 20 training examples) to sweep lambda on.

The soft constraint adds (lambda/2)·‖w‖² to the loss; its gradient lambda·w turns the SGD step
into w <- (1 - lr·lambda)·w - lr·grad: every step first shrinks (decays) the weights.
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

import torch
from torch import Tensor, nn

from dlnotes import data, train
from dlnotes.basics import linreg

VERSIONS = ("scratch", "concise")


def _check_lambd(lambd: float) -> None:
    if lambd < 0:
        raise ValueError(f"the penalty weight lambd must be >= 0 (a negative one rewards large weights), "
                         f"got {lambd}")


def l2_penalty(w: Tensor) -> Tensor:
    """½‖w‖²: half the sum of the squared entries; the ½ makes its gradient exactly w."""
    return (w ** 2).sum() / 2


class PenalizedLoss:
    """The soft constraint written out: ``loss_fn(y_hat, y) + lambd · Σ l2_penalty(w)``.

    Only the tensors in ``weights`` are penalised (d2l penalises w, not the bias b).
    """

    def __init__(self, loss_fn: Callable[[Tensor, Tensor], Tensor], weights: Iterable[Tensor], *, lambd: float):
        _check_lambd(lambd)
        self.loss_fn, self.weights, self.lambd = loss_fn, list(weights), lambd

    def __call__(self, y_hat: Tensor, y: Tensor) -> Tensor:
        penalty = sum(l2_penalty(w) for w in self.weights)
        return self.loss_fn(y_hat, y) + self.lambd * penalty


def sgd_weight_decay_step(w: Tensor, grad: Tensor, *, lr: float, lambd: float) -> Tensor:
    """One SGD step on loss + (lambd/2)‖w‖², where ``grad`` is the gradient of the loss alone."""
    _check_lambd(lambd)
    return (1 - lr * lambd) * w - lr * grad  # = w - lr · (grad + lambd · w)


def decay_param_groups(model: nn.Module, *, weight_decay: float) -> list[dict]:
    """Optimizer parameter groups that decay the weight matrices but not the biases.

    A ``weight_decay=`` given to a torch optimizer applies to every parameter it holds, biases
    included; groups give each set its own value. Parameters with two or more dimensions
    (weights of linear and convolutional layers) are decayed, vectors (biases) are not.
    """
    _check_lambd(weight_decay)
    params = [p for p in model.parameters() if p.requires_grad]
    decayed = [p for p in params if p.ndim >= 2]
    kept = [p for p in params if p.ndim < 2]
    return [{"params": decayed, "weight_decay": weight_decay}, {"params": kept, "weight_decay": 0.0}]


def zero_gradient_trajectory(make_optimizer: Callable[[list[nn.Parameter]], torch.optim.Optimizer], *,
                             w0: float, num_steps: int) -> Tensor:
    """The value of one weight after each of ``num_steps`` steps when the data gradient is exactly 0.

    Whatever moves the weight then is the optimizer's weight decay alone. Returns (num_steps + 1,),
    starting with ``w0``.
    """
    w = nn.Parameter(torch.tensor([float(w0)]))
    optimizer = make_optimizer([w])
    values = [float(w0)]
    for _ in range(num_steps):
        optimizer.zero_grad()
        w.grad = torch.zeros_like(w)  # no data: the loss does not depend on w
        optimizer.step()
        values.append(w.item())
    return torch.tensor(values)


def high_dim_data(*, num_inputs: int, num_train: int, num_test: int, noise: float = 0.01,
                  generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """d2l's overfitting set-up: y = 0.05 + Σ 0.01·x_i + N(0, noise²), x ~ N(0, I).

    Returns X_train (n, d), y_train (n, 1), X_test (m, d), y_test (m, 1).
    """
    if num_train < 1 or num_test < 1 or num_inputs < 1:
        raise ValueError(f"sizes must be positive, got num_inputs={num_inputs}, num_train={num_train}, "
                         f"num_test={num_test}")
    w = torch.full((num_inputs,), 0.01)
    X, y = linreg.synthetic_data(w=w, b=0.05, num_examples=num_train + num_test, noise=noise, generator=generator)
    return X[:num_train], y[:num_train], X[num_train:], y[num_train:]


def fit_linear(X_train: Tensor, y_train: Tensor, X_test: Tensor, y_test: Tensor, *, lambd: float, lr: float,
               batch_size: int, num_epochs: int, init_std: float, generator: torch.Generator,
               version: str = "concise") -> tuple[nn.Module, train.History]:
    """Train y = Xw + b by minibatch SGD with weight decay ``lambd`` on w (not on b).

    - ``scratch``: ``LinearRegressionScratch``, a ``PenalizedLoss`` and ``SGDScratch``; the
      recorded losses then include the penalty.
    - ``concise``: ``nn.Linear`` and ``torch.optim.SGD`` with ``weight_decay`` on the weight's
      group; the recorded losses are the data loss alone.

    Both draw w from ``generator`` first and shuffle with it, so one seed gives both versions
    the same start and the same minibatches.
    """
    if version not in VERSIONS:
        raise ValueError(f"version must be one of {VERSIONS}, got {version!r}")
    _check_lambd(lambd)
    num_inputs = X_train.shape[1]
    w0 = init_std * torch.randn(num_inputs, 1, generator=generator)  # (d, 1)
    if version == "scratch":
        model = linreg.LinearRegressionScratch(num_inputs=num_inputs)
        with torch.no_grad():
            model.w.copy_(w0)
        loss_fn = PenalizedLoss(linreg.squared_loss, [model.w], lambd=lambd)
        optimizer = linreg.SGDScratch(model.parameters(), lr=lr)
    else:
        model = nn.Linear(num_inputs, 1)
        with torch.no_grad():
            model.weight.copy_(w0.T)  # (1, d)
            model.bias.zero_()
        loss_fn = linreg.squared_loss
        optimizer = torch.optim.SGD(decay_param_groups(model, weight_decay=lambd), lr=lr)
    train_loader = data.TensorLoader(X_train, y_train, batch_size=batch_size, shuffle=True, generator=generator)
    test_loader = data.TensorLoader(X_test, y_test, batch_size=len(X_test))
    history = train.fit(model=model, train_loader=train_loader, loss_fn=loss_fn, optimizer=optimizer,
                        num_epochs=num_epochs, test_loader=test_loader, progress=False)
    return model, history


def weight_vector(model: nn.Module) -> Tensor:
    """The learned w as a (d,) tensor, from either version of the model."""
    w = model.w if isinstance(model, linreg.LinearRegressionScratch) else model.weight
    return w.detach().reshape(-1)


def sweep_lambd(X_train: Tensor, y_train: Tensor, X_test: Tensor, y_test: Tensor, *, lambds: Sequence[float],
                seed: int, **fit_kwargs) -> dict[str, list[float]]:
    """Train one concise model per lambda from the same start; final data losses and ‖w‖ for each."""
    out: dict[str, list[float]] = {"train_loss": [], "test_loss": [], "w_norm": []}
    for lambd in lambds:
        model, _ = fit_linear(X_train, y_train, X_test, y_test, lambd=lambd,
                              generator=torch.Generator().manual_seed(seed), **fit_kwargs)
        with torch.no_grad():
            out["train_loss"].append(linreg.squared_loss(model(X_train), y_train).item())
            out["test_loss"].append(linreg.squared_loss(model(X_test), y_test).item())
        out["w_norm"].append(weight_vector(model).norm().item())
    return out


def null_space_part(w: Tensor, X: Tensor) -> Tensor:
    """The part of w (d,) orthogonal to every row of X (n, d).

    The gradient of a linear model's loss is a combination of the rows of X, so no training step
    ever changes this part: only weight decay shrinks it.
    """
    Q, _ = torch.linalg.qr(X.T)  # (d, n): orthonormal basis of the rows' span
    return w - Q @ (Q.T @ w)  # (d,)


# --- Hard and soft constraint: the same solutions, linked by a Lagrange multiplier ---------------


def _with_ones(X: Tensor) -> Tensor:
    return torch.cat([X, torch.ones(len(X), 1, dtype=X.dtype)], dim=1)  # (n, d + 1): last weight is b


def ridge_regression(X: Tensor, y: Tensor, *, lambd: float) -> tuple[Tensor, Tensor]:
    """Exact minimiser (w (d,), b) of mean ½(Xw + b - y)² + (lambd/2)‖w‖², b not penalised (float64)."""
    _check_lambd(lambd)
    X1 = _with_ones(X.double())  # (n, d + 1)
    n, d = X.shape
    penalty = torch.diag(torch.cat([torch.full((d,), lambd), torch.zeros(1)])).double()  # (d + 1, d + 1)
    wb = torch.linalg.solve(X1.T @ X1 / n + penalty, X1.T @ y.double().reshape(-1) / n)  # (d + 1,)
    return wb[:-1], wb[-1]


def constrained_least_squares(X: Tensor, y: Tensor, *, theta: float,
                              num_steps: int = 3000) -> tuple[Tensor, Tensor]:
    """Minimise mean ½(Xw + b - y)² subject to ‖w‖² <= theta, by projected gradient descent (float64).

    After each gradient step, a w outside the ball is scaled back onto its surface.
    """
    if theta <= 0:
        raise ValueError(f"theta (the budget for ‖w‖²) must be positive, got {theta}")
    X1 = _with_ones(X.double())  # (n, d + 1)
    y = y.double().reshape(-1)  # (n,)
    lr = len(X1) / torch.linalg.matrix_norm(X1, ord=2) ** 2  # 1 / (largest curvature): always stable
    wb = torch.zeros(X1.shape[1], dtype=torch.float64)  # (d + 1,)
    for _ in range(num_steps):
        wb = wb - lr * X1.T @ (X1 @ wb - y) / len(X1)
        norm = wb[:-1].norm()
        if norm ** 2 > theta:
            wb[:-1] *= theta ** 0.5 / norm  # project w (not b) back onto the ball
    return wb[:-1], wb[-1]


def lagrange_multiplier(X: Tensor, y: Tensor, w: Tensor, b: Tensor) -> float:
    """The lambda >= 0 with ∇ℓ(w) = -lambda·w at a solution on the ball's surface.

    At the constrained optimum the data gradient points straight into the ball; its length
    relative to w is the multiplier that makes the soft problem have the same solution.
    """
    X, y, w = X.double(), y.double().reshape(-1), w.double()
    grad = X.T @ (X @ w + b - y) / len(X)  # (d,): gradient of the data loss in w
    return (-(grad @ w) / (w @ w)).item()
