"""Text as tokens and indices: two corpora, tokenisers, and a vocabulary.

English: H. G. Wells's *The Time Machine* through the download registry. Chinese: Tang poems
(唐诗三百首 and five shards of 全唐诗, the chinese-poetry project) through the same registry, in
traditional script as published; :func:`to_simplified` converts with OpenCC. Words of Chinese
text come from jieba, which knows the book's glossary terms once
:func:`add_words_to_jieba` has been called.
"""

from __future__ import annotations

import collections
import functools
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from dlnotes import download

TOKEN_KINDS = ("word", "char")
UNK = "<unk>"
TANG_SOURCES = ("tang300", "quantang")  # 唐诗三百首 (366 poems) or 全唐诗 shards (5,000 poems)
_TANG_SHARDS = ("tang-0", "tang-1000", "tang-2000", "tang-3000", "tang-4000")


def clean_english(line: str) -> str:
    """d2l's cleaning: every run of characters that are not letters becomes one space; lower case."""
    return re.sub("[^A-Za-z]+", " ", line).strip().lower()


def read_time_machine() -> list[str]:
    """The novel's lines, cleaned with :func:`clean_english` (empty lines stay, as empty strings)."""
    return [clean_english(line) for line in download.fetch("timemachine").read_text("utf8").splitlines()]


def tokenize(lines: Iterable[str], *, kind: str = "word") -> list[list[str]]:
    """Each line as a list of tokens: words split at whitespace, or single characters (spaces kept)."""
    if kind not in TOKEN_KINDS:
        raise ValueError(f"kind must be one of {TOKEN_KINDS}, got {kind!r}")
    return [line.split() if kind == "word" else list(line) for line in lines]


def _flatten(tokens: Iterable) -> list[str]:
    tokens = list(tokens)
    if tokens and isinstance(tokens[0], list):
        return [token for line in tokens for token in line]
    return tokens


class Vocab:
    """Tokens <-> indices, most frequent first; rare tokens (count < ``min_freq``) map to ``<unk>``.

    Index 0 is ``<unk>``, then the ``reserved`` tokens (e.g. ``<pad>``, ``<bos>``, ``<eos>``) in the
    order given, then the kept tokens by falling count (ties in order of first appearance).
    """

    def __init__(self, tokens: Iterable = (), *, min_freq: int = 1, reserved: Sequence[str] = ()):
        if min_freq < 1:
            raise ValueError(f"min_freq must be at least 1 (a token that never occurs is not kept), got {min_freq}")
        if UNK in reserved or len(set(reserved)) != len(reserved):
            raise ValueError(f"reserved tokens must be distinct and must not include {UNK!r}: {list(reserved)}")
        counts = collections.Counter(_flatten(tokens))
        self.token_freqs = sorted(counts.items(), key=lambda item: -item[1])  # stable: ties keep their order
        kept = [t for t, n in self.token_freqs if n >= min_freq and t != UNK and t not in reserved]
        self.idx_to_token = [UNK, *reserved, *kept]
        self.token_to_idx = {token: i for i, token in enumerate(self.idx_to_token)}

    def __len__(self) -> int:
        return len(self.idx_to_token)

    @property
    def unk(self) -> int:
        return 0

    def __getitem__(self, tokens):
        """One token -> its index (0 if unknown); a list or tuple of tokens -> a list of indices."""
        if isinstance(tokens, (list, tuple)):
            return [self[token] for token in tokens]
        return self.token_to_idx.get(tokens, self.unk)

    def to_tokens(self, indices) -> str | list[str]:
        """An index -> its token; a list or 1-D tensor of indices -> a list of tokens."""
        if isinstance(indices, Tensor):
            indices = indices.tolist()
        if isinstance(indices, (list, tuple)):
            return [self.idx_to_token[int(i)] for i in indices]
        return self.idx_to_token[int(indices)]


def corpus_indices(tokens: Iterable, vocab: Vocab) -> Tensor:
    """All tokens (nested per line or flat), one after another, as indices: (num_tokens,) int64."""
    return torch.tensor(vocab[_flatten(tokens)], dtype=torch.long)


def time_machine_corpus(*, kind: str = "char", min_freq: int = 1) -> tuple[Tensor, Vocab]:
    """The novel as one tensor of token indices (num_tokens,), and its vocabulary.

    The non-empty lines are joined by single spaces, so that no word runs into the next line's
    first word (d2l concatenates the lines' tokens directly, which glues "wells" to "i").
    """
    tokens = tokenize([" ".join(line for line in read_time_machine() if line)], kind=kind)
    vocab = Vocab(tokens, min_freq=min_freq)
    return corpus_indices(tokens, vocab), vocab


def unknown_rate(tokens: Iterable, vocab: Vocab) -> float:
    """The share of ``tokens`` that ``vocab`` maps to ``<unk>``."""
    flat = _flatten(tokens)
    if not flat:
        raise ValueError("no tokens")
    return sum(vocab.token_to_idx.get(t) is None for t in flat) / len(flat)


@dataclass(frozen=True)
class Poem:
    title: str
    author: str
    lines: tuple[str, ...]  # one entry per printed line, e.g. "床前明月光，疑是地上霜。"

    @property
    def text(self) -> str:
        return "".join(self.lines)

    @property
    def verse_length(self) -> int | None:
        """5 for a 五言 poem, 7 for a 七言 one: every printed line a couplet of that length; else None."""
        lengths = {couplet_verse_length(line) for line in self.lines}
        return lengths.pop() if len(lengths) == 1 else None


def couplet_verse_length(line: str) -> int | None:
    """The verse length n of a couplet "n characters，n characters。" (or ending ？ or ！), else None.

    >>> couplet_verse_length("床前明月光，疑是地上霜。"), couplet_verse_length("床前明月光。")
    (5, None)
    """
    n = (len(line) - 2) // 2
    if n < 1 or len(line) != 2 * n + 2 or line[n] != "，" or line[-1] not in "。？！":
        return None
    verses = line[:n] + line[n + 1:-1]
    return None if any(c in _CJK_PUNCTUATION for c in verses) else n


_CJK_PUNCTUATION = "，。？！；：、「」『』（）《》"


def to_simplified(text: str) -> str:
    """Traditional to simplified Chinese script with OpenCC's t2s conversion (phrases, then characters)."""
    return _opencc_t2s().convert(text)


@functools.lru_cache(maxsize=1)
def _opencc_t2s():  # built once per process: it loads OpenCC's dictionaries
    import opencc

    return opencc.OpenCC("t2s")


def read_tang_poems(*, source: str = "tang300", script: str = "simplified") -> list[Poem]:
    """Tang poems from the registry, in ``script`` "simplified" (converted with OpenCC) or "traditional"."""
    if source not in TANG_SOURCES:
        raise ValueError(f"source must be one of {TANG_SOURCES}, got {source!r}")
    if script not in ("simplified", "traditional"):
        raise ValueError(f"script must be 'simplified' or 'traditional', got {script!r}")
    names = ("tang300",) if source == "tang300" else _TANG_SHARDS
    poems = []
    for name in names:
        for entry in json.loads(download.fetch(name).read_text("utf8")):
            title, author, lines = entry["title"], entry["author"], entry["paragraphs"]
            if script == "simplified":
                title, author, lines = to_simplified(title), to_simplified(author), map(to_simplified, lines)
            poems.append(Poem(title=title, author=author, lines=tuple(lines)))
    return poems


def jieba_words(text: str) -> list[str]:
    """Chinese text split into words by jieba (its default, precise mode), punctuation included."""
    import jieba

    jieba.setLogLevel(60)  # no "Building prefix dict" chatter on every first call
    return jieba.lcut(text)


def add_words_to_jieba(words: Iterable[str]) -> int:
    """Make jieba keep each word whole (its default dictionary cuts 过拟合 into 过 / 拟合); returns how many."""
    import jieba

    words = list(words)
    for word in words:
        jieba.add_word(word)
    return len(words)
