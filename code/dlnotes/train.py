"""Training and evaluation as plain functions: ``train_epoch``, ``evaluate``, ``fit``.

Each takes everything it uses (model, data, loss, optimizer, device) as keyword arguments.
``fit`` returns a :class:`History`. In Jupyter it shows one line of progress that updates in
place; the saved notebook (and so the built page) keeps only the final summary.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

import torch
from torch import Tensor, nn

Metric = Callable[[Tensor, Tensor], Tensor]  # (y_hat, y) -> mean over the batch


def accuracy(y_hat: Tensor, y: Tensor) -> Tensor:
    """Fraction of rows of ``y_hat`` (B, K) whose largest entry is at the label ``y`` (B,)."""
    if y_hat.ndim != 2 or y.ndim != 1 or len(y_hat) != len(y):
        raise ValueError(f"accuracy expects y_hat (B, K) and y (B,), got {tuple(y_hat.shape)} and {tuple(y.shape)}")
    return (y_hat.argmax(dim=1) == y).float().mean()


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters(), torch.empty(0)).device


def train_epoch(*, model: nn.Module, loader: Iterable, loss_fn: Callable, optimizer,
                metric: Metric | None = None, device: torch.device | None = None) -> dict[str, float]:
    """One pass over ``loader``: forward, loss (a batch mean), backward, optimizer step.

    ``optimizer`` is anything with ``zero_grad()`` and ``step()``: a ``torch.optim`` optimizer
    or a hand-written one. Returns the example-weighted mean loss (and metric), the number of
    examples and the seconds taken.
    """
    device = device or _device_of(model)
    model.train()
    total_loss = torch.zeros((), device=device)  # summed on the device: no sync per batch
    total_metric = torch.zeros((), device=device)
    n, start = 0, time.perf_counter()
    for X, y in loader:
        X, y = X.to(device), y.to(device)
        y_hat = model(X)
        loss = loss_fn(y_hat, y)
        if loss.ndim != 0:
            raise ValueError(f"loss_fn must return a scalar (the batch mean), got shape {tuple(loss.shape)}")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total_loss.add_(loss.detach(), alpha=len(y))  # one op, no temporary
        if metric is not None:
            total_metric.add_(metric(y_hat.detach(), y), alpha=len(y))
        n += len(y)
    if n == 0:
        raise ValueError("the training loader yielded no examples")
    out = {"loss": total_loss.item() / n, "examples": n, "seconds": time.perf_counter() - start}
    if metric is not None:
        out[metric.__name__] = total_metric.item() / n
    return out


@torch.no_grad()
def evaluate(*, model: nn.Module, loader: Iterable, loss_fn: Callable | None = None,
             metric: Metric | None = None, device: torch.device | None = None) -> dict[str, float]:
    """Mean loss and metric over ``loader`` in eval mode (dropout off, batch norm frozen)."""
    device = device or _device_of(model)
    model.eval()
    total_loss, total_metric, n = 0.0, 0.0, 0
    for X, y in loader:
        X, y = X.to(device), y.to(device)
        y_hat = model(X)
        if loss_fn is not None:
            total_loss += loss_fn(y_hat, y).item() * len(y)
        if metric is not None:
            total_metric += metric(y_hat, y).item() * len(y)
        n += len(y)
    if n == 0:
        raise ValueError("the evaluation loader yielded no examples")
    out: dict[str, float] = {"examples": n}
    if loss_fn is not None:
        out["loss"] = total_loss / n
    if metric is not None:
        out[metric.__name__] = total_metric / n
    return out


@dataclass
class History:
    """Per-epoch numbers of one ``fit`` call, e.g. ``history["test_accuracy"][-1]``."""

    metrics: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0  # wall time of the training passes (evaluation excluded)
    examples: int = 0  # training examples processed

    def __getitem__(self, key: str) -> list[float]:
        if key not in self.metrics:
            raise KeyError(f"no {key!r} in this history; it has {', '.join(self.metrics)}")
        return self.metrics[key]

    def final(self, key: str) -> float:
        return self[key][-1]

    @property
    def num_epochs(self) -> int:
        return len(next(iter(self.metrics.values()), []))

    @property
    def examples_per_second(self) -> float:
        return self.examples / self.seconds if self.seconds else float("nan")

    def summary(self) -> str:
        last = ", ".join(f"{k} {v[-1]:.4g}" for k, v in self.metrics.items())
        return (f"{self.num_epochs} epochs: {last}; "
                f"{self.examples_per_second:,.0f} examples/s, {self.seconds:.1f} s training")

    def __repr__(self) -> str:
        return f"History({self.summary()})"


class _Progress:
    """One line that updates in place in Jupyter, or a line per epoch in a terminal."""

    def __init__(self, enabled: bool):
        self.handle = None
        self.enabled = enabled
        if enabled:
            try:
                from IPython import get_ipython
                from IPython.display import display

                if get_ipython() is not None and hasattr(get_ipython(), "kernel"):
                    self.handle = display({"text/plain": "starting ..."}, raw=True, display_id=True)
            except ImportError:  # IPython is optional
                pass

    def update(self, text: str) -> None:
        if not self.enabled:
            return
        if self.handle is not None:
            self.handle.update({"text/plain": text}, raw=True)
        else:
            print(text, flush=True)


def fit(*, model: nn.Module, train_loader: Iterable, loss_fn: Callable, optimizer, num_epochs: int,
        test_loader: Iterable | None = None, metric: Metric | None = None,
        device: torch.device | str | None = None, progress: bool = True) -> History:
    """Train for ``num_epochs``; after each epoch evaluate on ``test_loader`` if given.

    Records ``train_loss`` (the mean over the epoch's batches, while the weights moved),
    ``train_<metric>``, and ``test_loss`` / ``test_<metric>``.
    """
    if num_epochs < 1:
        raise ValueError(f"num_epochs must be at least 1, got {num_epochs}")
    if device is not None:
        model.to(device)
    device = torch.device(device) if device is not None else _device_of(model)
    history, bar = History(), _Progress(progress)
    for epoch in range(1, num_epochs + 1):
        stats = train_epoch(model=model, loader=train_loader, loss_fn=loss_fn, optimizer=optimizer,
                            metric=metric, device=device)
        history.seconds += stats.pop("seconds")
        history.examples += int(stats.pop("examples"))
        row = {f"train_{k}": v for k, v in stats.items()}
        if test_loader is not None:
            test = evaluate(model=model, loader=test_loader, loss_fn=loss_fn, metric=metric, device=device)
            test.pop("examples")
            row.update({f"test_{k}": v for k, v in test.items()})
        for k, v in row.items():
            history.metrics.setdefault(k, []).append(v)
        bar.update(f"epoch {epoch}/{num_epochs}: " + history.summary().split(": ", 1)[1])
    bar.update(history.summary())
    return history
