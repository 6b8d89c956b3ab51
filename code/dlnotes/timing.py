"""Wall-clock timing that also holds on a GPU.

A CUDA call returns as soon as its kernel is queued, so ``perf_counter()`` around it measures
the queueing, not the work. Every timer here waits for the device before it starts and before
it stops. Comparisons are timed *in turns* (A, B, B, A, A, B, ...): whatever else the machine
does slows every contestant alike, and neither always runs first, so ratios stay meaningful on
a busy 2-core laptop.
"""

from __future__ import annotations

import time
from typing import Callable

import torch


def synchronize(device: torch.device | str) -> None:
    """Wait until the queued work on ``device`` is done (a no-op on the CPU)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seconds(fn: Callable[[], object], *, device: torch.device | str = "cpu") -> float:
    """Seconds one call of ``fn`` takes, the device's queued work included."""
    synchronize(device)  # work queued earlier must not count
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def time_in_turns(runs: dict[str, Callable[[], object]], *, repeats: int, warmup: int = 1,
                  device: torch.device | str = "cpu") -> dict[str, list[float]]:
    """Seconds of each callable, called in turns ``repeats`` times after ``warmup`` rounds.

    The order of a turn is reversed every other round, so that neither always runs first
    (caches warmed by the one before, a CPU clocking up). Returns ``{name: [seconds, ...]}``.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    if warmup < 0:
        raise ValueError(f"warmup must be 0 or more, got {warmup}")
    if not runs:
        raise ValueError("nothing to time: runs is empty")
    for _ in range(warmup):  # first calls allocate memory, load libraries, pick kernels
        for fn in runs.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for turn in range(repeats):
        for name in names if turn % 2 == 0 else reversed(names):
            times[name].append(seconds(runs[name], device=device))
    return times


def best_seconds(fn: Callable[[], object], *, repeats: int, warmup: int = 1,
                 device: torch.device | str = "cpu") -> float:
    """The fastest of ``repeats`` calls: the run least disturbed by anything else."""
    return min(time_in_turns({"fn": fn}, repeats=repeats, warmup=warmup, device=device)["fn"])
