"""dlnotes.sequences.self_attention: multi-head attention against PyTorch's, the causal mask,
permutation equivariance without positions, the sinusoidal encoding, receptive fields."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from dlnotes.sequences import self_attention as sa


def _pair(d: int = 8, heads: int = 2, *, bias: bool = True):
    torch.manual_seed(0)
    theirs = nn.MultiheadAttention(d, heads, bias=bias, batch_first=True)
    with torch.no_grad():  # PyTorch starts its biases at 0; make them count
        for p in theirs.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return sa.MultiHeadAttention(num_hiddens=d, num_heads=heads, bias=bias).load_from(theirs), theirs


@pytest.mark.parametrize("bias", [True, False])
def test_multi_head_attention_equals_pytorchs(bias):
    ours, theirs = _pair(bias=bias)
    q, kv = torch.randn(3, 4, 8), torch.randn(3, 6, 8)
    valid = torch.tensor([6, 2, 4])
    expected, weights = theirs(q, kv, kv, key_padding_mask=torch.arange(6)[None, :] >= valid[:, None],
                               average_attn_weights=False)
    assert torch.allclose(ours(q, kv, kv, valid), expected, atol=1e-6)
    assert torch.allclose(ours.attention_weights, weights, atol=1e-6)  # (B, heads, Q, K)
    assert torch.allclose(ours(q, kv, kv), theirs(q, kv, kv)[0], atol=1e-6)


def test_the_causal_mask_equals_pytorchs_and_hides_the_future():
    ours, theirs = _pair()
    X = torch.randn(2, 5, 8)
    mask = torch.triu(torch.ones(5, 5, dtype=torch.bool), diagonal=1)  # True = may not attend
    assert torch.allclose(ours(X, X, X, causal=True), theirs(X, X, X, attn_mask=mask)[0], atol=1e-6)
    heads = [ours._split(layer(X)) for layer in (ours.W_q, ours.W_k, ours.W_v)]
    ours(X, X, X, causal=True)
    per_head = ours.attention.attention_weights @ heads[2]
    assert torch.allclose(per_head, F.scaled_dot_product_attention(*heads, is_causal=True), atol=1e-6)
    later = X.clone()
    later[:, 3:] = torch.randn(2, 2, 8)  # change the future: the first three outputs stay
    assert torch.allclose(ours(X, X, X, causal=True)[:, :3], ours(later, later, later, causal=True)[:, :3])
    assert sa.causal_lens(3, 2, torch.tensor([2, 3])).tolist() == [[1, 2, 2], [1, 2, 3]]


def test_the_heads_must_divide_the_width():
    with pytest.raises(ValueError, match="multiple"):
        sa.MultiHeadAttention(num_hiddens=10, num_heads=3)


def test_without_positions_self_attention_is_permutation_equivariant():
    ours, _ = _pair()
    X, perm = torch.randn(1, 6, 8), torch.tensor([0, 3, 1, 2, 5, 4])
    assert torch.allclose(ours(X, X, X)[:, perm], ours(X[:, perm], X[:, perm], X[:, perm]), atol=1e-6)
    encode = sa.PositionalEncoding(num_hiddens=8)
    P, Pp = encode(X), encode(X[:, perm])
    assert not torch.allclose(ours(P, P, P)[:, perm], ours(Pp, Pp, Pp), atol=1e-3)


def test_the_sinusoidal_encoding_and_its_relative_positions():
    P = sa.sinusoidal_encoding(50, 16)
    assert P.shape == (50, 16) and P.abs().max() <= 1
    assert torch.allclose(P[0], torch.tensor([0.0, 1.0] * 8))
    assert torch.allclose(P[7, 0::2] ** 2 + P[7, 1::2] ** 2, torch.ones(8))
    k = 5  # P[t + k] is a rotation of P[t], the same for every t: position k apart is a linear map
    w = 10000 ** (-torch.arange(0, 16, 2) / 16)
    cos, sin = torch.cos(k * w), torch.sin(k * w)
    for t in (0, 11, 30):
        rotated_sin = P[t, 0::2] * cos + P[t, 1::2] * sin
        rotated_cos = P[t, 1::2] * cos - P[t, 0::2] * sin
        assert torch.allclose(rotated_sin, P[t + k, 0::2], atol=1e-5)
        assert torch.allclose(rotated_cos, P[t + k, 1::2], atol=1e-5)
    with pytest.raises(ValueError, match="even"):
        sa.sinusoidal_encoding(4, 5)
    with pytest.raises(ValueError, match="max_len"):
        sa.PositionalEncoding(num_hiddens=4, max_len=3)(torch.zeros(1, 4, 4))
    encode, X = sa.PositionalEncoding(num_hiddens=16, max_len=50), torch.zeros(1, 3, 16)
    assert torch.equal(encode(X, offset=7), P[7:10][None])  # a later slice of the same table
    with pytest.raises(ValueError, match="max_len"):
        encode(X, offset=48)


class _Conv(nn.Module):
    def __init__(self, d, k):
        super().__init__()
        self.conv = nn.Conv1d(d, d, k, padding=k // 2)

    def forward(self, X):
        return self.conv(X.transpose(1, 2)).transpose(1, 2)


def test_layers_to_connect_counts_the_receptive_field():
    torch.manual_seed(0)
    # a centred kernel of width k reaches k // 2 positions further back with every layer
    assert sa.layers_to_connect(_Conv(4, 3), length=9, num_hiddens=4) == 8
    assert sa.layers_to_connect(_Conv(4, 5), length=9, num_hiddens=4) == 4
    attend = sa.MultiHeadAttention(num_hiddens=4, num_heads=1)
    assert sa.layers_to_connect(lambda X: attend(X, X, X), length=9, num_hiddens=4) == 1
    with pytest.raises(RuntimeError, match="does not reach"):
        sa.layers_to_connect(nn.Identity(), length=3, num_hiddens=2, max_layers=5)
