"""Self-attention: every position of a sequence queries every position of the same sequence.
Multi-head attention (equal to ``nn.MultiheadAttention`` after ``load_from``), the causal mask that
hides later positions, sinusoidal positional encoding, and the receptive field that compares
convolutions, recurrences and self-attention by how far information travels in one layer.

Shapes: X (B, T, d); ``valid_lens`` (B,) or (B, T) as in :mod:`dlnotes.sequences.attention`.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

from dlnotes.sequences.attention import DotProductAttention


def causal_lens(num_queries: int, batch_size: int, valid_lens: Tensor | None = None) -> Tensor:
    """Valid lengths (B, T) that let query t see the keys 0..t only, and no padded key."""
    lens = torch.arange(1, num_queries + 1)[None, :].expand(batch_size, num_queries)  # (B, T)
    if valid_lens is None:
        return lens
    limit = valid_lens[:, None] if valid_lens.ndim == 1 else valid_lens
    return torch.minimum(lens, limit.expand(batch_size, num_queries))


class MultiHeadAttention(nn.Module):
    """``num_heads`` scaled dot-product attentions side by side, each on its own projection of size
    d / num_heads; their outputs concatenated and projected back to d."""

    def __init__(self, *, num_hiddens: int, num_heads: int, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        if num_hiddens % num_heads:
            raise ValueError(f"num_hiddens ({num_hiddens}) must be a multiple of num_heads ({num_heads})")
        self.num_heads = num_heads
        self.W_q = nn.Linear(num_hiddens, num_hiddens, bias=bias)
        self.W_k = nn.Linear(num_hiddens, num_hiddens, bias=bias)
        self.W_v = nn.Linear(num_hiddens, num_hiddens, bias=bias)
        self.W_o = nn.Linear(num_hiddens, num_hiddens, bias=bias)
        self.attention = DotProductAttention(dropout=dropout)
        self.attention_weights: Tensor | None = None

    def _split(self, X: Tensor) -> Tensor:
        # (B, T, d) -> (B * heads, T, d / heads): the heads become extra batch rows
        B, T, d = X.shape
        heads = X.reshape(B, T, self.num_heads, d // self.num_heads).transpose(1, 2)  # (B, heads, T, d / heads)
        return heads.reshape(B * self.num_heads, T, -1)

    def forward(self, queries: Tensor, keys: Tensor, values: Tensor, valid_lens: Tensor | None = None, *,
                causal: bool = False) -> Tensor:
        # queries (B, Q, d), keys and values (B, K, d) -> (B, Q, d)
        B, Q, d = queries.shape
        if causal:
            valid_lens = causal_lens(Q, B, valid_lens)
        if valid_lens is not None:
            valid_lens = valid_lens.repeat_interleave(self.num_heads, dim=0)  # one row per head
        out = self.attention(self._split(self.W_q(queries)), self._split(self.W_k(keys)),
                             self._split(self.W_v(values)), valid_lens)  # (B * heads, Q, d / heads)
        self.attention_weights = self.attention.attention_weights.reshape(B, self.num_heads, Q, -1)
        out = out.reshape(B, self.num_heads, Q, -1).transpose(1, 2).reshape(B, Q, d)
        return self.W_o(out)

    @torch.no_grad()
    def load_from(self, other: nn.MultiheadAttention) -> "MultiHeadAttention":
        """Copy the weights of a ``nn.MultiheadAttention`` of the same size (its packed in_proj split in three)."""
        if other.in_proj_weight is None:
            raise ValueError("load_from needs nn.MultiheadAttention with equal query, key and value sizes")
        for layer, weight in zip((self.W_q, self.W_k, self.W_v), other.in_proj_weight.chunk(3)):
            layer.weight.copy_(weight)
        self.W_o.weight.copy_(other.out_proj.weight)
        if other.in_proj_bias is not None:
            for layer, bias in zip((self.W_q, self.W_k, self.W_v), other.in_proj_bias.chunk(3)):
                layer.bias.copy_(bias)
            self.W_o.bias.copy_(other.out_proj.bias)
        return self


def sinusoidal_encoding(max_len: int, num_hiddens: int) -> Tensor:
    """P (max_len, d): P[t, 2i] = sin(t / 10000^(2i/d)), P[t, 2i+1] = cos(t / 10000^(2i/d))."""
    if num_hiddens % 2:
        raise ValueError(f"num_hiddens must be even for sine-cosine pairs, got {num_hiddens}")
    t = torch.arange(max_len, dtype=torch.float32)[:, None]  # (max_len, 1)
    frequencies = 10000 ** (-torch.arange(0, num_hiddens, 2, dtype=torch.float32) / num_hiddens)  # (d/2,)
    P = torch.zeros(max_len, num_hiddens)
    P[:, 0::2] = torch.sin(t * frequencies)
    P[:, 1::2] = torch.cos(t * frequencies)
    return P


class PositionalEncoding(nn.Module):
    """Adds the sinusoidal encoding of each position to X (B, T, d), then dropout; ``offset`` is the
    position of X's first row (a decoder that is fed one token at a time counts on)."""

    def __init__(self, *, num_hiddens: int, max_len: int = 1000, dropout: float = 0.0):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("P", sinusoidal_encoding(max_len, num_hiddens), persistent=False)

    def forward(self, X: Tensor, *, offset: int = 0) -> Tensor:
        end = offset + X.shape[1]
        if end > len(self.P):
            raise ValueError(f"positions up to {end} do not fit max_len={len(self.P)}")
        return self.dropout(X + self.P[offset:end])


def layers_to_connect(layer: Callable[[Tensor], Tensor], *, length: int, num_hiddens: int,
                      max_layers: int = 1000) -> int:
    """How many copies of ``layer`` (X (B, T, d) -> (B, T, d)) must be stacked before the last output
    position depends on the first input position: found from where the gradient is nonzero."""
    torch.manual_seed(0)
    X = torch.randn(1, length, num_hiddens, requires_grad=True)
    out = X
    for depth in range(1, max_layers + 1):
        out = layer(out)
        (grad,) = torch.autograd.grad(out[0, -1].sum(), X, retain_graph=True)
        if grad[0, 0].abs().sum() > 0:
            return depth
    raise RuntimeError(f"the first position still does not reach the last after {max_layers} layers")
