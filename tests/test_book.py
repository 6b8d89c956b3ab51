"""dlnotes.book.glue: plain numbers for the prose, and no NaN."""

import math

import numpy as np
import pytest
import torch

from dlnotes import book


def test_glue_returns_plain_python_numbers():
    assert type(book.glue("a", torch.tensor(0.5))) is float
    assert type(book.glue("b", np.float32(0.25))) is float
    assert book.glue("c", np.int64(3)) == 3 and type(book.glue("c", np.int64(3))) is int
    assert book.glue("d", "text") == "text"


def test_glue_refuses_nan():
    with pytest.raises(ValueError, match="NaN.*diverged"):
        book.glue("loss", float("nan"))
    with pytest.raises(ValueError, match="NaN"):
        book.glue("loss", torch.tensor(math.nan))
