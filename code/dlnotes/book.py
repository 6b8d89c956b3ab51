"""Helpers for the book's pages: quote numbers from the run in the prose, show each language its figure.

``glue("name", value)`` records a value that the page's text quotes with
``{glue:text}`name:.3f` ``. Under Jupyter Book this is MyST-NB's ``glue``; elsewhere
(Colab, a plain Jupyter) nothing quotes it, so it does nothing unless ``display=True``.

The twin pages share one execution, so a figure with words in it is drawn twice (see
``plot.per_language``) and ``glue_by_language("fig-name", figures)`` records ``fig-name-zh`` and
``fig-name-en``; each page shows its own with ``{glue:figure} fig-name-en`` and a numbered caption.
Outside the build the figure of the reader's language (``config.language()``) is displayed.
"""

from __future__ import annotations

import numbers
import os
from typing import Mapping

import numpy as np
import torch

from dlnotes import config

BUILD_ENV = "DLNOTES_BUILD"  # set to "1" by the book's build for the kernels it starts


def _plain(value):
    """Tensors and NumPy scalars become Python numbers, whose text the format spec can read."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    if isinstance(value, np.generic):
        return value.item()
    return value


def glue(name: str, value, *, display: bool = False):
    """Record ``value`` under ``name`` for the page's prose; return the (plain) value."""
    value = _plain(value)
    if isinstance(value, numbers.Number) and value != value:  # NaN
        raise ValueError(f"refusing to glue NaN as {name!r}: the experiment diverged")
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        if display:
            from IPython.display import display as show

            show(value)
        return value
    myst_glue(name, value, display=display)
    return value


def building() -> bool:
    """Whether this code runs inside the book's build (which quotes glued values on the pages)."""
    return os.environ.get(BUILD_ENV) == "1"


def glue_by_language(name: str, values: Mapping[str, object]) -> None:
    """Record ``values[lang]`` as ``name-<lang>`` for every language; outside the build, display the reader's."""
    if set(values) != set(config.LANGUAGES):
        raise ValueError(f"glue_by_language({name!r}) needs exactly the languages {config.LANGUAGES}, "
                         f"got {tuple(values)}")
    if building():
        for lang in config.LANGUAGES:
            glue(f"{name}-{lang}", values[lang])
        return
    from IPython.display import display as show

    show(values[config.language()])
