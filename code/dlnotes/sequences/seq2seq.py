"""Encoder-decoder networks for sequence to sequence learning: a GRU encoder that reads the source
once, a GRU decoder that writes the target one token at a time, the padding mask, training with
teacher forcing, and two ways to decode, greedy and beam search.

A decoder here has three methods, so that attention decoders and Transformer decoders can reuse the
training loop and both searches: ``init_state(enc_outputs, enc_state, src_len)``,
``forward(Y, state) -> (logits, state)`` (Y (B, T) target tokens; called with T = 1 it takes one
step) and ``select_state(state, index)`` (keep the batch rows ``index``, as beam search needs).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from dlnotes.sequences.translation import BOS, EOS, TranslationData, tokens_of
from dlnotes.training.stability import clip_grad_norm_scratch


def sequence_mask(lengths: Tensor, max_len: int) -> Tensor:
    """lengths (B,) -> (B, max_len) bool, True at the first ``lengths[b]`` positions of row b."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def masked_cross_entropy(logits: Tensor, targets: Tensor, lengths: Tensor) -> Tensor:
    """Mean cross-entropy over the valid positions only: logits (B, T, V), targets (B, T), lengths (B,)."""
    losses = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")  # (B, T)
    mask = sequence_mask(lengths, targets.shape[1])
    return (losses * mask).sum() / mask.sum()


class Seq2SeqEncoder(nn.Module):
    """Embedding and a GRU over the source. Padding is skipped (a packed sequence), so a sentence has the
    same final state alone and padded in a batch."""

    def __init__(self, vocab_size: int, *, embed_size: int, num_hiddens: int, num_layers: int = 1,
                 dropout: float = 0.0):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_size)
        self.rnn = nn.GRU(embed_size, num_hiddens, num_layers, dropout=dropout)

    def forward(self, X: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        # X (B, T) source tokens, lengths (B,) -> outputs (T, B, h) (zeros after each end), state (L, B, h)
        packed = nn.utils.rnn.pack_padded_sequence(self.embedding(X.T), lengths.cpu(), enforce_sorted=False)
        outputs, state = self.rnn(packed)
        outputs, _ = nn.utils.rnn.pad_packed_sequence(outputs, total_length=X.shape[1])
        return outputs, state


class Seq2SeqDecoder(nn.Module):
    """A GRU decoder started from the encoder's final state; at every step its input is the previous
    target token's embedding and the *context*, the encoder's final top-layer state, which it keeps."""

    def __init__(self, vocab_size: int, *, embed_size: int, num_hiddens: int, num_layers: int = 1,
                 dropout: float = 0.0):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_size)
        self.rnn = nn.GRU(embed_size + num_hiddens, num_hiddens, num_layers, dropout=dropout)
        self.output = nn.Linear(num_hiddens, vocab_size)

    def init_state(self, enc_outputs: Tensor, enc_state: Tensor, src_len: Tensor):
        return enc_state, enc_state[-1]  # (L, B, h) the decoder's first state; (B, h) the context

    def forward(self, Y: Tensor, state):
        # Y (B, T) previous target tokens -> logits (B, T, V), and the state after the last step
        hidden, context = state
        embedded = self.embedding(Y.T)  # (T, B, e)
        inputs = torch.cat([embedded, context.expand(embedded.shape[0], -1, -1)], dim=-1)  # (T, B, e + h)
        outputs, hidden = self.rnn(inputs, hidden)
        return self.output(outputs).transpose(0, 1), (hidden, context)

    def select_state(self, state, index: Tensor):
        hidden, context = state
        return hidden[:, index], context[index]


class EncoderDecoder(nn.Module):
    """The encoder reads the source once; the decoder is fed the target shifted right (teacher forcing)."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def init_state(self, src: Tensor, src_len: Tensor):
        enc_outputs, enc_state = self.encoder(src, src_len)
        return self.decoder.init_state(enc_outputs, enc_state, src_len)

    def forward(self, src: Tensor, src_len: Tensor, dec_input: Tensor) -> Tensor:
        # src (B, S), src_len (B,), dec_input (B, T) -> logits (B, T, V)
        return self.decoder(dec_input, self.init_state(src, src_len))[0]


def shift_right(tgt: Tensor, bos: int) -> Tensor:
    """tgt (B, T) -> the decoder's input under teacher forcing: <bos>, then the target without its last token."""
    return torch.cat([torch.full_like(tgt[:, :1], bos), tgt[:, :-1]], dim=1)


@dataclass
class Seq2SeqRun:
    """Per epoch: the mean training loss over valid tokens, and the training time up to its end."""

    losses: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)


def train_seq2seq(model: EncoderDecoder, data: TranslationData, *, batch_size: int, lr: float, num_epochs: int,
                  max_norm: float = 1.0, generator: torch.Generator | None = None) -> Seq2SeqRun:
    """Adam with teacher forcing and the padding mask; the gradient clipped to ``max_norm``."""
    bos = data.tgt_vocab[BOS]
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    run, elapsed = Seq2SeqRun(), 0.0
    model.train()
    for _ in range(num_epochs):
        start, total, count = time.perf_counter(), 0.0, 0
        for index in torch.randperm(len(data), generator=generator).split(batch_size):
            batch = data.subset(index)
            logits = model(batch.src, batch.src_len, shift_right(batch.tgt, bos))
            loss = masked_cross_entropy(logits, batch.tgt, batch.tgt_len)
            opt.zero_grad()
            loss.backward()
            clip_grad_norm_scratch(model.parameters(), max_norm=max_norm)
            opt.step()
            tokens = int(batch.tgt_len.sum())
            total, count = total + loss.item() * tokens, count + tokens
        elapsed += time.perf_counter() - start
        run.losses.append(total / count)
        run.seconds.append(elapsed)
    return run


def greedy_decode(model: EncoderDecoder, src: Tensor, src_len: Tensor, *, bos: int, eos: int,
                  max_len: int) -> list[list[int]]:
    """The likeliest next token at every step, for a batch of sources (B, S); each output ends before <eos>."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        state = model.init_state(src, src_len)
        Y = torch.full((len(src), 1), bos, dtype=torch.long)
        outputs, done = [], torch.zeros(len(src), dtype=torch.bool)
        for _ in range(max_len):
            logits, state = model.decoder(Y, state)
            Y = logits[:, -1].argmax(dim=-1, keepdim=True)  # (B, 1): fed back into the decoder
            outputs.append(Y[:, 0])
            done |= Y[:, 0] == eos
            if done.all():
                break
    model.train(was_training)
    rows = torch.stack(outputs, dim=1).tolist()  # (B, steps)
    return [row[:row.index(eos)] if eos in row else row for row in rows]


def translate(model: EncoderDecoder, data: TranslationData, test: TranslationData, *,
              num_steps: int) -> tuple[list[list[str]], list[list[str]]]:
    """Greedy translations of ``test``'s sources as tokens, and their references: (outputs, references).
    ``data`` is the training set, whose vocabularies ``test`` was encoded with."""
    bos, eos = data.tgt_vocab[BOS], data.tgt_vocab[EOS]
    out = greedy_decode(model, test.src, test.src_len, bos=bos, eos=eos, max_len=num_steps)
    outputs = [data.tgt_vocab.to_tokens(o) for o in out]
    references = [tokens_of(row, data.tgt_vocab) for row in test.tgt.tolist()]
    return outputs, references


def sequence_log_prob(model: EncoderDecoder, src: Tensor, src_len: Tensor, tokens: list[int], *,
                      bos: int, eos: int) -> float:
    """log P(tokens, <eos> | source) under the model, for one source (1, S)."""
    target = torch.tensor([tokens + [eos]])
    was_training = model.training
    model.eval()
    with torch.no_grad():
        logits = model(src, src_len, shift_right(target, bos))  # (1, T, V)
        log_probs = F.log_softmax(logits, dim=-1)[0].gather(1, target[0][:, None])
    model.train(was_training)
    return float(log_probs.sum())


def beam_search(model: EncoderDecoder, src: Tensor, src_len: Tensor, *, beam_size: int, bos: int, eos: int,
                max_len: int) -> list[tuple[list[int], float]]:
    """Keep the ``beam_size`` likeliest partial outputs at every step, for one source (1, S).

    Returns the finished candidates (tokens without <eos>, log-probability with it), likeliest first:
    every hypothesis that ended with <eos> along the way, and the ones still open after ``max_len``.
    With ``beam_size=1`` this is greedy decoding.
    """
    if beam_size < 1:
        raise ValueError(f"beam_size must be at least 1, got {beam_size}")
    was_training = model.training
    model.eval()
    with torch.no_grad():
        state = model.init_state(src, src_len)
        beams, scores = [[]], torch.zeros(1, dtype=torch.float64)  # open hypotheses and their log-probabilities
        finished: list[tuple[list[int], float]] = []
        for _ in range(max_len):
            last = torch.tensor([[b[-1] if b else bos] for b in beams])  # (K, 1)
            logits, state = model.decoder(last, state)
            total = scores[:, None] + F.log_softmax(logits[:, -1].double(), dim=-1)  # (K, V)
            best = total.flatten().topk(min(beam_size, total.numel()))
            rows, tokens = best.indices // total.shape[1], best.indices % total.shape[1]
            beams_next, keep = [], []
            for row, token, score in zip(rows.tolist(), tokens.tolist(), best.values.tolist()):
                if token == eos:
                    finished.append((beams[row], score))
                else:
                    beams_next.append(beams[row] + [token])
                    keep.append((row, score))
            if not keep:
                break
            beams = beams_next
            scores = torch.tensor([s for _, s in keep], dtype=torch.float64)
            state = model.decoder.select_state(state, torch.tensor([r for r, _ in keep]))
        else:
            finished.extend(zip(beams, scores.tolist()))  # still open after max_len steps
    model.train(was_training)
    return sorted(finished, key=lambda candidate: -candidate[1])
