"""Profiles, devices, seeds and where data is kept.

Every chapter declares its own sizes in one settings cell near its top, ``hparams(default=..., full=...)``.
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
LANGUAGES = ("zh", "en")  # the book's two languages; a figure drawn for both has one version per language


def profile_name() -> str:
    """The active profile: ``DLNOTES_PROFILE`` or ``"default"``."""
    name = os.environ.get("DLNOTES_PROFILE", "").strip() or "default"
    if name not in PROFILES:
        raise ValueError(
            f"unknown profile {name!r} in DLNOTES_PROFILE: choose one of {', '.join(PROFILES)}"
        )
    return name


def hparams(*, default: dict, full: dict | None = None, profile: str | None = None) -> SimpleNamespace:
    """The settings of one chapter in the active (or the given) profile.

    Each chapter declares its own sizes in one settings cell, so that retuning one chapter
    re-executes that chapter only. ``default`` holds every setting at CPU size; ``full`` lists
    only what changes at the scale of *Dive into Deep Learning*. A key of ``full`` that
    ``default`` lacks is an error (a typo would otherwise be ignored silently).

    >>> hparams(default=dict(lr=0.1, num_epochs=3), full=dict(num_epochs=10), profile="full").num_epochs
    10
    """
    if not isinstance(default, dict) or not default:
        raise TypeError("hparams(default=...) needs a non-empty dict of settings")
    full = {} if full is None else full
    if not isinstance(full, dict):
        raise TypeError(f"hparams(full=...) needs a dict, got {type(full).__name__}")
    unknown = sorted(set(full) - set(default))
    if unknown:
        raise KeyError(
            f"full profile sets {', '.join(map(repr, unknown))}, which default does not have; "
            f"every setting needs a default value (known: {', '.join(sorted(default))})"
        )
    name = profile or profile_name()
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}: choose one of {', '.join(PROFILES)}")
    values = dict(default)
    if name == "full":
        values.update(full)
    return SimpleNamespace(**values)


def language() -> str:
    """The reader's language, for figures drawn in both: ``DLNOTES_LANGUAGE``, else the chapter's folder, else en.

    A chapter opened from the repository (Binder) runs in its folder, ``book/zh/...`` or
    ``book/en/...``; the Colab notebooks set ``DLNOTES_LANGUAGE`` in their first cell.
    """
    name = os.environ.get("DLNOTES_LANGUAGE", "").strip()
    if name:
        if name not in LANGUAGES:
            raise ValueError(f"unknown language {name!r} in DLNOTES_LANGUAGE: choose one of {', '.join(LANGUAGES)}")
        return name
    parts = Path.cwd().parts
    for before, folder in zip(parts, parts[1:]):
        if before == "book" and folder in LANGUAGES:
            return folder
    return "en"


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
    if torch.cuda.is_available():
        deterministic_gpu()
    return torch.Generator().manual_seed(seed)


def deterministic_gpu() -> None:
    """Ask the GPU libraries for their deterministic algorithms, so that two runs agree.

    On the CPU, PyTorch's kernels already give the same result every run (for the same number of
    threads). On a GPU, cuDNN may pick its fastest algorithm by timing (``benchmark``), and some
    kernels add in whatever order their threads finish; this switches both off. Operations with
    no deterministic GPU kernel (e.g. the backward pass of adaptive average pooling) warn instead
    of failing. cuBLAS needs its workspace setting before its first call.
    """
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.use_deterministic_algorithms(True, warn_only=True)


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
