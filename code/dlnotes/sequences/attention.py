"""Attention: a query scores every key, a softmax over the scores weights the values, and the output
is the weighted sum. Nadaraya–Watson kernel regression as the first attention pooling, the masked
softmax that keeps padded keys out, additive and scaled dot-product scoring, and the Bahdanau
decoder, a GRU decoder that attends to the encoder's outputs at every step.

Shapes: queries (B, Q, d_q), keys (B, K, d_k), values (B, K, d_v) -> outputs (B, Q, d_v), with the
weights (B, Q, K). ``valid_lens`` (B,) or (B, Q) says how many keys each query may see.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F


def nadaraya_watson(x_query: Tensor, x_keys: Tensor, y_values: Tensor, *,
                    bandwidth: float = 1.0) -> tuple[Tensor, Tensor]:
    """Kernel regression: f(x) = Σ_i softmax_i(-(x - x_i)² / (2 h²)) y_i, a Gaussian kernel of width h.

    x_query (Q,), x_keys (K,), y_values (K,) -> predictions (Q,), weights (Q, K).
    """
    if bandwidth <= 0:
        raise ValueError(f"the bandwidth must be positive, got {bandwidth}")
    scores = -((x_query[:, None] - x_keys[None, :]) ** 2) / (2 * bandwidth ** 2)  # (Q, K)
    weights = F.softmax(scores, dim=1)
    return weights @ y_values, weights


def masked_softmax(scores: Tensor, valid_lens: Tensor | None) -> Tensor:
    """Softmax over the last axis of scores (B, Q, K), where key j counts for row (b, q) only if
    j < valid_lens[b] (or valid_lens[b, q]); the other weights are exactly 0."""
    if valid_lens is None:
        return F.softmax(scores, dim=-1)
    B, Q, K = scores.shape
    lens = valid_lens[:, None].expand(B, Q) if valid_lens.ndim == 1 else valid_lens  # (B, Q)
    if (lens < 1).any():
        raise ValueError("every query needs at least one valid key (a valid length of 0 has nothing to attend to)")
    visible = torch.arange(K, device=scores.device)[None, None, :] < lens[:, :, None]  # (B, Q, K)
    return F.softmax(scores.masked_fill(~visible, -math.inf), dim=-1)


class DotProductAttention(nn.Module):
    """Scaled dot-product scores q·k / √d: the scale keeps the scores' variance at 1 for unit-variance inputs."""

    def __init__(self, *, dropout: float = 0.0):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.attention_weights: Tensor | None = None

    def forward(self, queries: Tensor, keys: Tensor, values: Tensor, valid_lens: Tensor | None = None) -> Tensor:
        scores = queries @ keys.transpose(1, 2) / math.sqrt(queries.shape[-1])  # (B, Q, K)
        self.attention_weights = masked_softmax(scores, valid_lens)
        return self.dropout(self.attention_weights) @ values  # (B, Q, d_v)


class AdditiveAttention(nn.Module):
    """Additive (MLP) scores w_v · tanh(W_q q + W_k k): queries and keys may have different sizes."""

    def __init__(self, *, query_size: int, key_size: int, num_hiddens: int, dropout: float = 0.0):
        super().__init__()
        self.W_q = nn.Linear(query_size, num_hiddens, bias=False)
        self.W_k = nn.Linear(key_size, num_hiddens, bias=False)
        self.w_v = nn.Linear(num_hiddens, 1, bias=False)
        self.dropout = nn.Dropout(dropout)
        self.attention_weights: Tensor | None = None

    def forward(self, queries: Tensor, keys: Tensor, values: Tensor, valid_lens: Tensor | None = None) -> Tensor:
        features = torch.tanh(self.W_q(queries)[:, :, None, :] + self.W_k(keys)[:, None, :, :])  # (B, Q, K, h)
        scores = self.w_v(features)[..., 0]  # (B, Q, K)
        self.attention_weights = masked_softmax(scores, valid_lens)
        return self.dropout(self.attention_weights) @ values


class BahdanauDecoder(nn.Module):
    """A GRU decoder whose context is recomputed at every step: the previous top-layer state is the
    query, the encoder's outputs are keys and values, and padded source positions are masked.

    It follows the decoder protocol of :mod:`dlnotes.sequences.seq2seq`, and keeps the attention
    weights of its last call in ``attention_weights`` (B, T, S) for heatmaps. ``scoring`` is
    ``"additive"`` (Bahdanau's) or ``"dot"`` (scaled dot product, no parameters).
    """

    def __init__(self, vocab_size: int, *, embed_size: int, num_hiddens: int, num_layers: int = 1,
                 dropout: float = 0.0, scoring: str = "additive"):
        super().__init__()
        if scoring == "additive":
            self.attention: nn.Module = AdditiveAttention(query_size=num_hiddens, key_size=num_hiddens,
                                                          num_hiddens=num_hiddens, dropout=dropout)
        elif scoring == "dot":
            self.attention = DotProductAttention(dropout=dropout)
        else:
            raise ValueError(f"scoring must be 'additive' or 'dot', got {scoring!r}")
        self.embedding = nn.Embedding(vocab_size, embed_size)
        self.rnn = nn.GRU(embed_size + num_hiddens, num_hiddens, num_layers, dropout=dropout)
        self.output = nn.Linear(num_hiddens, vocab_size)
        self.attention_weights: Tensor | None = None

    def init_state(self, enc_outputs: Tensor, enc_state: Tensor, src_len: Tensor):
        return enc_outputs.transpose(0, 1), enc_state, src_len  # (B, S, h), (L, B, h), (B,)

    def forward(self, Y: Tensor, state):
        # Y (B, T) previous target tokens -> logits (B, T, V), and the state after the last step
        enc_outputs, hidden, src_len = state
        outputs, weights = [], []
        for x in self.embedding(Y.T):  # x (B, e): one step at a time, since the query is the last state
            context = self.attention(hidden[-1][:, None, :], enc_outputs, enc_outputs, src_len)  # (B, 1, h)
            out, hidden = self.rnn(torch.cat([x, context[:, 0]], dim=-1)[None], hidden)
            outputs.append(out[0])
            weights.append(self.attention.attention_weights[:, 0])  # (B, S)
        self.attention_weights = torch.stack(weights, dim=1)  # (B, T, S)
        return self.output(torch.stack(outputs, dim=1)), (enc_outputs, hidden, src_len)

    def select_state(self, state, index: Tensor):
        enc_outputs, hidden, src_len = state
        return enc_outputs[index], hidden[:, index], src_len[index]
