"""Machine-learning basics: the three steps, learning rates, sigmoid/ReLU pieces, overfitting, depth.

Everything here is one-dimensional on purpose: a model with one input can be drawn, its loss
surface can be drawn, and its linear pieces can be counted.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
from torch import Tensor, nn

from dlnotes import data

# --- Step 2: a loss; step 3: gradient descent ---------------------------------------------


def mae(y_hat: Tensor, y: Tensor) -> Tensor:
    """Mean absolute error (1/N) Σ |y - y_hat| over the last dimension."""
    _check_same_shape(y_hat, y)
    return (y - y_hat).abs().mean(dim=-1)


def mse(y_hat: Tensor, y: Tensor) -> Tensor:
    """Mean squared error (1/N) Σ (y - y_hat)² over the last dimension."""
    _check_same_shape(y_hat, y)
    return ((y - y_hat) ** 2).mean(dim=-1)


def _check_same_shape(y_hat: Tensor, y: Tensor) -> None:
    if y_hat.shape[-1] != y.shape[-1]:
        raise ValueError(f"y_hat has {y_hat.shape[-1]} examples in its last dimension but y has {y.shape[-1]}")


def loss_grid(x: Tensor, y: Tensor, *, ws: Tensor, bs: Tensor, loss: Callable = mse) -> Tensor:
    """The loss of y_hat = b + w x for every (b, w) on a grid: (len(bs), len(ws))."""
    y_hat = bs[:, None, None] + ws[None, :, None] * x  # (B, W, N)
    return loss(y_hat, y.expand_as(y_hat))  # (B, W)


def gradient_descent(loss_fn: Callable[[Tensor], Tensor], start: Tensor, *, lr: float | Tensor,
                     num_steps: int) -> Tensor:
    """Plain gradient descent θ <- θ - lr ∂L/∂θ; returns the path, (num_steps + 1, *start.shape).

    ``loss_fn`` may return one loss or one per entry of ``start`` (then entries are independent
    runs: their losses are summed, which leaves each gradient its own). ``lr`` may be a tensor
    that broadcasts against ``start``, to run several learning rates at once.
    """
    if num_steps < 0:
        raise ValueError(f"num_steps must be >= 0, got {num_steps}")
    theta = start.detach().clone().requires_grad_(True)
    path = [theta.detach().clone()]
    for _ in range(num_steps):
        (grad,) = torch.autograd.grad(loss_fn(theta).sum(), theta)
        with torch.no_grad():
            theta -= lr * grad
        path.append(theta.detach().clone())
    return torch.stack(path)


# --- Learning rate and local minima on a 1-D loss -------------------------------------------


def bumpy_loss(w: Tensor) -> Tensor:
    """A 1-D loss with three valleys: wide and deepest near 0, narrow near 3, wide but shallow near -3.2."""
    return (0.02 * w**2 - torch.exp(-w**2 / 2) - 0.8 * torch.exp(-(w - 3) ** 2 / (2 * 0.3**2))
            - 0.6 * torch.exp(-(w + 3.5) ** 2 / 2))


def local_minima(f: Callable[[Tensor], Tensor], *, lo: float, hi: float, num_points: int = 100_001) -> Tensor:
    """Where f (elementwise) has a local minimum on a fine grid over [lo, hi] (float64)."""
    w = torch.linspace(lo, hi, num_points, dtype=torch.float64)
    v = f(w)
    inner = (v[1:-1] < v[:-2]) & (v[1:-1] < v[2:])
    return w[1:-1][inner]


def classify_runs(path: Tensor, minima: Tensor, *, window: int = 20, tol: float = 1e-3) -> Tensor:
    """Where each run of ``gradient_descent`` ended, from its path (T, *runs).

    Returns, per run: the index of the minimum it settled in; -1 if it is still creeping in one
    direction (too small a step); -2 if it oscillates or diverged (too large a step).
    """
    last = path[-window:]  # (window, *runs)
    settled = (last.amax(0) - last.amin(0)) < tol
    distance = (path[-1][..., None] - minima).abs()  # (*runs, num_minima)
    steps = torch.diff(last, dim=0)
    monotone = (steps >= 0).all(0) | (steps <= 0).all(0)
    out = torch.full(path.shape[1:], -2, dtype=torch.long)
    out[~settled & monotone] = -1
    out[settled] = distance.argmin(-1)[settled]
    return out


# --- Building blocks: sigmoid, hard sigmoid, ReLU -------------------------------------------


def sigmoid_unit(x: Tensor, *, c: float, b: float, w: float) -> Tensor:
    """y = c / (1 + exp(-(b + w x))): height c, centre at x = -b/w, steepness w."""
    return c * torch.sigmoid(b + w * x)


def hard_sigmoid(x: Tensor, *, c: float, b: float, b2: float, w: float) -> Tensor:
    """c [max(0, b + w x) - max(0, b' + w x)]: two ReLUs make a ramp between two flat parts."""
    return c * (torch.relu(b + w * x) - torch.relu(b2 + w * x))


def piecewise_linear(x: Tensor, *, knots_x: Tensor, knots_y: Tensor) -> Tensor:
    """Straight lines between the knots (knots_x increasing), constant outside them (like np.interp)."""
    x = x.clamp(knots_x[0].item(), knots_x[-1].item())
    i = torch.searchsorted(knots_x, x, right=True).clamp(1, len(knots_x) - 1)  # right end of x's piece
    x0, x1, y0, y1 = knots_x[i - 1], knots_x[i], knots_y[i - 1], knots_y[i]
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0)


def relu_net_from_knots(xs: Tensor, ys: Tensor) -> nn.Sequential:
    """A one-hidden-layer ReLU net that passes exactly through the points (xs, ys) (xs increasing).

    Between the knots it is the straight-line interpolation: f(x) = ys[0] + Σ_i a_i relu(x - xs[i])
    with a_i the change of slope at xs[i] (the first a_0 is the first slope). Exact on
    [xs[0], xs[-1]]; len(xs) - 1 hidden units for len(xs) - 1 pieces.
    """
    xs, ys = torch.as_tensor(xs, dtype=torch.float64), torch.as_tensor(ys, dtype=torch.float64)
    if xs.ndim != 1 or xs.shape != ys.shape or len(xs) < 2:
        raise ValueError(f"need 1-D xs and ys of the same length >= 2, got {tuple(xs.shape)} and {tuple(ys.shape)}")
    if not (torch.diff(xs) > 0).all():
        raise ValueError("xs must be strictly increasing")
    slopes = torch.diff(ys) / torch.diff(xs)  # (K-1,): slope of each piece
    changes = torch.diff(slopes, prepend=torch.zeros(1, dtype=torch.float64))  # (K-1,)
    net = nn.Sequential(nn.Linear(1, len(slopes)), nn.ReLU(), nn.Linear(len(slopes), 1)).double()
    with torch.no_grad():
        net[0].weight.fill_(1.0)  # (K-1, 1): every unit sees x ...
        net[0].bias.copy_(-xs[:-1])  # ... and bends at its own knot
        net[2].weight.copy_(changes[None, :])  # (1, K-1)
        net[2].bias.fill_(ys[0].item())
    return net


class SigmoidSum(nn.Module):
    """y = b + Σ_i c_i σ(b_i + w_i x): a constant plus ``num_pieces`` sigmoids, for x in [0, 1].

    Each sigmoid starts with its centre -b_i/w_i uniform in [0, 1] and steepness w_i ~ N(0, 10²),
    and with c_i = 0, so the model starts as the constant b = 0.
    """

    def __init__(self, num_pieces: int, *, steepness: float = 10.0):
        super().__init__()
        if num_pieces < 1:
            raise ValueError(f"num_pieces must be >= 1, got {num_pieces}")
        self.w = nn.Parameter(steepness * torch.randn(num_pieces))
        self.b = nn.Parameter(-self.w.detach() * torch.rand(num_pieces))
        self.c = nn.Parameter(torch.zeros(num_pieces))
        self.bias = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor) -> Tensor:  # x (N,) -> (N,)
        return self.bias + torch.sigmoid(self.b + self.w * x[:, None]) @ self.c  # (N, P) @ (P,)


def fit_curve(model: nn.Module, x: Tensor, y: Tensor, *, lr: float, num_steps: int) -> Tensor:
    """Fit ``model(x)`` to ``y`` by full-batch Adam on the MSE; returns the loss per step.

    A model that holds several independent nets returns (M, N) and gets (num_steps, M) losses.
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(num_steps):
        loss = mse(model(x), y)  # () or (M,)
        optimizer.zero_grad()
        loss.sum().backward()  # nets are independent: summing keeps each net's own gradient
        optimizer.step()
        losses.append(loss.detach())
    return torch.stack(losses)


# --- Overfitting: polynomials of growing degree ---------------------------------------------


def polynomial_features(x: Tensor, *, degree: int) -> Tensor:
    """(N,) -> (N, degree + 1): the columns 1, x, x², ..., x^degree."""
    return x[:, None] ** torch.arange(degree + 1, dtype=x.dtype)  # (N, D+1)


def fit_polynomial(x: Tensor, y: Tensor, *, degree: int) -> Tensor:
    """Least-squares coefficients (degree + 1,) of a polynomial through (x, y), in float64."""
    X = polynomial_features(x.double(), degree=degree)  # (N, D+1)
    return torch.linalg.lstsq(X, y.double()[:, None], driver="gelsd").solution[:, 0]


def polynomial_mse(coeffs: Tensor, x: Tensor, y: Tensor) -> float:
    """MSE of the polynomial with these coefficients on (x, y)."""
    y_hat = polynomial_features(x.double(), degree=len(coeffs) - 1) @ coeffs  # (N,)
    return mse(y_hat, y.double()).item()


def k_fold_mse(x: Tensor, y: Tensor, *, degree: int, k: int) -> float:
    """k-fold cross-validation: mean held-out MSE over k folds (k = len(x) is leave-one-out).

    The folds take every k-th example (:func:`dlnotes.data.k_fold_splits`); shuffle the data
    first if its order means something.
    """
    errors = []
    for train_idx, held_out in data.k_fold_splits(len(x), k=k):
        coeffs = fit_polynomial(x[train_idx], y[train_idx], degree=degree)
        errors.append(polynomial_mse(coeffs, x[held_out], y[held_out]) * len(held_out))
    return sum(errors) / len(x)


# --- Why deep: the triangle map, pieces and parameters --------------------------------------


def triangle_wave(x: Tensor, *, depth: int) -> Tensor:
    """The tent map t(x) = 2 relu(x) - 4 relu(x - 1/2) on [0, 1] composed ``depth`` times.

    Closed form: 2^(depth-1) teeth of height 1, so 2^depth linear pieces.
    """
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    return 1 - (1 - 2 * torch.frac(2 ** (depth - 1) * x)).abs()


def triangle_net(depth: int) -> nn.Sequential:
    """A ReLU net of width 2 and ``depth`` hidden layers that computes triangle_wave exactly on [0, 1]."""
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    layers: list[nn.Module] = []
    for i in range(depth):
        linear = nn.Linear(1 if i == 0 else 2, 2)
        with torch.no_grad():
            # hidden units relu(t) and relu(t - 1/2) of the previous output t = 2 h_1 - 4 h_2
            linear.weight.copy_(torch.ones(2, 1) if i == 0 else torch.tensor([[2.0, -4.0], [2.0, -4.0]]))
            linear.bias.copy_(torch.tensor([0.0, -0.5]))
        layers += [linear, nn.ReLU()]
    out = nn.Linear(2, 1)
    with torch.no_grad():
        out.weight.copy_(torch.tensor([[2.0, -4.0]]))
        out.bias.zero_()
    return nn.Sequential(*layers, out)


def count_linear_pieces(x: Tensor, y: Tensor, *, tol: float = 1e-6) -> Tensor:
    """Linear pieces of a piecewise-linear curve sampled at increasing x (N,); y is (..., N).

    Counts the places where the slope changes. A kink between two grid points changes the slope
    twice in a row (the straddling segment has an in-between slope): such runs count once, so
    kinks must be more than two grid steps apart. Use float64 for trained nets.
    """
    slopes = torch.diff(y, dim=-1) / torch.diff(x)  # (..., N-1)
    scale = 1 + slopes.abs().amax(-1, keepdim=True)
    change = torch.diff(slopes, dim=-1).abs() > tol * scale  # (..., N-2)
    previous = torch.cat([torch.zeros_like(change[..., :1]), change[..., :-1]], dim=-1)
    return (change & ~previous).sum(-1) + 1


def mlp(widths: Sequence[int]) -> nn.Sequential:
    """Linear layers of these widths (input first, output last) with a ReLU between them."""
    layers: list[nn.Module] = []
    for fan_in, fan_out in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def mlp_num_params(widths: Sequence[int]) -> int:
    """Weights plus biases of ``mlp(widths)``: Σ (fan_in + 1) fan_out."""
    return sum((fan_in + 1) * fan_out for fan_in, fan_out in zip(widths[:-1], widths[1:]))


class ParallelMLP(nn.Module):
    """``num_models`` independent copies of ``mlp(widths)``, each with its own random start.

    One batched matrix product per layer trains many seeds in the time of one. Initialised
    like nn.Linear: weights and biases uniform in ±1/sqrt(fan_in).
    """

    def __init__(self, widths: Sequence[int], *, num_models: int):
        super().__init__()
        self.weights, self.biases = nn.ParameterList(), nn.ParameterList()
        for fan_in, fan_out in zip(widths[:-1], widths[1:]):
            bound = 1 / math.sqrt(fan_in)
            self.weights.append(nn.Parameter(torch.empty(num_models, fan_in, fan_out).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(num_models, 1, fan_out).uniform_(-bound, bound)))

    def forward(self, X: Tensor) -> Tensor:  # X (N,) or (N, d) shared, or (M, N, d) one set per model -> (M, N)
        M = self.weights[0].shape[0]
        h = X[:, None] if X.ndim == 1 else X  # (N, d) or (M, N, d)
        h = h.expand(M, -1, -1) if h.ndim == 2 else h  # (M, N, d)
        if h.shape[0] != M:
            raise ValueError(f"got data for {h.shape[0]} models, but there are {M}")
        for i, (W, b) in enumerate(zip(self.weights, self.biases)):
            h = torch.baddbmm(b, h, W)  # (M, N, fan_in) @ (M, fan_in, fan_out) + (M, 1, fan_out)
            if i < len(self.weights) - 1:
                h = self.after_hidden(torch.relu(h), layer=i)
        return h[..., 0]  # (M, N)

    def after_hidden(self, h: Tensor, *, layer: int) -> Tensor:
        """What follows hidden layer ``layer``'s ReLU: nothing here (dropout adds its masks)."""
        return h
