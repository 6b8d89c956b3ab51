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


def test_glue_by_language_glues_each_language_in_the_build(monkeypatch):
    glued = []
    monkeypatch.setattr(book, "glue", lambda name, value, **kw: glued.append((name, value)))
    monkeypatch.setenv(book.BUILD_ENV, "1")
    book.glue_by_language("fig-x", {"zh": "图", "en": "figure"})
    assert glued == [("fig-x-zh", "图"), ("fig-x-en", "figure")]


def test_glue_by_language_shows_the_readers_language_outside_the_build(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", shown.append)
    monkeypatch.delenv(book.BUILD_ENV, raising=False)
    monkeypatch.setenv("DLNOTES_LANGUAGE", "zh")
    book.glue_by_language("fig-x", {"zh": "图", "en": "figure"})
    assert shown == ["图"]
    with pytest.raises(ValueError, match=r"needs exactly the languages \('zh', 'en'\)"):
        book.glue_by_language("fig-x", {"en": "figure"})


def test_the_build_flag_has_one_name():
    from dlnotes.booktools import bookcache

    assert bookcache.BUILD_ENV == book.BUILD_ENV
