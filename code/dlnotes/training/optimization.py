"""Optimisation: gradient descent on test functions, minibatch SGD on real data, momentum, convexity.

The test functions are tiny on purpose: on f(x) = x² or f(x) = 0.1 x₁² + 2 x₂² every step of
gradient descent can be computed by hand, so a figure can be checked against a formula. The
minibatch experiments train linear regression on a real data set, where the best possible loss
is known from least squares, so "how far from the optimum" is a number, not a guess.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from dlnotes import data, download, train
from dlnotes.basics import linreg

REGRESSION_DATASETS = ("diabetes-sklearn", "airfoil")

# --- Test functions ----------------------------------------------------------------------------


def x_cos(x: Tensor, *, c: float = 0.15 * math.pi) -> Tensor:
    """f(x) = x cos(c x): not convex, with a local minimum in every other valley."""
    return x * torch.cos(c * x)


def diagonal_quadratic(x: Tensor, *, coeffs: Sequence[float]) -> Tensor:
    """f(x) = Σ_i c_i x_i² over the last dimension: (..., d) -> (...). Its curvatures are 2 c_i."""
    c = torch.as_tensor(coeffs, dtype=x.dtype, device=x.device)
    if x.shape[-1] != len(c):
        raise ValueError(f"x has {x.shape[-1]} coordinates in its last dimension but there are {len(c)} coeffs")
    return (c * x**2).sum(-1)


# --- Momentum ----------------------------------------------------------------------------------


class SGDMomentumScratch:
    """SGD with momentum, the update torch.optim.SGD(momentum=beta) makes (dampening 0):

        v <- beta v + g,    p <- p - lr v.

    ``v`` is a leaky sum of past gradients: along a direction where they agree it grows to
    g / (1 - beta), along one where they alternate in sign it cancels. ``lr`` may be a tensor
    that broadcasts against the parameters (one learning rate per independent run).
    """

    def __init__(self, params: Iterable[nn.Parameter], *, lr: float | Tensor, beta: float):
        if not 0 <= beta < 1:
            raise ValueError(f"beta must lie in [0, 1), got {beta}")
        self.params, self.lr, self.beta = list(params), lr, beta
        self.velocities = [torch.zeros_like(p) for p in self.params]

    @torch.no_grad()
    def step(self) -> None:
        for p, v in zip(self.params, self.velocities):
            if p.grad is None:
                continue
            v.mul_(self.beta).add_(p.grad)
            p -= self.lr * v

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None


def descent_path(make_optimizer: Callable[[list[nn.Parameter]], object], f: Callable[[Tensor], Tensor],
                 start: Tensor, *, num_steps: int) -> Tensor:
    """Minimise f from ``start`` with any optimiser (params -> step/zero_grad).

    Returns the path, (num_steps + 1, *start.shape).

    ``start`` may hold several independent runs: their losses are summed, which leaves each run
    its own gradient.
    """
    if num_steps < 0:
        raise ValueError(f"num_steps must be >= 0, got {num_steps}")
    theta = nn.Parameter(start.detach().clone())
    optimizer = make_optimizer([theta])
    path = [theta.detach().clone()]
    for _ in range(num_steps):
        optimizer.zero_grad()
        f(theta).sum().backward()
        optimizer.step()
        path.append(theta.detach().clone())
    return torch.stack(path)


def momentum_descent(loss_fn: Callable[[Tensor], Tensor], start: Tensor, *, lr: float | Tensor,
                     beta: float, num_steps: int) -> Tensor:
    """Like ``basics.gradient_descent`` but with momentum; returns the path (num_steps + 1, *start.shape).

    With ``beta = 0`` it is plain gradient descent, step for step.
    """
    return descent_path(lambda params: SGDMomentumScratch(params, lr=lr, beta=beta), loss_fn, start,
                        num_steps=num_steps)


# --- Convexity ---------------------------------------------------------------------------------


def chord_gaps(f: Callable[[Tensor], Tensor], a: Tensor, b: Tensor, lam: Tensor) -> Tensor:
    """λ f(a) + (1 - λ) f(b) - f(λ a + (1 - λ) b) for a batch of points a, b (N, ...) and λ (N,).

    f is convex exactly when every gap is >= 0: the chord lies above the graph.
    """
    if a.shape != b.shape or lam.shape != a.shape[:1]:
        raise ValueError(f"need a and b of the same shape (N, ...) and lam (N,), got "
                         f"{tuple(a.shape)}, {tuple(b.shape)}, {tuple(lam.shape)}")
    lam_b = lam.reshape(-1, *[1] * (a.ndim - 1))  # (N, 1, ...): broadcasts over a point's coordinates
    return lam * f(a) + (1 - lam) * f(b) - f(lam_b * a + (1 - lam_b) * b)


def worst_chord_gap(f: Callable[[Tensor], Tensor], *, lo: float, hi: float, dim: int | None = None,
                    num_pairs: int = 100_000, generator: torch.Generator | None = None) -> float:
    """The smallest chord gap over random pairs in [lo, hi] (per coordinate) and random λ, in float64.

    ``dim=None`` draws scalars (f acts elementwise); an integer draws points of that dimension.
    A negative result is a counterexample to convexity; a result >= 0 is evidence, not proof.
    """
    shape = (num_pairs,) if dim is None else (num_pairs, dim)
    a = lo + (hi - lo) * torch.rand(shape, generator=generator, dtype=torch.float64)
    b = lo + (hi - lo) * torch.rand(shape, generator=generator, dtype=torch.float64)
    lam = torch.rand(num_pairs, generator=generator, dtype=torch.float64)
    return chord_gaps(f, a, b, lam).min().item()


# --- A real regression data set ----------------------------------------------------------------


def load_regression(name: str, *, num_examples: int | None = None) -> tuple[Tensor, Tensor]:
    """A real regression data set as float32 tensors X (n, d), y (n, 1), every column standardised.

    - ``diabetes-sklearn``: 442 patients, 10 features, disease progression after a year;
      shipped inside scikit-learn (no network).
    - ``airfoil``: NASA's airfoil self-noise, 1,503 rows, 5 features, the sound level; d2l's
      data set for its optimisation chapter, through the download registry.

    Standardising the target too makes the loss of predicting the mean equal to 1 / 2 for the
    squared loss, so losses are comparable across data sets.
    """
    if name == "diabetes-sklearn":
        from sklearn.datasets import load_diabetes

        bunch = load_diabetes()
        table = np.column_stack([bunch.data, bunch.target])  # (442, 11): features, then target
    elif name == "airfoil":
        table = np.loadtxt(download.fetch("airfoil"))  # (1503, 6), whitespace-separated
        if table.ndim != 2 or table.shape[1] != 6:
            raise ValueError(f"airfoil: expected 6 columns, got shape {table.shape}")
    else:
        raise LookupError(f"unknown regression data set {name!r}; known: {', '.join(REGRESSION_DATASETS)}")
    if num_examples is not None:
        table = table[:num_examples]
    table = (table - table.mean(axis=0)) / table.std(axis=0)
    t = torch.tensor(table, dtype=torch.float32)
    return t[:, :-1], t[:, -1:]  # X (n, d), y (n, 1)


def least_squares_loss(X: Tensor, y: Tensor) -> float:
    """The smallest squared loss (mean of (y_hat - y)² / 2) any linear model w·x + b reaches, in float64."""
    X1 = torch.cat([X, torch.ones(len(X), 1, dtype=X.dtype, device=X.device)], dim=1).double()  # (n, d + 1)
    w = torch.linalg.lstsq(X1.cpu(), y.double().cpu()).solution  # (d + 1, 1); CPU: lstsq's most general driver
    return linreg.squared_loss(X1.cpu() @ w, y.double().cpu()).item()


@dataclass
class SGDRun:
    """One training run of linear regression: the loss on the whole data after every epoch."""

    batch_size: int
    lr: float
    losses: list[float] = field(default_factory=list)  # after 0, 1, 2, ... epochs
    seconds: list[float] = field(default_factory=list)  # training time spent so far, same points
    steps: list[int] = field(default_factory=list)  # parameter updates so far, same points
    examples_per_second: float = float("nan")

    @property
    def diverged(self) -> bool:
        return not math.isfinite(self.losses[-1])

    def loss_after(self, *, epochs: int | None = None, seconds: float | None = None) -> float:
        """The loss after that many epochs, or the last one measured within that much time."""
        if (epochs is None) == (seconds is None):
            raise ValueError("give exactly one of epochs and seconds")
        if epochs is not None:
            if epochs >= len(self.losses):
                return self.losses[-1] if self.diverged else _too_short(f"{epochs} epochs", self)
            return self.losses[epochs]
        within = [loss for loss, t in zip(self.losses, self.seconds) if t <= seconds]
        if self.seconds[-1] < seconds and not self.diverged:
            return _too_short(f"{seconds} s", self)
        return within[-1]


def _too_short(what: str, run: SGDRun) -> float:
    raise ValueError(f"the run (batch size {run.batch_size}, lr {run.lr}) stopped after "
                     f"{len(run.losses) - 1} epochs / {run.seconds[-1]:.2f} s, before {what}")


def train_linear_regression(X: Tensor, y: Tensor, *, batch_size: int, lr: float, num_epochs: int,
                            seconds: float = 0.0, momentum: float = 0.0, decay: float = 0.0,
                            generator: torch.Generator | None = None,
                            device: torch.device | str | None = None) -> SGDRun:
    """Minibatch SGD on a linear model from w = 0, b = 0, with ``train.fit`` one epoch at a time.

    Trains for at least ``num_epochs`` epochs and at least ``seconds`` of training time (so one
    run answers both "loss after E epochs" and "loss after T seconds"); stops early only when
    the loss is no longer finite. The learning rate of epoch e (from 0) is lr / (1 + decay e).
    Evaluating the loss on all the data after each epoch is not counted as training time.
    """
    if not 1 <= batch_size <= len(X):
        raise ValueError(f"batch_size must be between 1 and the number of examples ({len(X)}), got {batch_size}")
    if num_epochs < 1:
        raise ValueError(f"num_epochs must be at least 1, got {num_epochs}")
    net = nn.Linear(X.shape[1], 1).to(device)
    nn.init.zeros_(net.weight)
    nn.init.zeros_(net.bias)
    optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum)
    full = batch_size == len(X)  # a full batch's gradient does not depend on the order: skip the shuffle
    loader = data.TensorLoader(X, y, batch_size=batch_size, shuffle=not full, generator=generator, device=device)
    everything = data.TensorLoader(X, y, batch_size=len(X), device=device)
    loss0 = train.evaluate(model=net, loader=everything, loss_fn=linreg.squared_loss)["loss"]
    run = SGDRun(batch_size, lr, losses=[loss0], seconds=[0.0], steps=[0])
    examples, elapsed, epoch = 0, 0.0, 0
    while epoch < num_epochs or elapsed < seconds:
        for group in optimizer.param_groups:
            group["lr"] = lr / (1 + decay * epoch)
        history = train.fit(model=net, train_loader=loader, loss_fn=linreg.squared_loss, optimizer=optimizer,
                            num_epochs=1, test_loader=everything, progress=False)
        elapsed += history.seconds
        examples += history.examples
        epoch += 1
        loss = history.final("test_loss")  # "test" here is the whole training set, after the epoch
        run.losses.append(loss if math.isfinite(loss) else math.inf)
        run.seconds.append(elapsed)
        run.steps.append(run.steps[-1] + len(loader))
        if not math.isfinite(loss):
            break
    run.examples_per_second = examples / elapsed if elapsed else float("nan")
    return run


def seconds_per_step(*, batch_size: int, num_features: int, num_steps: int = 20, repeats: int = 3,
                     generator: torch.Generator | None = None, device: torch.device | str | None = None) -> float:
    """Wall time of one SGD step (forward, loss, backward, update) of a linear model on one batch.

    The best of ``repeats`` measurements of ``num_steps`` steps each: other programs running on
    the machine can only make a measurement slower, never faster.
    """
    X = torch.randn(batch_size, num_features, generator=generator)  # (B, d)
    y = torch.randn(batch_size, 1, generator=generator)  # (B, 1)
    net = nn.Linear(num_features, 1).to(device)
    loader = data.TensorLoader(X, y, batch_size=batch_size, device=device)  # one batch per "epoch"
    fit = lambda n: train.fit(model=net, train_loader=loader, loss_fn=linreg.squared_loss,  # noqa: E731
                              optimizer=torch.optim.SGD(net.parameters(), lr=1e-3), num_epochs=n, progress=False)
    fit(2)  # warm-up: first calls allocate memory and pick kernels
    return min(fit(num_steps).seconds for _ in range(repeats)) / num_steps


# --- Drawing paths on a contour map --------------------------------------------------------------


def draw_paths(ax, f: Callable[[Tensor], Tensor], paths: dict[str, Tensor], *,
               xlim: tuple[float, float], ylim: tuple[float, float], title: str | None = None,
               colors: Sequence[str] | None = None) -> None:
    """Contours of a function of two variables and optimisation paths (T, 2) on top of them."""
    x1, x2 = torch.meshgrid(torch.linspace(*xlim, 201), torch.linspace(*ylim, 201), indexing="xy")
    ax.contour(x1, x2, f(torch.stack([x1, x2], dim=-1)), levels=15, linewidths=0.5, colors="0.6")
    for i, (label, path) in enumerate(paths.items()):
        color = colors[i] if colors else f"C{i + 1}"
        ax.plot(path[:, 0], path[:, 1], ".-", color=color, markersize=4, linewidth=1, label=label)
    ax.plot(0, 0, "*", color="k", markersize=8)
    ax.set(xlim=xlim, ylim=ylim, xlabel="$x_1$", ylabel="$x_2$")
    if title:
        ax.set_title(title)
    if len(paths) > 1:
        ax.legend(loc="upper right", fontsize=8)
