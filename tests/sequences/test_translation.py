"""dlnotes.sequences.translation: rows with <eos> and padding, normalisation, the generated number pairs."""

from __future__ import annotations

import pytest
import torch

from dlnotes.sequences import translation
from dlnotes.sequences.text import Vocab


def test_rows_end_with_eos_and_are_padded_or_cut():
    vocab = Vocab([["a", "b", "c"]], reserved=translation.RESERVED)
    rows, lengths = translation.to_rows([["a"], ["a", "b", "c", "a", "b"]], vocab, num_steps=4)
    assert lengths.tolist() == [2, 4]
    assert translation.tokens_of(rows[0].tolist(), vocab) == ["a"]
    assert rows[0].tolist()[1:] == [vocab["<eos>"], vocab["<pad>"], vocab["<pad>"]]
    assert translation.tokens_of(rows[1].tolist(), vocab) == ["a", "b", "c"]  # cut to fit <eos>
    assert translation.normalise("Va\u202f!") == "va !" and translation.normalise("Hi, you.") == "hi , you ."


def test_numbers_in_words_and_in_chinese():
    assert translation.number_pair(352) == (["three", "hundred", "and", "fifty", "two"], list("三百五十二"))
    assert translation.number_pair(10005)[1] == list("一万零五")
    pairs = translation.number_pairs(50, low=1, high=100, generator=torch.Generator().manual_seed(0))
    assert len({tuple(e) for e, _ in pairs}) == 50
    with pytest.raises(ValueError, match="distinct"):
        translation.number_pairs(10, low=1, high=5)


def test_a_prefix_of_the_numbers_is_drawn_like_the_rest():
    pairs = translation.number_pairs(3000, high=10**6, generator=torch.Generator().manual_seed(0))
    short = [len(english) <= 2 for english, _ in pairs]  # the numbers below 100 (and a few round ones), used up early
    head, rest = sum(short[:300]) / 300, sum(short[300:]) / 2700
    assert sum(short) > 50 and abs(head - rest) < 0.03
