"""Pretraining on unlabelled text: the two self-supervised objectives of GPT and BERT on one stack
of Transformer encoder blocks. Causal language modelling predicts every next token; masked language
modelling hides some tokens and predicts them from both sides. Also constrained sampling for
Tang-poem forms: five-character lines and acrostics (藏头诗).

Shapes: rows (N, T + 1) token indices; model inputs (B, T) -> logits (B, T, V).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from dlnotes.sequences.self_attention import PositionalEncoding
from dlnotes.sequences.transformer import EncoderBlock

IGNORE = -100  # the target of a position that is not scored (F.cross_entropy's ignore_index)


class LearnedPositions(nn.Module):
    """A learned vector per position, added to X (B, T, d), as GPT and BERT do; then dropout."""

    def __init__(self, *, num_hiddens: int, max_len: int, dropout: float = 0.0):
        super().__init__()
        self.P = nn.Embedding(max_len, num_hiddens)
        self.dropout = nn.Dropout(dropout)

    def forward(self, X: Tensor) -> Tensor:
        if X.shape[1] > self.P.num_embeddings:
            raise ValueError(f"sequence of length {X.shape[1]} is longer than max_len={self.P.num_embeddings}")
        return self.dropout(X + self.P.weight[:X.shape[1]])


class TransformerLM(nn.Module):
    """Embedding plus positions, ``num_layers`` encoder blocks, a linear layer to the vocabulary.
    ``causal=True`` (GPT): position t sees positions ≤ t. ``causal=False`` (BERT): every position sees all.
    ``positions`` is ``"learned"`` (GPT's and BERT's choice) or ``"sinusoidal"`` (the Transformer's)."""

    def __init__(self, vocab_size: int, *, num_hiddens: int, num_heads: int, ffn_hiddens: int, num_layers: int,
                 dropout: float = 0.0, max_len: int = 512, causal: bool = True, positions: str = "learned"):
        super().__init__()
        if positions not in ("learned", "sinusoidal"):
            raise ValueError(f"positions must be 'learned' or 'sinusoidal', got {positions!r}")
        self.causal = causal
        self.embedding = nn.Embedding(vocab_size, num_hiddens)
        self.positions = (LearnedPositions if positions == "learned" else PositionalEncoding)(
            num_hiddens=num_hiddens, max_len=max_len, dropout=dropout)
        self.blocks = nn.ModuleList(
            EncoderBlock(num_hiddens=num_hiddens, num_heads=num_heads, ffn_hiddens=ffn_hiddens, dropout=dropout)
            for _ in range(num_layers))
        self.output = nn.Linear(num_hiddens, vocab_size)

    def forward(self, X: Tensor) -> Tensor:
        H = self.positions(self.embedding(X))  # (B, T, d)
        for block in self.blocks:
            H = block(H, None, causal=self.causal)
        return self.output(H)


def rows(sequences: list[list[int]], *, length: int, pad: int) -> Tensor:
    """One row (N, length) per sequence, e.g. one poem per row so that positions count from its start:
    cut to ``length``, then padded with ``pad``."""
    out = torch.full((len(sequences), length), pad, dtype=torch.long)
    for i, sequence in enumerate(sequences):
        kept = sequence[:length]
        out[i, :len(kept)] = torch.tensor(kept, dtype=torch.long)
    return out


def next_token_pairs(batch: Tensor, *, pad: int | None = None) -> tuple[Tensor, Tensor]:
    """Causal LM: inputs batch[:, :-1], targets batch[:, 1:] (every position predicts the next token);
    a ``pad`` target is not scored."""
    targets = batch[:, 1:]
    if pad is not None:
        targets = targets.masked_fill(targets == pad, IGNORE)
    return batch[:, :-1], targets


def mask_tokens(X: Tensor, *, mask_id: int, vocab_size: int, rate: float = 0.15, keep: Tensor | None = None,
                generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """BERT's corruption: choose ``rate`` of the positions; of those, 80 % become <mask>, 10 % a random
    token, 10 % stay. Returns (inputs, targets), targets = the original token at chosen positions and
    IGNORE elsewhere. ``keep`` (B, T) bool marks positions never chosen (e.g. line breaks)."""
    if not 0 < rate < 1:
        raise ValueError(f"rate must be between 0 and 1, got {rate}")
    u = torch.rand(X.shape, generator=generator)
    chosen = u < rate
    if keep is not None:
        chosen &= ~keep
    how = torch.rand(X.shape, generator=generator)
    inputs = X.clone()
    inputs[chosen & (how < 0.8)] = mask_id
    swap = chosen & (how >= 0.8) & (how < 0.9)
    inputs[swap] = torch.randint(0, vocab_size, (int(swap.sum()),), generator=generator)
    targets = torch.where(chosen, X, torch.full_like(X, IGNORE))
    return inputs, targets


@dataclass
class PretrainRun:
    """Per epoch: the mean training loss over scored tokens, and the training time up to its end."""

    losses: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)


def train_lm(model: nn.Module, data: Tensor, *, batch_size: int, lr: float, num_epochs: int,
             make_pairs: Callable[[Tensor], tuple[Tensor, Tensor]] = next_token_pairs, max_norm: float = 1.0,
             generator: torch.Generator | None = None) -> PretrainRun:
    """Adam on rows ``data`` (N, T + 1); ``make_pairs`` turns a batch into (inputs, targets), by default
    the next-token pairs of a causal LM; targets equal to IGNORE are not scored."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    run, elapsed = PretrainRun(), 0.0
    model.train()
    for _ in range(num_epochs):
        start, total, count = time.perf_counter(), 0.0, 0
        for index in torch.randperm(len(data), generator=generator).split(batch_size):
            inputs, targets = make_pairs(data[index])
            loss = F.cross_entropy(model(inputs).transpose(1, 2), targets, ignore_index=IGNORE)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), max_norm)
            opt.step()
            scored = int((targets != IGNORE).sum())
            total, count = total + loss.item() * scored, count + scored
        elapsed += time.perf_counter() - start
        run.losses.append(total / max(count, 1))
        run.seconds.append(elapsed)
    return run


@torch.no_grad()
def evaluate_lm(model: nn.Module, data: Tensor, *,
                make_pairs: Callable[[Tensor], tuple[Tensor, Tensor]] = next_token_pairs,
                batch_size: int = 256) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over the scored tokens of rows ``data`` (N, T + 1), in eval mode."""
    was_training = model.training
    model.eval()
    total, right, count = 0.0, 0, 0
    for batch in data.split(batch_size):
        inputs, targets = make_pairs(batch)
        logits = model(inputs)
        scored = targets != IGNORE
        total += F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=IGNORE, reduction="sum").item()
        right += int((logits.argmax(dim=-1) == targets)[scored].sum())
        count += int(scored.sum())
    model.train(was_training)
    return total / count, right / count


@torch.no_grad()
def sample_tokens(model: TransformerLM, prefix: list[int], *, num_tokens: int, temperature: float = 1.0,
           banned: list[int] | None = None, forced: dict[int, int] | None = None,
           generator: torch.Generator | None = None) -> list[int]:
    """Continue ``prefix`` by ``num_tokens`` tokens, each drawn from softmax(logits / temperature)
    (argmax if temperature is 0), never a ``banned`` token. ``forced`` maps an output step to the
    token written there regardless of the model (a form's punctuation, an acrostic's first character)."""
    if not prefix:
        raise ValueError("sample_tokens needs a non-empty prefix (start with a line break, for instance)")
    was_training = model.training
    model.eval()
    tokens, forced = list(prefix), forced or {}
    for step in range(num_tokens):
        if step in forced:
            tokens.append(forced[step])
            continue
        logits = model(torch.tensor([tokens]))[0, -1]  # (V,)
        if banned:
            logits[banned] = -torch.inf
        if temperature == 0:
            tokens.append(int(logits.argmax()))
        else:
            tokens.append(int(torch.multinomial(F.softmax(logits / temperature, dim=-1), 1, generator=generator)))
    model.train(was_training)
    return tokens[len(prefix):]


def poem_form(heads: list[int], *, verse_length: int, comma: int, full_stop: int) -> tuple[int, dict[int, int]]:
    """The steps of a poem of len(heads) lines, each ``verse_length`` characters and a punctuation mark
    (a comma after odd lines, a full stop after even ones), as (num_tokens, forced) for :func:`sample_tokens`;
    ``heads`` are the lines' first characters (an acrostic), or -1 where the model may choose."""
    forced, step = {}, 0
    for i, head in enumerate(heads):
        if head >= 0:
            forced[step] = head
        step += verse_length
        forced[step] = comma if i % 2 == 0 else full_stop
        step += 1
    return step, forced
