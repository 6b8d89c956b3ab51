"""Language models by counting, and the minibatches that neural language models train on.

n-gram counts, Zipf's law fitted on a log-log plot, a smoothed n-gram model and its perplexity,
and the two ways of cutting one long corpus into (batch, steps) minibatches: random sampling, where
neighbouring minibatches are unrelated, and sequential partitioning, where row i of one minibatch
continues row i of the one before.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Iterator, Sequence

import torch
from torch import Tensor
from torch.nn import functional as F


def ngrams(tokens: Sequence, *, n: int) -> list[tuple]:
    """All n-grams of a token sequence, in order: len(tokens) - n + 1 tuples."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    return list(zip(*(tokens[i:] for i in range(n))))


def zipf_exponent(counts: Sequence[int], *, ranks: tuple[int, int] = (10, 1000)) -> float:
    """The slope a of log(count) = -a log(rank) + c, fitted by least squares over the ranks given.

    ``counts`` are sorted in falling order first; ranks count from 1. Zipf's law is a = 1.
    """
    counts = sorted(counts, reverse=True)
    lo, hi = ranks
    if not 1 <= lo < hi <= len(counts):
        raise ValueError(f"ranks must satisfy 1 <= lo < hi <= {len(counts)} (the number of counts), got {ranks}")
    log_rank = torch.log(torch.arange(lo, hi + 1, dtype=torch.float64))
    log_count = torch.log(torch.tensor(counts[lo - 1:hi], dtype=torch.float64))
    design = torch.stack([log_rank, torch.ones_like(log_rank)], dim=1)  # (ranks, 2)
    slope = torch.linalg.lstsq(design, log_count[:, None]).solution[0, 0]
    return -slope.item()


class NGramModel:
    """P(w | the n - 1 tokens before it) by counting, with add-k smoothing over a vocabulary of size V.

    P(w | h) = (count(h, w) + k) / (count(h) + k V). Every probability is positive, so the
    perplexity of any text is finite; with k small, unseen n-grams are nearly impossible.
    """

    def __init__(self, tokens: Sequence[int], *, n: int, vocab_size: int, k: float = 0.01):
        if k <= 0:
            raise ValueError(f"k must be positive (k = 0 gives unseen n-grams probability 0), got {k}")
        self.n, self.vocab_size, self.k = n, vocab_size, k
        self.counts = collections.Counter(ngrams(tokens, n=n))
        self.context_counts = collections.Counter(ngrams(tokens[:-1], n=n - 1)) if n > 1 else None
        self.num_tokens = len(tokens)

    def log_prob(self, history: tuple, token) -> float:
        context = self.context_counts[history] if self.n > 1 else self.num_tokens
        return math.log((self.counts[(*history, token)] + self.k) / (context + self.k * self.vocab_size))

    def perplexity(self, tokens: Sequence[int]) -> float:
        """exp of the mean negative log-probability of each token after the first n - 1."""
        grams = ngrams(tokens, n=self.n)
        if not grams:
            raise ValueError(f"need at least n = {self.n} tokens")
        return math.exp(-sum(self.log_prob(g[:-1], g[-1]) for g in grams) / len(grams))


def unseen_fraction(train: Sequence, held_out: Sequence, *, n: int) -> float:
    """The share of the held-out n-grams (with repeats) that never occur in the training tokens."""
    seen = set(ngrams(train, n=n))
    held = ngrams(held_out, n=n)
    return sum(g not in seen for g in held) / len(held)


def perplexity(mean_cross_entropy: float | Tensor) -> float:
    """exp(mean cross-entropy in nats): the number of equally likely choices that would be as uncertain.

    A cross-entropy beyond what a float can exponentiate (a diverged run) gives inf, not an error.
    """
    x = float(mean_cross_entropy)
    return math.exp(x) if x < 709.0 else math.inf


def random_batches(corpus: Tensor, *, batch_size: int, num_steps: int,
                   generator: torch.Generator | None = None) -> Iterator[tuple[Tensor, Tensor]]:
    """Random sampling: subsequences of ``num_steps`` tokens from a random offset, in random order.

    corpus (T,) -> minibatches X, Y of shape (batch_size, num_steps), Y being X shifted by one
    token. Neighbouring minibatches are unrelated, so a model must start each with a fresh state.
    """
    _check(corpus, batch_size, num_steps)
    offset = int(torch.randint(num_steps, (1,), generator=generator))
    num_subseqs = (len(corpus) - offset - 1) // num_steps
    starts = offset + num_steps * torch.randperm(num_subseqs, generator=generator)  # (num_subseqs,)
    windows = torch.arange(num_steps)  # (num_steps,)
    for i in range(0, num_subseqs - batch_size + 1, batch_size):
        index = starts[i:i + batch_size, None] + windows  # (batch_size, num_steps)
        yield corpus[index], corpus[index + 1]


def sequential_batches(corpus: Tensor, *, batch_size: int, num_steps: int,
                       generator: torch.Generator | None = None) -> Iterator[tuple[Tensor, Tensor]]:
    """Sequential partitioning: the corpus cut into ``batch_size`` long rows, read ``num_steps`` at a time.

    Row i of each minibatch continues row i of the previous one, so a model may carry its state
    from one minibatch to the next (detached, so that gradients stop at the boundary).
    """
    _check(corpus, batch_size, num_steps)
    offset = int(torch.randint(num_steps, (1,), generator=generator))
    num_tokens = (len(corpus) - offset - 1) // batch_size * batch_size
    X = corpus[offset:offset + num_tokens].reshape(batch_size, -1)  # (batch_size, T / batch_size)
    Y = corpus[offset + 1:offset + 1 + num_tokens].reshape(batch_size, -1)
    for i in range(0, X.shape[1] - num_steps + 1, num_steps):
        yield X[:, i:i + num_steps], Y[:, i:i + num_steps]


def _check(corpus: Tensor, batch_size: int, num_steps: int) -> None:
    if corpus.ndim != 1:
        raise ValueError(f"expected a corpus of token indices (T,), got shape {tuple(corpus.shape)}")
    if batch_size < 1 or num_steps < 1:
        raise ValueError(f"batch_size and num_steps must be at least 1, got {batch_size} and {num_steps}")
    if len(corpus) <= batch_size * num_steps + num_steps:
        raise ValueError(f"a corpus of {len(corpus)} tokens is too short for batch_size={batch_size} "
                         f"and num_steps={num_steps}")


def time_major_one_hot(X: Tensor, *, vocab_size: int) -> Tensor:
    """(batch, steps) token indices -> (steps, batch, vocab_size) one-hot floats: one matrix per time step."""
    return F.one_hot(X.T, vocab_size).float()
