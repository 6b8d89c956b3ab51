"""LeNet-5 as d2l defines it, its shapes and parameter count, and the classic ways a training run
goes wrong: unscaled pixels, a learning rate far off, labels misaligned with images, class indices
mapped differently at training and scoring time, and evaluation left in training mode."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, replace
from typing import Callable, Sequence

import torch
from torch import Tensor, nn

from dlnotes import train
from dlnotes.cnn import conv
from dlnotes.data import TensorData, TensorLoader

ACTIVATIONS = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU}
POOLS = {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}


def lenet(*, activation: str = "sigmoid", pool: str = "avg", dropout: float = 0.0,
          norm: Callable[..., nn.Module] | None = None, in_channels: int = 1,
          num_classes: int = 10) -> nn.Sequential:
    """LeNet-5 for 28 x 28 images, as in d2l: two conv blocks, then three fully connected layers.

    ``activation`` ("sigmoid" as in 1998, or "relu") follows every layer but the last; ``pool`` is
    "avg" (the original subsampling) or "max". ``dropout`` > 0 adds ``nn.Dropout`` after each of the
    two hidden fully connected layers. ``norm(num_features, num_dims=4 or 2)`` makes a normalisation
    layer (e.g. :func:`dlnotes.cnn.batchnorm.batch_norm_layer`) that goes between each conv or
    hidden linear layer and its activation; those layers then have no bias, which the norm's mean
    subtraction would cancel. Weights start Xavier-uniform (d2l's ``init_cnn``), biases 0.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}")
    if pool not in POOLS:
        raise ValueError(f"pool must be one of {', '.join(POOLS)}, got {pool!r}")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
    act, pooling = ACTIVATIONS[activation], POOLS[pool]
    drop = [nn.Dropout(dropout)] if dropout > 0 else []
    bias = norm is None

    def normed(num_features: int, num_dims: int) -> list[nn.Module]:
        return [] if norm is None else [norm(num_features, num_dims=num_dims)]

    net = nn.Sequential(
        nn.Conv2d(in_channels, 6, kernel_size=5, padding=2, bias=bias), *normed(6, 4), act(),  # (B, 6, 28, 28)
        pooling(kernel_size=2, stride=2),  # (B, 6, 14, 14)
        nn.Conv2d(6, 16, kernel_size=5, bias=bias), *normed(16, 4), act(),  # (B, 16, 10, 10)
        pooling(kernel_size=2, stride=2),  # (B, 16, 5, 5)
        nn.Flatten(),  # (B, 400)
        nn.Linear(16 * 5 * 5, 120, bias=bias), *normed(120, 2), act(), *drop,  # (B, 120)
        nn.Linear(120, 84, bias=bias), *normed(84, 2), act(), *drop,  # (B, 84)
        nn.Linear(84, num_classes),  # (B, num_classes)
    )
    for layer in net:
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(layer.weight)  # sigmoid nets stall longer with PyTorch's default
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
    return net


def linear_num_params(in_features: int, out_features: int) -> int:
    """Parameters of a fully connected layer: out · (in + 1), the +1 being the bias."""
    return out_features * (in_features + 1)


def lenet_num_params(*, in_channels: int = 1, num_classes: int = 10) -> int:
    """LeNet's parameter count by hand: two convolutions plus three fully connected layers."""
    return (conv.conv_num_params(in_channels=in_channels, out_channels=6, kernel_size=5)
            + conv.conv_num_params(in_channels=6, out_channels=16, kernel_size=5)
            + linear_num_params(16 * 5 * 5, 120) + linear_num_params(120, 84)
            + linear_num_params(84, num_classes))


@torch.no_grad()
def layer_table(net: nn.Sequential, X: Tensor) -> list[dict]:
    """Pass ``X`` through ``net`` layer by layer: each layer's output shape and parameter count."""
    rows = []
    for layer in net:
        X = layer(X)
        rows.append({"layer": type(layer).__name__, "output shape": tuple(X.shape),
                     "parameters": sum(p.numel() for p in layer.parameters())})
    return rows


@torch.no_grad()
def saturated_fraction(net: nn.Sequential, X: Tensor, *, eps: float = 0.01) -> list[float]:
    """For each sigmoid layer of ``net``: the share of its outputs within ``eps`` of 0 or 1.

    There σ'(z) = σ(1 − σ) < eps, so almost no gradient flows back through those units.
    """
    if not 0 < eps < 0.5:
        raise ValueError(f"eps must lie in (0, 0.5), got {eps}")
    shares = []
    for layer in net:
        X = layer(X)
        if isinstance(layer, nn.Sigmoid):
            shares.append(((X < eps) | (X > 1 - eps)).float().mean().item())
    return shares


class ForgotEval(nn.Module):
    """A model that stays in training mode whatever it is told: what forgetting ``net.eval()`` does.

    ``train.evaluate`` calls ``model.eval()``; wrapped here, dropout stays on during evaluation.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def train(self, mode: bool = True) -> "ForgotEval":
        return super().train(True)  # ignore eval(), which is train(False)

    def forward(self, X: Tensor) -> Tensor:
        return self.model(X)


def make_optimizer(params, *, name: str, lr: float) -> torch.optim.Optimizer:
    """``"sgd"`` (plain minibatch SGD, d2l's choice) or ``"adam"``."""
    if lr <= 0:
        raise ValueError(f"lr must be positive, got {lr}")
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    raise ValueError(f"optimizer must be 'sgd' or 'adam', got {name!r}")


# ---------------------------------------------------------------- labels gone wrong

def shift_classes(y: Tensor, *, offset: int = 1, num_classes: int = 10) -> Tensor:
    """Every label moved to the next class id (mod K): a class list off by one, e.g. 1-based."""
    _check_labels(y, num_classes)
    return (y + offset) % num_classes


def shift_rows(y: Tensor, *, offset: int = 1) -> Tensor:
    """Labels moved down ``offset`` rows: row i now carries the label of row i − offset."""
    return torch.roll(y, shifts=offset, dims=0)


def shuffle_labels(y: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
    """The same labels in a random row order: images and labels no longer belong together."""
    return y[torch.randperm(len(y), generator=generator)]


def permute_classes(y: Tensor, *, permutation: Tensor) -> Tensor:
    """Relabel class c as ``permutation[c]``: a different name-to-index map."""
    k = len(permutation)
    if not torch.equal(torch.sort(permutation).values, torch.arange(k)):
        raise ValueError(f"permutation must hold each of 0..{k - 1} once, got {permutation.tolist()}")
    _check_labels(y, k)
    return permutation[y]


def random_derangement(num_classes: int, *, generator: torch.Generator | None = None) -> Tensor:
    """A random permutation with no fixed point: no class keeps its own index."""
    if num_classes < 2:
        raise ValueError(f"a derangement needs at least 2 classes, got {num_classes}")
    while True:  # about 1/e of permutations qualify: a few tries on average
        p = torch.randperm(num_classes, generator=generator)
        if not (p == torch.arange(num_classes)).any():
            return p


def _check_labels(y: Tensor, num_classes: int) -> None:
    if y.dtype not in (torch.int64, torch.int32) or (len(y) and (y.min() < 0 or y.max() >= num_classes)):
        raise ValueError(f"labels must be integers in 0..{num_classes - 1}")


def class_order_in_fresh_process(names: Sequence[str], *, hash_seed: int) -> list[str]:
    """``list(set(names))`` as a new Python process with ``PYTHONHASHSEED=hash_seed`` orders it.

    String hashes are salted per process, so a class list built from a ``set`` of names can come
    out in a different order in the training run and in the prediction run.
    """
    code = "import sys; print('\\n'.join(list(set(sys.stdin.read().split('\\n')))))"
    env = {**os.environ, "PYTHONHASHSEED": str(hash_seed)}
    out = subprocess.run([sys.executable, "-c", code], input="\n".join(names), env=env,
                         capture_output=True, text=True, check=True)
    return out.stdout.rstrip("\n").split("\n")


# ---------------------------------------------------------------- runs that go wrong

CAUSES = ("correct", "pixels 0-255", "lr too large", "lr too small", "labels shuffled",
          "classes shifted", "eval forgotten")
CAUSE_NAMES = {  # (zh, en) names for the figures, drawn once per language (plot.per_language)
    "correct": ("正确", "correct"), "pixels 0-255": ("像素 0-255", "pixels 0-255"),
    "lr too large": ("学习率过大", "lr too large"), "lr too small": ("学习率过小", "lr too small"),
    "labels shuffled": ("标签打乱", "labels shuffled"), "classes shifted": ("类别错位", "classes shifted"),
    "eval forgotten": ("忘了 eval()", "eval forgotten"),
}


@dataclass(frozen=True)
class RunSetup:
    """Everything one training run uses; ``failure_setup`` breaks one thing at a time."""

    X_train: Tensor  # (N, 1, 28, 28)
    y_train: Tensor  # (N,)
    X_test: Tensor
    y_test: Tensor
    optimizer: str
    lr: float
    dropout: float = 0.0
    forgot_eval: bool = False

    @classmethod
    def of(cls, images: TensorData, *, optimizer: str, lr: float) -> "RunSetup":
        """A correct run on ``images``' training and test splits."""
        return cls(images.X_train, images.y_train, images.X_test, images.y_test, optimizer, lr)


def failure_setup(cause: str, data: TensorData, *, optimizer: str, lr: float, lr_factor: float = 100.0,
                  dropout: float = 0.5, generator: torch.Generator | None = None) -> RunSetup:
    """A run with one classic mistake (``cause`` from ``CAUSES``); "correct" changes nothing.

    - "pixels 0-255": images not divided by 255 (both splits, so the test is consistent).
    - "lr too large" / "lr too small": lr multiplied / divided by ``lr_factor``.
    - "labels shuffled": training labels in a random row order (an off-by-rows join).
    - "classes shifted": training labels through a class map off by one; the test keeps the truth.
    - "eval forgotten": dropout in the classifier, and evaluation left in training mode.
    """
    setup = RunSetup(data.X_train, data.y_train, data.X_test, data.y_test, optimizer, lr)
    k = len(data.classes)
    if cause == "correct":
        return setup
    if cause == "pixels 0-255":
        return replace(setup, X_train=data.X_train * 255, X_test=data.X_test * 255)
    if cause == "lr too large":
        return replace(setup, lr=lr * lr_factor)
    if cause == "lr too small":
        return replace(setup, lr=lr / lr_factor)
    if cause == "labels shuffled":
        return replace(setup, y_train=shuffle_labels(data.y_train, generator=generator))
    if cause == "classes shifted":
        return replace(setup, y_train=shift_classes(data.y_train, num_classes=k))
    if cause == "eval forgotten":
        return replace(setup, dropout=dropout, forgot_eval=True)
    raise ValueError(f"cause must be one of {', '.join(CAUSES)}, got {cause!r}")


def train_lenet(setup: RunSetup, *, num_epochs: int, batch_size: int, activation: str = "sigmoid",
                pool: str = "avg", norm: Callable[..., nn.Module] | None = None,
                generator: torch.Generator | None = None,
                device: torch.device | str | None = None) -> tuple[nn.Module, train.History]:
    """Build a LeNet (``lenet``'s options), train it on ``setup`` with ``train.fit``; return it and its history.

    The returned net is the bare LeNet (unwrapped), so it can still be evaluated correctly. The
    weights start from torch's global seed, the batch order from ``generator``.
    """
    net = lenet(activation=activation, pool=pool, dropout=setup.dropout, norm=norm)
    model = ForgotEval(net) if setup.forgot_eval else net
    train_loader = TensorLoader(setup.X_train, setup.y_train, batch_size=batch_size, shuffle=True,
                                generator=generator, device=device)
    test_loader = TensorLoader(setup.X_test, setup.y_test, batch_size=1024, device=device)
    history = train.fit(model=model, train_loader=train_loader, test_loader=test_loader,
                        loss_fn=nn.CrossEntropyLoss(), metric=train.accuracy, num_epochs=num_epochs,
                        optimizer=make_optimizer(net.parameters(), name=setup.optimizer, lr=setup.lr),
                        device=device, progress=False)
    return net, history
