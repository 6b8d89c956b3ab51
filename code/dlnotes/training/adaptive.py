"""Adaptive learning rates: AdaGrad, RMSProp, Adam and AdamW, and learning-rate schedules with warm-up.

Each optimiser is a few lines that make exactly the update of its ``torch.optim`` counterpart
(the tests run both side by side, step by step). They share one frame, ``ScratchOptimizer``:
a list of parameters, a state dictionary per parameter, and ``update(p, g, state)``, the change
of one parameter given its gradient. What differs between them is only what they remember about
past gradients and how they divide by it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import torch
from torch import Tensor, nn

from dlnotes import data, train
from dlnotes.basics import linreg, ml_basics


class ScratchOptimizer:
    """The frame of the scratch optimisers: parameters, per-parameter state, ``step`` and ``zero_grad``.

    ``lr`` is a plain attribute, so a schedule can change it between steps. A parameter without a
    gradient is skipped and its state does not advance, as in ``torch.optim``.
    """

    def __init__(self, params: Iterable[nn.Parameter], *, lr: float, eps: float):
        if not lr > 0:
            raise ValueError(f"lr must be positive, got {lr}")
        if not eps >= 0:
            raise ValueError(f"eps must be >= 0, got {eps}")
        self.params, self.lr, self.eps = list(params), lr, eps
        self.states: list[dict[str, Tensor | int]] = [{} for _ in self.params]

    @torch.no_grad()
    def step(self) -> None:
        for p, state in zip(self.params, self.states):
            if p.grad is None:
                continue
            state["step"] = state.get("step", 0) + 1
            self.update(p, p.grad, state)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def update(self, p: Tensor, g: Tensor, state: dict) -> None:
        raise NotImplementedError


def _check_decay_rate(name: str, value: float) -> None:
    if not 0 <= value < 1:
        raise ValueError(f"{name} must lie in [0, 1), got {value}")


class AdaGradScratch(ScratchOptimizer):
    """AdaGrad (torch.optim.Adagrad with its defaults): each coordinate divides by its own history.

        s <- s + g²,    p <- p - lr g / (√s + eps).

    A coordinate with large gradients gets small steps and vice versa. Because s only grows, the
    effective learning rate lr / √s falls like 1 / √t even where the gradient stays the same.
    """

    def __init__(self, params: Iterable[nn.Parameter], *, lr: float, eps: float = 1e-10):
        super().__init__(params, lr=lr, eps=eps)

    def update(self, p: Tensor, g: Tensor, state: dict) -> None:
        s = state.setdefault("sum_sq", torch.zeros_like(p))
        s.add_(g * g)
        p.sub_(self.lr * g / (s.sqrt() + self.eps))


class RMSPropScratch(ScratchOptimizer):
    """RMSProp (torch.optim.RMSprop, no momentum, not centred): a leaky average instead of a sum.

        s <- alpha s + (1 - alpha) g²,    p <- p - lr g / (√s + eps).

    s forgets gradients older than about 1 / (1 - alpha) steps, so the step no longer dies out.
    """

    def __init__(self, params: Iterable[nn.Parameter], *, lr: float, alpha: float = 0.99, eps: float = 1e-8):
        _check_decay_rate("alpha", alpha)
        super().__init__(params, lr=lr, eps=eps)
        self.alpha = alpha

    def update(self, p: Tensor, g: Tensor, state: dict) -> None:
        s = state.setdefault("mean_sq", torch.zeros_like(p))
        s.mul_(self.alpha).add_((1 - self.alpha) * g * g)
        p.sub_(self.lr * g / (s.sqrt() + self.eps))


class AdamScratch(ScratchOptimizer):
    """Adam (torch.optim.Adam), or AdamW with ``decoupled=True`` (torch.optim.AdamW).

        m <- b1 m + (1 - b1) g,          v <- b2 v + (1 - b2) g²        (momentum, RMSProp)
        m̂ = m / (1 - b1^t),              v̂ = v / (1 - b2^t)            (bias correction)
        p <- p - lr m̂ / (√v̂ + eps).

    ``weight_decay`` λ: coupled (Adam) adds λ p to g before everything else, so the division
    rescales the decay too; decoupled (AdamW) first multiplies p by 1 - lr λ. With
    ``bias_correction=False`` m and v are used as they are, which makes the first steps too large
    (m and v start at zero and are divided differently).
    """

    def __init__(self, params: Iterable[nn.Parameter], *, lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, decoupled: bool = False,
                 bias_correction: bool = True):
        for name, beta in zip(("betas[0]", "betas[1]"), betas):
            _check_decay_rate(name, beta)
        if not weight_decay >= 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        super().__init__(params, lr=lr, eps=eps)
        self.betas, self.weight_decay = betas, weight_decay
        self.decoupled, self.bias_correction = decoupled, bias_correction

    def update(self, p: Tensor, g: Tensor, state: dict) -> None:
        b1, b2 = self.betas
        if self.weight_decay and self.decoupled:
            p.mul_(1 - self.lr * self.weight_decay)
        elif self.weight_decay:
            g = g + self.weight_decay * p
        m = state.setdefault("m", torch.zeros_like(p))
        v = state.setdefault("v", torch.zeros_like(p))
        m.mul_(b1).add_((1 - b1) * g)
        v.mul_(b2).add_((1 - b2) * g * g)
        t = state["step"]
        c1, c2 = (1 - b1**t, 1 - b2**t) if self.bias_correction else (1.0, 1.0)
        p.sub_(self.lr / c1 * m / (v.sqrt() / math.sqrt(c2) + self.eps))


# --- Schedules -----------------------------------------------------------------------------------


def warmup_cosine_factor(step: int, *, warmup_steps: int, total_steps: int, start_factor: float = 0.0,
                         final_factor: float = 0.0) -> float:
    """The factor the base learning rate is multiplied by at ``step`` (counted from 0).

    Linear warm-up from ``start_factor`` to 1 over ``warmup_steps`` steps, then half a cosine
    from 1 down to ``final_factor`` at ``total_steps``; after that it stays at ``final_factor``.
    """
    if not 0 <= warmup_steps < total_steps:
        raise ValueError(f"need 0 <= warmup_steps < total_steps, got {warmup_steps} and {total_steps}")
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if step < warmup_steps:
        return start_factor + (1 - start_factor) * step / warmup_steps
    progress = min(1.0, (step - warmup_steps) / (total_steps - warmup_steps))
    return final_factor + (1 - final_factor) * (1 + math.cos(math.pi * progress)) / 2


def torch_warmup_cosine(optimizer: torch.optim.Optimizer, *, warmup_steps: int, total_steps: int,
                        start_factor: float = 1e-3, final_factor: float = 0.0,
                        ) -> torch.optim.lr_scheduler.LRScheduler:
    """The same schedule from PyTorch's parts: LinearLR, then CosineAnnealingLR, joined by SequentialLR.

    LinearLR needs ``start_factor > 0``; call ``scheduler.step()`` after each ``optimizer.step()``.
    """
    if not 0 < warmup_steps < total_steps:
        raise ValueError(f"need 0 < warmup_steps < total_steps, got {warmup_steps} and {total_steps}")
    base_lr = optimizer.param_groups[0]["lr"]
    sched = torch.optim.lr_scheduler
    warmup = sched.LinearLR(optimizer, start_factor=start_factor, end_factor=1.0, total_iters=warmup_steps)
    cosine = sched.CosineAnnealingLR(optimizer, T_max=total_steps - warmup_steps, eta_min=final_factor * base_lr)
    return sched.SequentialLR(optimizer, [warmup, cosine], milestones=[warmup_steps])


# --- Running an optimiser ------------------------------------------------------------------------

MakeOptimizer = Callable[[list[nn.Parameter]], object]  # params -> an object with step() and zero_grad()


def fit_linear(X: Tensor, y: Tensor, *, make_optimizer: MakeOptimizer, num_steps: int,
               lr_factor: Callable[[int], float] | None = None) -> Tensor:
    """Full-batch training of a linear model from w = 0, b = 0; the squared loss before each step and at the end.

    X (n, d), y (n, 1) -> losses (num_steps + 1,). The optimiser needs an ``lr`` attribute (the
    scratch ones have it); ``lr_factor(step)`` scales that ``lr`` at each step (a schedule). A loss
    that stops being finite ends the run; the rest is inf.
    """
    net = nn.Linear(X.shape[1], 1)
    nn.init.zeros_(net.weight)
    nn.init.zeros_(net.bias)
    optimizer = make_optimizer(list(net.parameters()))
    base_lr = optimizer.lr
    losses = torch.full((num_steps + 1,), math.inf)
    for t in range(num_steps + 1):
        loss = linreg.squared_loss(net(X), y)
        if not torch.isfinite(loss):
            break
        losses[t] = loss.detach()
        if t == num_steps:
            break
        if lr_factor is not None:
            optimizer.lr = base_lr * lr_factor(t)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return losses


def first_step(make_optimizer: MakeOptimizer, grad: Tensor) -> Tensor:
    """The first step an optimiser takes on a parameter whose gradient is ``grad``: p_1 - p_0."""
    p = nn.Parameter(torch.zeros_like(grad))
    optimizer = make_optimizer([p])
    p.grad = grad.clone()
    optimizer.step()
    return p.detach()


def max_param_gap(make_net: Callable[[], nn.Module], *, scratch: MakeOptimizer, reference: MakeOptimizer,
                  batches: Sequence[tuple[Tensor, Tensor]], loss_fn: Callable[[Tensor, Tensor], Tensor]) -> float:
    """Train two copies of one net on the same batches, one per optimiser; the largest |parameter difference| after.

    ``make_net`` must return the same initial weights each call (seed inside it).
    """
    nets = [make_net(), make_net()]
    optimizers = [scratch(list(nets[0].parameters())), reference(list(nets[1].parameters()))]
    for X, y in batches:
        for net, optimizer in zip(nets, optimizers):
            optimizer.zero_grad()
            loss_fn(net(X), y).backward()
            optimizer.step()
    return max((a - b).abs().max().item() for a, b in zip(nets[0].parameters(), nets[1].parameters()))


@dataclass
class WarmupRun:
    """One training run of ``train_with_schedule``: the loss of every step and the final test accuracy."""

    lr: float
    warmup_steps: int
    seed: int
    losses: list[float]
    accuracy: float


def train_with_schedule(images: data.TensorData, *, widths: Sequence[int], lr: float, warmup_steps: int,
                        num_epochs: int, batch_size: int, seed: int) -> WarmupRun:
    """An MLP (``ml_basics.mlp(widths)``, images flattened) trained with torch.optim.Adam and a
    warm-up-cosine schedule.

    The schedule is ``warmup_cosine_factor`` through LambdaLR, stepped after every batch;
    ``warmup_steps=0`` is the cosine decay alone. Seeded: the same seed gives the same run.
    """
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Flatten(), ml_basics.mlp(widths))
    train_loader, test_loader = images.loaders(batch_size=batch_size, generator=torch.Generator().manual_seed(seed))
    total = num_epochs * len(train_loader)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    factor = lambda step: warmup_cosine_factor(step, warmup_steps=warmup_steps, total_steps=total)  # noqa: E731
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    losses = []
    net.train()
    for _ in range(num_epochs):
        for X, y in train_loader:
            loss = nn.functional.cross_entropy(net(X), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
    accuracy = train.evaluate(model=net, loader=test_loader, metric=train.accuracy)["accuracy"]
    return WarmupRun(lr, warmup_steps, seed, losses, accuracy)
