"""What the package's conveniences cost in speed: measured, not assumed.

Two comparisons, each on the same model, data and optimizer, timed in turns (A, B, A, B, ...)
so that anything else the machine does slows both alike:

* :func:`loop_ratio`: the book's training loop (:func:`dlnotes.train.train_epoch` over a
  :class:`~dlnotes.data.TensorLoader`, recording the loss and the accuracy) against the loop a
  reader writes by hand that records the same two numbers (slice, forward, loss, backward, step,
  ``loss.item()``, count the hits). With ``record=False`` both record nothing but what
  ``train_epoch`` always records (its loss), which prices the bookkeeping itself.
* :func:`loader_ratio`: minibatches sliced from tensors against a per-sample ``Dataset`` read
  through ``torch.utils.data.DataLoader``, both shuffled, both feeding the same training step.

Each returns examples per second of both and their ratio. ``python -m dlnotes.booktools.buildbench`` runs
them for the appendix's table.
"""

from __future__ import annotations

import copy
import statistics
from typing import Callable

import torch
from torch import Tensor, nn

from dlnotes import train
from dlnotes.cnn import lenet
from dlnotes.data import TensorLoader
from dlnotes.timing import time_in_turns

MODELS = ("mlp", "lenet", "resnet18")


def make_model(name: str, *, num_classes: int = 10) -> nn.Module:
    """The nets the book trains most: its MLP, LeNet (ReLU, max pooling) and ResNet-18."""
    if name == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 256), nn.ReLU(), nn.Linear(256, num_classes))
    if name == "lenet":
        return lenet.lenet(activation="relu", pool="max")
    if name == "resnet18":
        from dlnotes.cnn.resnet import resnet18

        return resnet18(num_classes)
    raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")


def synthetic_images(num_examples: int, *, size: int = 28, seed: int = 0,
                     device: torch.device | str = "cpu") -> tuple[Tensor, Tensor]:
    """Random images (N, 1, size, size) and labels (N,): speed does not depend on the pixels."""
    if num_examples < 1 or size < 1:
        raise ValueError(f"need at least one example of at least 1x1 pixels, got {num_examples}, {size}")
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(num_examples, 1, size, size, generator=g)
    y = torch.randint(0, 10, (num_examples,), generator=g)
    return X.to(device), y.to(device)


class PerSampleDataset(torch.utils.data.Dataset):
    """The usual map-style data set: one (image, label) pair per ``__getitem__`` call."""

    def __init__(self, X: Tensor, y: Tensor):
        self.X, self.y = X, y

    def __len__(self) -> int:
        return len(self.X)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        return self.X[i], self.y[i]


def bare_epoch(*, model: nn.Module, X: Tensor, y: Tensor, batch_size: int, loss_fn: Callable,
               optimizer: torch.optim.Optimizer, record: bool = True) -> tuple[float, float]:
    """The hand-written loop: contiguous slices, forward, loss, backward, step.

    With ``record`` it sums the loss and counts the hits, as such loops usually do; returns the
    mean loss and accuracy (NaN when not recorded).
    """
    model.train()
    total_loss, hits = 0.0, 0
    for i in range(0, len(X), batch_size):
        Xb, yb = X[i:i + batch_size], y[i:i + batch_size]
        y_hat = model(Xb)
        loss = loss_fn(y_hat, yb)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if record:
            total_loss += loss.item() * len(yb)
            hits += (y_hat.argmax(dim=1) == yb).sum().item()
    n = len(X) if record else float("nan")
    return total_loss / n, hits / n


def _setup(model_name: str, *, lr: float, device: torch.device) -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = make_model(model_name).to(device)
    return model, torch.optim.SGD(model.parameters(), lr=lr)


def _throughputs(times: dict[str, list[float]], *, first: str, second: str, examples: int) -> dict[str, float]:
    """Examples/s of both (median turn), their ratio (the median of the turns' ratios), the turns."""
    out = {f"{name}_examples_per_s": examples / statistics.median(t) for name, t in times.items()}
    out["ratio"] = statistics.median(b / a for a, b in zip(times[first], times[second]))
    out["turns"] = len(times[first])
    return out


def loop_ratio(*, model: str = "mlp", num_examples: int = 8192, batch_size: int = 256, repeats: int = 61,
               record: bool = True, lr: float = 0.05, device: torch.device | str = "cpu") -> dict[str, float]:
    """Examples/s of the package's loop and of the bare loop; ``ratio`` = package / bare."""
    device = torch.device(device)
    X, y = synthetic_images(num_examples, device=device)
    bare_model, bare_opt = _setup(model, lr=lr, device=device)
    pkg_model = copy.deepcopy(bare_model)  # the same starting weights
    pkg_opt = torch.optim.SGD(pkg_model.parameters(), lr=lr)
    loader = TensorLoader(X, y, batch_size=batch_size)
    loss_fn = nn.CrossEntropyLoss()
    metric = train.accuracy if record else None
    times = time_in_turns({
        "package": lambda: train.train_epoch(model=pkg_model, loader=loader, loss_fn=loss_fn,
                                             optimizer=pkg_opt, metric=metric, device=device),
        "bare": lambda: bare_epoch(model=bare_model, X=X, y=y, batch_size=batch_size, loss_fn=loss_fn,
                                   optimizer=bare_opt, record=record),
    }, repeats=repeats, device=device)
    return _throughputs(times, first="package", second="bare", examples=num_examples)


def loader_ratio(*, model: str = "mlp", num_examples: int = 8192, batch_size: int = 256, repeats: int = 11,
                 lr: float = 0.05, device: torch.device | str = "cpu") -> dict[str, float]:
    """Examples/s of a training epoch fed by TensorLoader and by Dataset + DataLoader (both shuffled).

    ``ratio`` = tensor / dataloader. The data sit on ``device`` for the tensor loader; the
    DataLoader reads per-sample tensors from the CPU and each batch is moved, as usual.
    """
    device = torch.device(device)
    X, y = synthetic_images(num_examples)
    m1, o1 = _setup(model, lr=lr, device=device)
    m2 = copy.deepcopy(m1)
    o2 = torch.optim.SGD(m2.parameters(), lr=lr)
    g = torch.Generator().manual_seed(0)
    tensors = TensorLoader(X, y, batch_size=batch_size, shuffle=True, generator=g, device=device)
    samples = torch.utils.data.DataLoader(PerSampleDataset(X, y), batch_size=batch_size, shuffle=True,
                                          generator=torch.Generator().manual_seed(0))
    loss_fn = nn.CrossEntropyLoss()

    def epoch(model, opt, loader):
        return lambda: train.train_epoch(model=model, loader=loader, loss_fn=loss_fn, optimizer=opt,
                                         metric=train.accuracy, device=device)

    times = time_in_turns({"tensor": epoch(m1, o1, tensors), "dataloader": epoch(m2, o2, samples)},
                          repeats=repeats, device=device)
    return _throughputs(times, first="tensor", second="dataloader", examples=num_examples)


def images_per_second(*, model: str, size: int, num_examples: int, batch_size: int, repeats: int = 3,
                      device: torch.device | str = "cpu") -> float:
    """Training throughput of the package's loop with the data resident on ``device``."""
    device = torch.device(device)
    X, y = synthetic_images(num_examples, size=size, device=device)
    net, opt = _setup(model, lr=0.01, device=device)
    loader = TensorLoader(X, y, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(0))
    loss_fn = nn.CrossEntropyLoss()
    times = time_in_turns({"fit": lambda: train.train_epoch(
        model=net, loader=loader, loss_fn=loss_fn, optimizer=opt, device=device)}, repeats=repeats, device=device)
    return num_examples / statistics.median(times["fit"])
