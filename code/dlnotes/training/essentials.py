"""PyTorch essentials: modules and containers, custom layers, parameters, devices, speed, float sums."""

from __future__ import annotations

import copy
import math
from typing import Callable

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from dlnotes.timing import best_seconds


class MLP(nn.Module):
    """A one-hidden-layer MLP written as a class: layers in __init__, the computation in forward."""

    def __init__(self, *, num_inputs: int = 20, num_hiddens: int = 256, num_outputs: int = 10):
        super().__init__()
        self.hidden = nn.Linear(num_inputs, num_hiddens)  # assigning a Module registers it
        self.out = nn.Linear(num_hiddens, num_outputs)

    def forward(self, X: Tensor) -> Tensor:
        return self.out(F.relu(self.hidden(X)))  # (n, d) -> (n, h) -> (n, q)


class SequentialScratch(nn.Module):
    """nn.Sequential from scratch: register the blocks in order, then chain them in forward."""

    def __init__(self, *blocks: nn.Module):
        super().__init__()
        for idx, block in enumerate(blocks):
            if not isinstance(block, nn.Module):
                raise ValueError(f"block {idx} is a {type(block).__name__}, not an nn.Module")
            # A plain Python list would hide the blocks from parameters(), .to() and state_dict();
            # add_module puts them in self._modules, keyed "0", "1", ... like nn.Sequential.
            self.add_module(str(idx), block)

    def forward(self, X: Tensor) -> Tensor:
        for block in self._modules.values():  # insertion order is the order of the arguments
            X = block(X)
        return X

    def __getitem__(self, idx: int) -> nn.Module:
        return list(self._modules.values())[idx]

    def __len__(self) -> int:
        return len(self._modules)


class FixedHiddenMLP(nn.Module):
    """d2l's block with a constant (untrained) weight, a layer used twice and a loop in forward."""

    def __init__(self, *, num_features: int = 20, generator: torch.Generator | None = None):
        super().__init__()
        # A buffer, not a Parameter: the optimizer never sees it, but state_dict() saves it and
        # .to(device) moves it (a plain tensor attribute would get neither).
        self.register_buffer("rand_weight", torch.rand(num_features, num_features, generator=generator))
        self.linear = nn.Linear(num_features, num_features)

    def forward(self, X: Tensor) -> Tensor:
        X = self.linear(X)
        X = F.relu(X @ self.rand_weight + 1)  # (n, d) @ (d, d) -> (n, d)
        X = self.linear(X)  # the same layer again: its parameters are shared by both uses
        while X.abs().sum() > 1:  # ordinary Python control flow; autograd records what ran
            X = X / 2
        return X.sum()


class NestMLP(nn.Module):
    """A block whose first part is itself a Sequential: blocks nest to any depth."""

    def __init__(self, *, num_inputs: int = 20):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(num_inputs, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU())
        self.linear = nn.Linear(32, 16)

    def forward(self, X: Tensor) -> Tensor:
        return self.linear(self.net(X))  # (n, d) -> (n, 32) -> (n, 16)


class CenteredLayer(nn.Module):
    """A layer without parameters: subtract the mean, so the output has mean 0."""

    def forward(self, X: Tensor) -> Tensor:
        return X - X.mean()


class LinearScratch(nn.Module):
    """nn.Linear from scratch; same names and shapes, so the two exchange state_dicts."""

    def __init__(self, in_features: int, out_features: int, *, generator: torch.Generator | None = None):
        super().__init__()
        bound = 1 / math.sqrt(in_features)  # nn.Linear's default range U(-1/sqrt(d), 1/sqrt(d))
        weight = torch.empty(out_features, in_features).uniform_(-bound, bound, generator=generator)
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(torch.empty(out_features).uniform_(-bound, bound, generator=generator))

    def forward(self, X: Tensor) -> Tensor:
        if X.shape[-1] != self.weight.shape[1]:
            raise ValueError(f"expected {self.weight.shape[1]} input features, got {X.shape[-1]}")
        return X @ self.weight.T + self.bias  # (n, d) @ (d, q) -> (n, q)


def count_parameters(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of scalars in the model's parameters; a shared parameter counts once."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


INIT_SCHEMES = ("normal", "zeros", "constant", "xavier", "custom")


def init_fn(scheme: str, *, generator: torch.Generator | None = None) -> Callable[[nn.Module], None]:
    """A function for ``net.apply``: initialise every nn.Linear by ``scheme``; biases become 0.

    ``custom`` is d2l's example: w ~ U(-10, 10), then every |w| < 5 set to 0.
    """
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r}: choose one of {', '.join(INIT_SCHEMES)}")

    @torch.no_grad()
    def init(module: nn.Module) -> None:
        if not isinstance(module, nn.Linear):  # apply() visits every submodule, ReLUs included
            return
        w = module.weight
        if scheme == "normal":
            nn.init.normal_(w, mean=0.0, std=0.01, generator=generator)
        elif scheme == "zeros":
            nn.init.zeros_(w)
        elif scheme == "constant":
            nn.init.constant_(w, 1.0)
        elif scheme == "xavier":
            nn.init.xavier_uniform_(w, generator=generator)
        else:
            nn.init.uniform_(w, -10, 10, generator=generator)
            w *= w.abs() >= 5
        if module.bias is not None:
            nn.init.zeros_(module.bias)

    return init


def untie(net: nn.Sequential) -> nn.Sequential:
    """A copy of ``net`` in which a layer used twice becomes two independent layers (same values).

    ``copy.deepcopy(net)`` would keep the tie: its memo copies a shared object once.
    """
    return nn.Sequential(*(copy.deepcopy(block) for block in net))  # one deepcopy per position


class StatefulBlock(nn.Module):
    """h = tanh(scale * linear(X) + h0), with h0 created in forward; shows what .to(device) moves."""

    def __init__(self, num_features: int, *, state_on_input_device: bool = True):
        super().__init__()
        self.linear = nn.Linear(num_features, num_features)  # parameters: moved by .to()
        self.register_buffer("scale", torch.ones(num_features))  # buffer: moved by .to()
        self.plain = torch.ones(num_features)  # plain attribute: .to() does not know it exists
        self.state_on_input_device = state_on_input_device

    def forward(self, X: Tensor) -> Tensor:
        # Without device=..., torch.zeros lands on the default device (the CPU), wherever X is.
        device = X.device if self.state_on_input_device else None
        h0 = torch.zeros(X.shape, device=device)  # (n, d)
        return torch.tanh(self.scale * self.linear(X) + h0)


def tensor_devices(module: nn.Module) -> dict[str, str]:
    """Where each parameter, buffer and plain tensor attribute of ``module`` (and children) lives."""
    found = {name: str(t.device) for name, t in module.named_parameters()}
    found.update({name: str(t.device) for name, t in module.named_buffers()})
    for prefix, sub in module.named_modules():
        for name, value in vars(sub).items():
            if isinstance(value, Tensor):  # parameters and buffers live in _parameters/_buffers
                found[f"{prefix}.{name}" if prefix else name] = str(value.device)
    return found


def row_column_times(n: int, *, repeats: int = 3) -> dict[str, float]:
    """Seconds to sum every row, one row at a time, vs every column of the same (n, n) matrix.

    PyTorch stores a matrix row by row, so a row is one contiguous block while a column's
    entries lie n floats apart: each one drags in a cache line of which it uses 4 bytes.
    """
    if n < 2 or repeats < 1:
        raise ValueError(f"need n >= 2 and repeats >= 1, got n={n}, repeats={repeats}")
    A = torch.randn(n, n)  # (n, n), row-major
    cpu = torch.device("cpu")
    return {
        "rows": best_seconds(lambda: [A[i].sum() for i in range(n)], repeats=repeats, device=cpu),
        "columns": best_seconds(lambda: [A[:, j].sum() for j in range(n)], repeats=repeats, device=cpu),
    }


def matmul_gflops(n: int, *, device: torch.device | str = "cpu", repeats: int = 3,
                  min_time: float = 0.02) -> float:
    """Throughput of an (n, n) @ (n, n) float32 product on ``device``, in GFLOP/s (2n³ flops each).

    Tiny products are timed in batches lasting about ``min_time`` seconds, so the clock sees them.
    """
    if n < 1 or repeats < 1:
        raise ValueError(f"need n >= 1 and repeats >= 1, got n={n}, repeats={repeats}")
    device = torch.device(device)
    A, B = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    single = best_seconds(lambda: A @ B, repeats=1, device=device)  # (n, n) @ (n, n) -> (n, n)
    inner = max(1, min(10_000, math.ceil(min_time / max(single, 1e-9))))

    def batch() -> None:
        for _ in range(inner):
            A @ B

    return 2 * n**3 * inner / best_seconds(batch, repeats=repeats, device=device) / 1e9


def _sequential_sum(x: np.ndarray) -> float:
    """Left to right, rounding after every addition (cumsum is a strictly sequential scan)."""
    return float(np.cumsum(x, dtype=x.dtype)[-1])


def _pairwise_sum(x: Tensor) -> float:
    """Add neighbours, then neighbours of the sums, ...: the tree a parallel reduction uses."""
    while len(x) > 1:
        if len(x) % 2:
            x = torch.cat([x, x.new_zeros(1)])
        x = x[0::2] + x[1::2]  # (m,) -> (m / 2,)
    return x.item()


def summation_orders(x: Tensor, *, generator: torch.Generator | None = None) -> dict[str, float]:
    """The sum of the same values in several orders, each in x's dtype, plus the exact sum."""
    if x.ndim != 1 or not x.is_floating_point() or len(x) == 0:
        raise ValueError(f"expected a non-empty 1-D float tensor, got shape {tuple(x.shape)} and {x.dtype}")
    x = x.detach().cpu()
    perm = torch.randperm(len(x), generator=generator)
    by_size = x[x.abs().argsort()]
    return {
        "left to right": _sequential_sum(x.numpy()),
        "right to left": _sequential_sum(x.flip(0).numpy()),
        "shuffled": _sequential_sum(x[perm].numpy()),
        "small to large": _sequential_sum(by_size.numpy()),
        "large to small": _sequential_sum(by_size.flip(0).numpy()),
        "pairwise": _pairwise_sum(x),
        "torch.sum": x.sum().item(),
        "exact": math.fsum(x.double().tolist()),  # correctly rounded sum of the stored values
    }


def shuffled_sums(x: Tensor, *, num_runs: int, generator: torch.Generator | None = None) -> Tensor:
    """Left-to-right sums of x in ``num_runs`` random orders: what atomic adds arriving in
    whatever order the threads finish would produce, run after run. Returns (num_runs,) float64."""
    if x.ndim != 1 or not x.is_floating_point() or num_runs < 1:
        raise ValueError(f"expected a 1-D float tensor and num_runs >= 1, got {tuple(x.shape)}, {num_runs}")
    perms = torch.stack([torch.randperm(len(x), generator=generator) for _ in range(num_runs)])  # (runs, n)
    values = x.detach().cpu()[perms].numpy()  # (runs, n)
    return torch.from_numpy(np.cumsum(values, axis=1, dtype=values.dtype)[:, -1].astype(np.float64))
