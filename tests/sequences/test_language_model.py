"""dlnotes.sequences.language_model: n-grams, Zipf's exponent, a counting model, minibatches."""

from __future__ import annotations

import math

import pytest
import torch

from dlnotes.sequences import language_model as lm


def test_ngrams_are_the_consecutive_tuples():
    assert lm.ngrams("abcd", n=2) == [("a", "b"), ("b", "c"), ("c", "d")]
    assert lm.ngrams([1, 2], n=3) == []
    with pytest.raises(ValueError, match="n must be"):
        lm.ngrams("ab", n=0)


def test_the_zipf_exponent_of_exact_power_laws_is_recovered():
    for a in (0.8, 1.0, 1.5):
        counts = [round(1e9 * r ** -a) for r in range(1, 2001)]
        assert lm.zipf_exponent(counts, ranks=(10, 1000)) == pytest.approx(a, abs=1e-3)
    with pytest.raises(ValueError, match="ranks"):
        lm.zipf_exponent([5, 3, 1], ranks=(1, 10))


def test_the_ngram_model_is_a_distribution_over_the_vocabulary():
    tokens = [0, 1, 2, 1, 0, 1, 2, 2, 1]
    for n in (1, 2, 3):
        model = lm.NGramModel(tokens, n=n, vocab_size=4, k=0.5)
        for history in [(), (1,), (2, 1)][n - 1:n]:
            total = sum(math.exp(model.log_prob(history, w)) for w in range(4))
            assert total == pytest.approx(1.0)


def test_bigram_probabilities_are_smoothed_counts():
    model = lm.NGramModel([0, 1, 0, 1, 0, 2], n=2, vocab_size=3, k=1.0)
    # after 0: twice 1, once 2, never 0; count(0 as a context) = 3
    assert math.exp(model.log_prob((0,), 1)) == pytest.approx((2 + 1) / (3 + 3))
    assert math.exp(model.log_prob((0,), 0)) == pytest.approx(1 / 6)


def test_perplexity_of_a_uniform_model_is_the_vocabulary_size():
    model = lm.NGramModel([0, 1, 2, 3], n=1, vocab_size=4, k=1e9)  # a huge k flattens every count
    assert model.perplexity([3, 2, 1, 0, 0]) == pytest.approx(4.0, rel=1e-6)
    assert lm.perplexity(math.log(7.0)) == pytest.approx(7.0)
    assert lm.perplexity(1e4) == math.inf  # a diverged run: no OverflowError
    with pytest.raises(ValueError, match="k must be positive"):
        lm.NGramModel([0, 1], n=1, vocab_size=2, k=0)


def test_a_deterministic_sequence_has_perplexity_near_one_under_its_bigram_model():
    tokens = [0, 1, 2, 3] * 50
    model = lm.NGramModel(tokens, n=2, vocab_size=4, k=1e-6)
    assert model.perplexity(tokens) == pytest.approx(1.0, abs=1e-4)


def test_unseen_fraction_counts_held_out_ngrams_not_in_training():
    assert lm.unseen_fraction("abab", "abx", n=2) == 0.5  # ab seen, bx not
    assert lm.unseen_fraction("abc", "abc", n=3) == 0.0


@pytest.mark.parametrize("batches", [lm.random_batches, lm.sequential_batches])
def test_labels_are_the_inputs_shifted_by_one_token(batches):
    corpus = torch.arange(100)
    seen = []
    for X, Y in batches(corpus, batch_size=3, num_steps=5, generator=torch.Generator().manual_seed(0)):
        assert X.shape == Y.shape == (3, 5)
        assert torch.equal(Y, X + 1)  # the corpus is 0, 1, 2, ...: the next token is the index + 1
        seen.append(X)
    assert len(seen) >= 5


def test_random_batches_use_each_subsequence_once_and_sequential_rows_continue():
    corpus = torch.arange(1000)
    starts = torch.cat([X[:, 0] for X, _ in lm.random_batches(corpus, batch_size=4, num_steps=10,
                                                              generator=torch.Generator().manual_seed(1))])
    assert len(set(starts.tolist())) == len(starts)  # no subsequence twice
    assert len(set((starts % 10).tolist())) == 1  # all start at the same random offset
    previous = None
    for X, _ in lm.sequential_batches(corpus, batch_size=4, num_steps=10, generator=torch.Generator().manual_seed(1)):
        if previous is not None:
            assert torch.equal(X[:, 0], previous[:, -1] + 1)  # row i continues where row i stopped
        previous = X


def test_minibatch_settings_that_cannot_work_are_errors():
    with pytest.raises(ValueError, match="too short"):
        next(lm.sequential_batches(torch.arange(20), batch_size=4, num_steps=5))
    with pytest.raises(ValueError, match="at least 1"):
        next(lm.random_batches(torch.arange(20), batch_size=0, num_steps=5))
    with pytest.raises(ValueError, match=r"\(T,\)"):
        next(lm.random_batches(torch.zeros(4, 50, dtype=torch.long), batch_size=2, num_steps=3))


def test_time_major_one_hot_puts_the_steps_first():
    X = torch.tensor([[0, 1, 2], [2, 2, 0]])  # (batch 2, steps 3)
    H = lm.time_major_one_hot(X, vocab_size=4)
    assert H.shape == (3, 2, 4)
    assert torch.equal(H[1].argmax(dim=1), X[:, 1])  # step 1 holds the second token of every row
    assert torch.equal(H.sum(dim=2), torch.ones(3, 2))
