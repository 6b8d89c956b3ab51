"""Word vectors by skip-gram with negative sampling (word2vec), and what they can be asked.

Skip-gram predicts, from a centre token, the tokens around it. Instead of a softmax over the
whole vocabulary, negative sampling turns each (centre, context) pair into a binary task: tell
the true context from K tokens drawn from the unigram distribution raised to the power 0.75.
Frequent tokens are first thinned out (subsampled), since "the" next to a word says little.
Every token has two vectors, one as centre and one as context; the centre vectors are the
embeddings. Tensors throughout: all pairs of a corpus are built at once.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dlnotes.sequences import text
from dlnotes.training.critical import one_thread


@dataclass(frozen=True)
class Corpus:
    """Texts as one tensor of token indices (N,), a mask of where each text starts (N,), the vocabulary
    and the token counts (V,)."""

    tokens: Tensor
    starts: Tensor
    vocab: text.Vocab
    counts: Tensor

    def __repr__(self) -> str:
        texts = int(self.starts.sum())
        return f"Corpus({len(self.tokens):,} tokens, {texts:,} texts, vocabulary {len(self.vocab):,})"


def build_corpus(texts: list[list[str]], *, min_freq: int) -> Corpus:
    """Index tokenised texts; tokens rarer than ``min_freq`` are dropped (not mapped to <unk>)."""
    vocab = text.Vocab(texts, min_freq=min_freq)
    kept = [[t for t in doc if vocab[t] != vocab.unk] for doc in texts]
    kept = [doc for doc in kept if doc]
    tokens = torch.tensor([vocab[t] for doc in kept for t in doc], dtype=torch.long)
    starts = torch.zeros(len(tokens), dtype=torch.bool)
    starts[torch.cumsum(torch.tensor([0] + [len(doc) for doc in kept[:-1]]), 0)] = True
    return Corpus(tokens, starts, vocab, torch.bincount(tokens, minlength=len(vocab)))


def python_docs() -> list[list[str]]:
    """The Python documentation's topic pages that ship with the standard library, as lower-case words."""
    from pydoc_data.topics import topics

    return [re.findall(r"[a-z]+", page.lower()) for page in topics.values()]


def tang_characters(*, source: str = "quantang") -> list[list[str]]:
    """Tang poems as lists of their Chinese characters (punctuation dropped), simplified script."""
    return [[c for c in poem.text if "\u4e00" <= c <= "\u9fff"] for poem in text.read_tang_poems(source=source)]


def keep_probabilities(counts: Tensor, *, threshold: float = 1e-4) -> Tensor:
    """Subsampling: keep a token of frequency f with probability min(1, sqrt(threshold / f)). (V,) -> (V,)."""
    freq = counts.float() / counts.sum()
    return torch.sqrt(threshold / freq.clamp(min=1e-12)).clamp(max=1.0)


def subsample(corpus: Tensor, counts: Tensor, *, threshold: float = 1e-4,
              generator: torch.Generator | None = None) -> Tensor:
    """Which tokens of ``corpus`` (N,) to keep, at random by :func:`keep_probabilities`: (N,) booleans."""
    return torch.rand(len(corpus), generator=generator) < keep_probabilities(counts, threshold=threshold)[corpus]


def skipgram_pairs(corpus: Tensor, *, max_window: int, generator: torch.Generator | None = None,
                   starts: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """(centre, context) index pairs: every token with the tokens up to a random window w <= max_window away.

    Each centre draws its own w from 1..max_window, so near neighbours are counted more often
    than far ones. ``starts`` (N,) of booleans marks tokens that start a new text (a poem, a
    document): no pair spans two texts. Returns two (P,) tensors.
    """
    if max_window < 1:
        raise ValueError(f"max_window must be at least 1, got {max_window}")
    n = len(corpus)
    window = torch.randint(1, max_window + 1, (n,), generator=generator)  # (N,)
    segment = torch.cumsum(starts.long(), 0) if starts is not None else torch.zeros(n, dtype=torch.long)
    centres, contexts = [], []
    for offset in range(1, max_window + 1):
        for sign in (-1, 1):
            i = torch.arange(max(0, -sign * offset), min(n, n - sign * offset))  # centres with a partner
            j = i + sign * offset
            ok = (window[i] >= offset) & (segment[i] == segment[j])
            centres.append(corpus[i[ok]])
            contexts.append(corpus[j[ok]])
    return torch.cat(centres), torch.cat(contexts)


def noise_weights(counts: Tensor, *, power: float = 0.75) -> Tensor:
    """The negative-sampling distribution: counts^power, normalised. (V,) -> (V,)."""
    w = counts.float() ** power
    return w / w.sum()


class SkipGram(nn.Module):
    """A centre embedding and a context embedding; the score of a pair is their dot product."""

    def __init__(self, vocab_size: int, *, dim: int):
        super().__init__()
        self.centre = nn.Embedding(vocab_size, dim)
        self.context = nn.Embedding(vocab_size, dim)
        nn.init.uniform_(self.centre.weight, -0.5 / dim, 0.5 / dim)  # word2vec's start: small centres,
        nn.init.zeros_(self.context.weight)  # zero contexts

    def forward(self, centres: Tensor, candidates: Tensor) -> Tensor:
        """centres (B,), candidates (B, 1 + K) -> scores (B, 1 + K)."""
        return torch.einsum("bd,bkd->bk", self.centre(centres), self.context(candidates))


def negative_sampling_loss(scores: Tensor) -> Tensor:
    """Binary cross-entropy: column 0 of ``scores`` (B, 1 + K) is the true context, the rest noise."""
    labels = torch.zeros_like(scores)
    labels[:, 0] = 1.0
    return F.binary_cross_entropy_with_logits(scores, labels, reduction="none").sum(dim=1).mean()


@dataclass
class Word2VecRun:
    losses: list[float] = field(default_factory=list)  # mean loss per epoch
    pairs_per_epoch: list[int] = field(default_factory=list)
    seconds: float = 0.0


def epoch_pairs(corpus: Corpus, *, max_window: int, threshold: float = 1e-4,
                generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """One epoch's (centre, context) pairs: a fresh subsample of the corpus, then :func:`skipgram_pairs`."""
    keep = subsample(corpus.tokens, corpus.counts, threshold=threshold, generator=generator)  # (N,)
    return skipgram_pairs(corpus.tokens[keep], max_window=max_window, generator=generator,
                          starts=_carry_starts(corpus.starts, keep))


def train_word2vec(model: SkipGram, corpus: Corpus, *, num_epochs: int, batch_size: int, lr: float,
                   max_window: int, num_negatives: int, threshold: float = 1e-4,
                   generator: torch.Generator | None = None) -> Word2VecRun:
    """Skip-gram with negative sampling: each epoch subsamples the corpus afresh, builds its pairs,
    draws ``num_negatives`` noise tokens per pair, and takes Adam steps on shuffled batches."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    noise = noise_weights(corpus.counts)
    run, start = Word2VecRun(), time.perf_counter()
    model.train()
    with one_thread():  # small embedding lookups: one thread is faster on a shared CPU
        for _ in range(num_epochs):
            centres, contexts = epoch_pairs(corpus, max_window=max_window, threshold=threshold, generator=generator)
            order = torch.randperm(len(centres), generator=generator)
            negatives = torch.multinomial(noise, len(centres) * num_negatives, replacement=True,
                                          generator=generator).view(-1, num_negatives)  # (P, K)
            total = 0.0
            for i in range(0, len(order), batch_size):
                idx = order[i:i + batch_size]
                candidates = torch.cat([contexts[idx, None], negatives[idx]], dim=1)  # (B, 1 + K)
                loss = negative_sampling_loss(model(centres[idx], candidates))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += loss.item() * len(idx)
            run.losses.append(total / len(order))
            run.pairs_per_epoch.append(len(order))
    run.seconds = time.perf_counter() - start
    return run


def _carry_starts(starts: Tensor, keep: Tensor) -> Tensor:
    """After dropping tokens, a kept token starts a new text if any text started since the last kept token."""
    segment = torch.cumsum(starts.long(), 0)[keep]  # the text each kept token belongs to
    if not len(segment):
        return segment.bool()
    return torch.cat([torch.ones(1, dtype=torch.bool), segment[1:] != segment[:-1]])


def nearest(vectors: Tensor, query: Tensor, *, k: int, exclude: list[int] = ()) -> tuple[Tensor, Tensor]:
    """The k rows of ``vectors`` (V, d) most cosine-similar to ``query`` (d,): (similarities (k,), indices (k,))."""
    sims = F.cosine_similarity(vectors, query[None], dim=1)  # (V,)
    if exclude:
        sims[list(exclude)] = -math.inf
    return sims.topk(k)


def analogy(vectors: Tensor, a: int, b: int, c: int, *, k: int = 1) -> Tensor:
    """a is to b as c is to ?: the k indices nearest to b - a + c (3CosAdd), excluding a, b and c."""
    unit = F.normalize(vectors, dim=1)
    return nearest(unit, unit[b] - unit[a] + unit[c], k=k, exclude=[a, b, c])[1]


def ppmi_svd(centres: Tensor, contexts: Tensor, *, vocab_size: int, dim: int, shift: float = 1.0) -> Tensor:
    """Count-based vectors from the same pairs: the truncated SVD of the positive, shifted PMI matrix.

    PMI(w, c) = log(#(w, c) N / (#w #c)); subtracting log(shift) and clipping at 0 gives the
    matrix that skip-gram with ``shift`` negatives implicitly factorises (Levy and Goldberg, 2014).
    Returns U sqrt(S): (vocab_size, dim).
    """
    pairs = torch.zeros(vocab_size, vocab_size)
    pairs.index_put_((centres, contexts), torch.ones(len(centres)), accumulate=True)  # (V, V) counts
    total = pairs.sum()
    rows, cols = pairs.sum(dim=1, keepdim=True), pairs.sum(dim=0, keepdim=True)
    pmi = torch.log(pairs * total / (rows * cols).clamp(min=1)) - math.log(shift)
    ppmi = torch.where(pairs > 0, pmi, torch.zeros_like(pmi)).clamp(min=0)
    U, S, _ = torch.svd_lowrank(ppmi, q=dim, niter=4)
    return U * S.sqrt()


def count_vectors(corpus: Corpus, *, max_window: int, dim: int, threshold: float = 1.0, shift: float = 1.0,
                  generator: torch.Generator | None = None) -> Tensor:
    """:func:`ppmi_svd` of one epoch's pairs (:func:`epoch_pairs`): (vocab_size, dim).

    ``threshold=1.0`` keeps every token (no subsampling); skip-gram's own ``threshold`` and
    ``shift`` = its number of negatives give the matrix it factorises in theory.
    """
    centres, contexts = epoch_pairs(corpus, max_window=max_window, threshold=threshold, generator=generator)
    return ppmi_svd(centres, contexts, vocab_size=len(corpus.vocab), dim=dim, shift=shift)


def group_purity(vectors: Tensor, groups: list[list[int]]) -> float:
    """Among the tokens of all groups, how often a token's nearest other token is in its own group.

    Chance is about (group size - 1) / (number of tokens - 1); 1 means every group is a tight cluster.
    """
    members = [t for g in groups for t in g]
    label = torch.tensor([i for i, g in enumerate(groups) for _ in g])
    unit = F.normalize(vectors[members], dim=1)
    sims = unit @ unit.T  # (M, M)
    sims.fill_diagonal_(-math.inf)
    return (label[sims.argmax(dim=1)] == label).float().mean().item()
