"""Critical points: where the gradient vanishes, and what the Hessian says about them.

A loss ``f`` here maps parameters of shape (..., d) to losses of shape (...): one loss per row,
so that many points (starts of Newton's method, independent networks) are handled at once.
Rows never interact, so the gradient of ``f(theta).sum()`` holds every row's own gradient.
Work in float64: eigenvalues near zero are what the classification is about.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator, NamedTuple, Sequence

import torch
from torch import Tensor

from dlnotes.basics import ml_basics

Loss = Callable[[Tensor], Tensor]


@contextmanager
def one_thread() -> Iterator[None]:
    """Run tiny-tensor loops on one thread: with matrices this small, handing work to other
    threads costs more than the arithmetic (on a busy 2-core machine, ten times more)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _as_batch(theta: Tensor) -> tuple[Tensor, bool]:
    if theta.dim() not in (1, 2):
        raise ValueError(f"theta must be (d,) or (N, d), got shape {tuple(theta.shape)}")
    single = theta.dim() == 1
    return (theta[None] if single else theta), single  # (N, d)


def gradient(f: Loss, theta: Tensor) -> Tensor:
    """∇f at theta, (d,) or (N, d) for a batch of points."""
    batch, single = _as_batch(theta)
    batch = batch.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(f(batch).sum(), batch)  # (N, d): rows are independent
    return g[0] if single else g


def hessian(f: Loss, theta: Tensor) -> Tensor:
    """The Hessian H_ij = ∂²f/∂θ_i∂θ_j at theta by double backward: (d, d), or (N, d, d).

    First a gradient that keeps its own graph (``create_graph``), then one more backward pass
    per coordinate i gives row i, ∂g_i/∂θ, of every point's Hessian at once.
    """
    batch, single = _as_batch(theta)
    batch = batch.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(f(batch).sum(), batch, create_graph=True)  # (N, d)
    if not g.requires_grad:  # f is linear: the gradient is a constant
        H = batch.new_zeros(*batch.shape, batch.shape[1])
        return H[0] if single else H
    rows = []
    for i in range(batch.shape[1]):
        (row,) = torch.autograd.grad(g[:, i].sum(), batch, retain_graph=True, allow_unused=True)
        rows.append(torch.zeros_like(batch) if row is None else row)  # None: g_i does not depend on θ
    H = torch.stack(rows, dim=1)  # (N, d, d): H[n, i, :] = ∂g_i/∂θ at point n
    H = (H + H.transpose(1, 2)) / 2  # symmetric in exact arithmetic; remove rounding asymmetry
    return H[0] if single else H


def second_order_approx(f: Loss, center: Tensor, points: Tensor) -> Tensor:
    """Taylor's L(θ') + (θ - θ')ᵀg + ½ (θ - θ')ᵀH(θ - θ') around θ' = center, at points (N, d)."""
    if center.dim() != 1 or points.dim() != 2 or points.shape[1] != center.shape[0]:
        raise ValueError(f"expected center (d,) and points (N, d), got {tuple(center.shape)} "
                         f"and {tuple(points.shape)}")
    g, H = gradient(f, center), hessian(f, center)  # (d,), (d, d)
    delta = points - center  # (N, d)
    with torch.no_grad():
        return f(center) + delta @ g + 0.5 * torch.einsum("ni,ij,nj->n", delta, H, delta)  # (N,)


class CriticalPoint(NamedTuple):
    kind: str  # "minimum", "maximum", "saddle" or "degenerate"
    eigenvalues: Tensor  # of the Hessian, ascending
    eigenvectors: Tensor  # columns, in the order of the eigenvalues


def kind_from_eigenvalues(eigenvalues: Tensor, *, tol: float = 1e-6) -> str:
    """What the second-order test concludes from a Hessian's eigenvalues.

    Eigenvalues of both signs make a saddle even if some are zero: the negative one already
    gives a direction of descent. Otherwise any |λ| <= tol leaves the test undecided.
    """
    if (eigenvalues < -tol).any() and (eigenvalues > tol).any():
        return "saddle"
    if (eigenvalues > tol).all():
        return "minimum"
    if (eigenvalues < -tol).all():
        return "maximum"
    return "degenerate"


def classify_critical_point(f: Loss, theta: Tensor, *, tol: float = 1e-6,
                            grad_tol: float = 1e-6) -> CriticalPoint:
    """Classify a critical point theta (d,) of f by the eigenvalues of its Hessian."""
    if theta.dim() != 1:
        raise ValueError(f"theta must be one point of shape (d,), got shape {tuple(theta.shape)}")
    grad_norm = gradient(f, theta).norm().item()
    if grad_norm > grad_tol:
        raise ValueError(f"not a critical point: the gradient norm is {grad_norm:.3g} > grad_tol={grad_tol}")
    eigenvalues, eigenvectors = torch.linalg.eigh(hessian(f, theta))  # H is symmetric: real eigenvalues
    return CriticalPoint(kind_from_eigenvalues(eigenvalues, tol=tol), eigenvalues, eigenvectors)


def minimum_ratio(eigenvalues: Tensor, *, tol: float = 1e-6) -> Tensor:
    """Hung-yi Lee's "minimum ratio": the fraction of eigenvalues > tol (1 at a strict minimum)."""
    return (eigenvalues > tol).to(eigenvalues.dtype).mean(dim=-1)


def newton_on_gradient(f: Loss, starts: Tensor, *, num_steps: int = 50, damping: float = 1e-3) -> Tensor:
    """Solve ∇f(θ) = 0 from every start (N, d) at once by damped Newton steps; returns (N, d).

    Newton's step solves the linearised equation g + Hδ = 0, so it is drawn to minima, maxima and
    saddles alike (gradient descent only to minima). Far from a root, or where H is nearly
    singular, the pure step δ = -H⁻¹g can be huge, so we take the Levenberg-Marquardt step: the δ
    minimising ‖g + Hδ‖² + μ‖δ‖², i.e. (H² + μI)δ = -Hg. A step that lowers ‖g‖ is taken and μ
    shrinks (towards pure Newton, quadratic convergence); otherwise μ grows (shorter steps).
    """
    if starts.dim() != 2:
        raise ValueError(f"starts must be (N, d), got shape {tuple(starts.shape)}")
    if num_steps < 1:
        raise ValueError(f"num_steps must be at least 1, got {num_steps}")
    theta = starts.detach().to(torch.float64).clone()  # (N, d)
    eye = torch.eye(theta.shape[1], dtype=theta.dtype)
    mu = torch.full((len(theta), 1, 1), damping, dtype=theta.dtype)  # (N, 1, 1): one damping per start
    with one_thread():
        g = gradient(f, theta)  # (N, d)
        for _ in range(num_steps):
            H = hessian(f, theta)  # (N, d, d)
            step = torch.linalg.solve(H @ H + mu * eye, H @ g[..., None])[..., 0]  # (N, d)
            candidate = theta - step
            g_new = gradient(f, candidate)
            better = (g_new.norm(dim=-1) < g.norm(dim=-1))[:, None]  # (N, 1); NaN compares False
            theta, g = torch.where(better, candidate, theta), torch.where(better, g_new, g)
            mu = torch.where(better[..., None], mu / 3, mu * 4).clamp(1e-12, 1e12)
    return theta


def find_critical_points(f: Loss, *, starts: Tensor, num_steps: int = 50,
                         grad_tol: float = 1e-8, merge_tol: float = 1e-4,
                         bounds: tuple[float, float] | None = None) -> Tensor:
    """Critical points of f reached by Newton's method from a grid of starts (N, d): (K, d), K <= N.

    Keeps the end points whose gradient norm is below ``grad_tol`` (a run may also stall where
    ‖∇f‖ has a local minimum above zero, or wander off), inside ``bounds`` if given, and drops
    repeats closer than ``merge_tol``.
    """
    theta = newton_on_gradient(f, starts, num_steps=num_steps)  # (N, d)
    finite = torch.isfinite(theta).all(dim=-1)
    ok = finite & (gradient(f, torch.where(finite[:, None], theta, 0.0)).norm(dim=-1) < grad_tol)
    if bounds is not None:
        ok &= ((theta >= bounds[0]) & (theta <= bounds[1])).all(dim=-1)
    points = theta[ok]  # (K, d)
    close = torch.cdist(points, points) <= merge_tol  # (K, K)
    keep = torch.ones(len(points), dtype=torch.bool)
    for i in range(len(points)):  # greedy: a kept point removes its later repeats
        if keep[i]:
            keep[i + 1:] &= ~close[i, i + 1:]
    return points[keep]


# --- Example losses -------------------------------------------------------------------------


def two_weight_loss(theta: Tensor) -> Tensor:
    """L(w1, w2) = (1 - w1 w2)²: the network y = w1 w2 x trained on the single point (x, y) = (1, 1)."""
    w1, w2 = theta[..., 0], theta[..., 1]
    return (1 - w1 * w2) ** 2


def himmelblau(theta: Tensor) -> Tensor:
    """(x² + y - 11)² + (x + y² - 7)²: four minima, one maximum and four saddles."""
    x, y = theta[..., 0], theta[..., 1]
    return (x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2


# --- A small network as a function of one flat parameter vector ------------------------------


def mlp_loss(theta: Tensor, X: Tensor, y: Tensor, *, widths: Sequence[int]) -> Tensor:
    """Mean squared error of a tanh MLP whose weights and biases are packed in theta (..., P).

    The layout is layer by layer: W (fan_in, fan_out) row-major, then b (fan_out,), so
    P = ml_basics.mlp_num_params(widths). X is (n, widths[0]), y is (n,); tanh keeps the loss smooth,
    so its Hessian exists everywhere (ReLU's would be zero or undefined in its kinks).
    """
    P = ml_basics.mlp_num_params(widths)
    if theta.shape[-1] != P:
        raise ValueError(f"widths {tuple(widths)} need {P} parameters, theta has {theta.shape[-1]}")
    if X.dim() != 2 or X.shape[1] != widths[0] or y.shape != X.shape[:1]:
        raise ValueError(f"expected X (n, {widths[0]}) and y (n,), got {tuple(X.shape)} and {tuple(y.shape)}")
    batch = theta.shape[:-1]
    h = X.expand(*batch, *X.shape)  # (..., n, fan_in)
    offset = 0
    for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
        W = theta[..., offset:offset + fan_in * fan_out].reshape(*batch, fan_in, fan_out)  # (..., in, out)
        offset += fan_in * fan_out
        b = theta[..., offset:offset + fan_out]  # (..., out)
        offset += fan_out
        h = h @ W + b[..., None, :]  # (..., n, out)
        if i < len(widths) - 2:
            h = torch.tanh(h)
    return ((h[..., 0] - y) ** 2).mean(dim=-1)  # (...)


def init_mlp_params(widths: Sequence[int], *, num_models: int, generator: torch.Generator) -> Tensor:
    """Flat parameters for ``num_models`` networks, (num_models, P), uniform in ±1/sqrt(fan_in) like nn.Linear."""
    fan_ins = torch.tensor([fan_in for fan_in, fan_out in zip(widths[:-1], widths[1:])
                            for _ in range((fan_in + 1) * fan_out)], dtype=torch.float64)  # (P,)
    u = torch.rand(num_models, len(fan_ins), generator=generator, dtype=torch.float64)  # (M, P)
    return (2 * u - 1) / fan_ins.sqrt()


def mlp_critical_points(X: Tensor, y: Tensor, *, widths: Sequence[int], num_models: int, lr: float,
                        train_steps: int, newton_steps: int, generator: torch.Generator,
                        grad_tol: float = 1e-8, tol: float = 1e-6) -> dict[str, Tensor]:
    """Train ``num_models`` networks by gradient descent until they nearly stall, then let Newton's
    method find the critical point next to where each one stopped; describe its Hessian.

    Returns, per network whose Newton run converged (gradient norm < grad_tol): the loss there,
    the minimum ratio, the smallest and largest eigenvalue, how many eigenvalues are negative and
    how many zero (within tol), the loss and gradient norm where gradient descent stopped, and
    how far Newton moved; plus ``converged``, the number of such networks.
    """
    loss = lambda theta: mlp_loss(theta, X, y, widths=widths)  # noqa: E731
    start = init_mlp_params(widths, num_models=num_models, generator=generator)  # (M, P)
    with one_thread():
        trained = ml_basics.gradient_descent(loss, start, lr=lr, num_steps=train_steps)[-1]  # (M, P)
    ends = newton_on_gradient(loss, trained, num_steps=newton_steps)  # (M, P)
    ok = gradient(loss, ends).norm(dim=-1) < grad_tol  # NaN (diverged) compares False
    ends, trained = ends[ok], trained[ok]  # (K, P)
    eig = torch.linalg.eigvalsh(hessian(loss, ends))  # (K, P), ascending
    gd_grad = gradient(loss, trained).norm(dim=-1)
    with torch.no_grad():
        return dict(loss=loss(ends), ratio=minimum_ratio(eig, tol=tol), min_eig=eig[:, 0], max_eig=eig[:, -1],
                    num_negative=(eig < -tol).sum(dim=-1), num_zero=(eig.abs() <= tol).sum(dim=-1),
                    gd_loss=loss(trained), gd_grad=gd_grad, moved=(ends - trained).norm(dim=-1),
                    converged=ok.sum())
