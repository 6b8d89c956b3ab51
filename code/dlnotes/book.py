"""Helpers for the book's pages: quote numbers from the run in the prose.

``glue("name", value)`` records a value that the page's text quotes with
``{glue:text}`name:.3f` ``. Under Jupyter Book this is MyST-NB's ``glue``; elsewhere
(Colab, a plain Jupyter) nothing quotes it, so it does nothing unless ``display=True``.
"""

from __future__ import annotations

import numbers

import numpy as np
import torch


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
