"""Sentence pairs for machine translation, as data tensors: English-French pairs from Tatoeba
(the registry's ``fra-eng``), and a generated English-to-Chinese task, numbers written out in
words (num2words) and in Chinese numerals (cn2an), whose reference translations are exact.

Every sentence becomes a row of ``num_steps`` token indices: its tokens, ``<eos>``, then ``<pad>``
up to the length (longer sentences are cut), with its valid length (tokens + ``<eos>``) beside it.
"""

from __future__ import annotations

import math
import re
import zipfile
from dataclasses import dataclass

import torch
from torch import Tensor

from dlnotes import download
from dlnotes.sequences.text import Vocab

PAD, BOS, EOS = "<pad>", "<bos>", "<eos>"
RESERVED = (PAD, BOS, EOS)


def read_fra_eng() -> list[tuple[str, str]]:
    """The Tatoeba English-French pairs, in the file's order (short sentences first)."""
    with zipfile.ZipFile(download.fetch("fra-eng")) as archive:
        lines = archive.read("fra-eng/fra.txt").decode("utf8").splitlines()
    return [tuple(line.split("\t")[:2]) for line in lines if line.count("\t") >= 1]


def normalise(sentence: str) -> str:
    """Lower case, no-break spaces as spaces, and a space before , . ! ? so that punctuation is a token."""
    sentence = sentence.replace("\u202f", " ").replace("\xa0", " ").lower()
    return re.sub(r"(?<=\S)([,.!?])", r" \1", sentence).strip()


def tokenize_words(sentence: str) -> list[str]:
    return normalise(sentence).split()


def number_pair(n: int) -> tuple[list[str], list[str]]:
    """A number as English words and as Chinese numerals: 352 -> ([three, hundred, and, fifty, two],
    [三, 百, 五, 十, 二]). English tokens are words (hyphens split), Chinese tokens characters."""
    import cn2an
    from num2words import num2words

    english = num2words(n).replace("-", " ").replace(",", "").split()
    return english, list(cn2an.an2cn(n))


def number_pairs(count: int, *, low: int = 1, high: int = 1_000_000,
                 generator: torch.Generator | None = None) -> list[tuple[list[str], list[str]]]:
    """``count`` distinct random integers in [low, high) as token pairs; sampled log-uniformly, so that
    short and long numbers are equally common, and returned in random order: in the order drawn the
    small numbers, used up first, would crowd the front and a held-out prefix."""
    if high - low < count:
        raise ValueError(f"cannot draw {count} distinct numbers from [{low}, {high})")
    seen: dict[int, None] = {}  # distinct numbers in the order drawn
    log_low, log_high = math.log(low), math.log(high)
    while len(seen) < count:
        u = torch.rand(count, generator=generator, dtype=torch.float64)
        for n in torch.exp(log_low + (log_high - log_low) * u).floor().long().tolist():
            if len(seen) < count:
                seen.setdefault(n)
    numbers = list(seen)
    return [number_pair(numbers[i]) for i in torch.randperm(count, generator=generator).tolist()]


@dataclass
class TranslationData:
    """Source and target sentences as rows of indices (N, num_steps), with their valid lengths (N,)."""

    src: Tensor
    src_len: Tensor
    tgt: Tensor
    tgt_len: Tensor
    src_vocab: Vocab
    tgt_vocab: Vocab

    def __len__(self) -> int:
        return len(self.src)

    def subset(self, index: Tensor) -> "TranslationData":
        return TranslationData(self.src[index], self.src_len[index], self.tgt[index], self.tgt_len[index],
                               self.src_vocab, self.tgt_vocab)


def to_rows(sentences: list[list[str]], vocab: Vocab, *, num_steps: int) -> tuple[Tensor, Tensor]:
    """Token lists -> (N, num_steps) indices (tokens, <eos>, <pad>...; cut at num_steps) and valid lengths (N,)."""
    rows, lengths = [], []
    for tokens in sentences:
        row = vocab[list(tokens)[:num_steps - 1] + [EOS]]
        lengths.append(len(row))
        rows.append(row + [vocab[PAD]] * (num_steps - len(row)))
    return torch.tensor(rows, dtype=torch.long), torch.tensor(lengths, dtype=torch.long)


def build(pairs: list[tuple[list[str], list[str]]], *, num_steps: int, min_freq: int = 1,
          src_vocab: Vocab | None = None, tgt_vocab: Vocab | None = None) -> TranslationData:
    """Token pairs -> :class:`TranslationData`; the vocabularies are built from ``pairs`` unless given
    (give the training set's to encode held-out pairs)."""
    src_tokens, tgt_tokens = [s for s, _ in pairs], [t for _, t in pairs]
    src_vocab = src_vocab or Vocab(src_tokens, min_freq=min_freq, reserved=RESERVED)
    tgt_vocab = tgt_vocab or Vocab(tgt_tokens, min_freq=min_freq, reserved=RESERVED)
    src, src_len = to_rows(src_tokens, src_vocab, num_steps=num_steps)
    tgt, tgt_len = to_rows(tgt_tokens, tgt_vocab, num_steps=num_steps)
    return TranslationData(src, src_len, tgt, tgt_len, src_vocab, tgt_vocab)


def tokens_of(row: list[int], vocab: Vocab) -> list[str]:
    """Indices -> tokens, up to (not including) the first <eos>; <pad> and <bos> dropped."""
    out = []
    for index in row:
        token = vocab.to_tokens(index)
        if token == EOS:
            break
        if token not in (PAD, BOS):
            out.append(token)
    return out
