"""The Transformer: an encoder and a decoder built from attention alone, position-wise feed-forward
networks, residual connections and layer normalisation.

The encoder follows the encoder interface of :mod:`dlnotes.sequences.seq2seq` (``forward(X,
lengths) -> (outputs, state)``) and the decoder its decoder protocol, so the same training loop,
greedy decoding and beam search run a Transformer. ``load_from`` copies the weights of PyTorch's
``nn.TransformerEncoderLayer`` / ``nn.TransformerDecoderLayer`` (post-norm, ReLU), which the tests
compare against.

Shapes: tokens (B, T); hidden states (B, T, d); ``src_len`` (B,).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from dlnotes.sequences.self_attention import MultiHeadAttention, PositionalEncoding


class PositionWiseFFN(nn.Module):
    """The same two-layer MLP applied to every position: (B, T, d) -> (B, T, d)."""

    def __init__(self, *, num_hiddens: int, ffn_hiddens: int):
        super().__init__()
        self.dense1 = nn.Linear(num_hiddens, ffn_hiddens)
        self.dense2 = nn.Linear(ffn_hiddens, num_hiddens)

    def forward(self, X: Tensor) -> Tensor:
        return self.dense2(torch.relu(self.dense1(X)))


class TokenBatchNorm(nn.BatchNorm1d):
    """Batch normalisation of every feature over all tokens of the batch, (B, T, d) -> (B, T, d),
    for comparison with layer normalisation: its statistics include the padding."""

    def forward(self, X: Tensor) -> Tensor:
        return super().forward(X.transpose(1, 2)).transpose(1, 2)


class AddNorm(nn.Module):
    """The residual connection followed by a normalisation: norm(X + dropout(Y)).
    ``norm="layer"`` normalises each token over its features; ``"batch"`` each feature over the batch."""

    def __init__(self, *, num_hiddens: int, dropout: float = 0.0, norm: str = "layer"):
        super().__init__()
        if norm not in ("layer", "batch"):
            raise ValueError(f"norm must be 'layer' or 'batch', got {norm!r}")
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(num_hiddens) if norm == "layer" else TokenBatchNorm(num_hiddens)

    def forward(self, X: Tensor, Y: Tensor) -> Tensor:
        return self.norm(X + self.dropout(Y))


class EncoderBlock(nn.Module):
    """Self-attention over the source (padded keys masked), then the FFN, each with add & norm.
    With ``causal=True`` each position attends to the earlier ones only (a decoder-only language model)."""

    def __init__(self, *, num_hiddens: int, num_heads: int, ffn_hiddens: int, dropout: float = 0.0,
                 norm: str = "layer"):
        super().__init__()
        self.attention = MultiHeadAttention(num_hiddens=num_hiddens, num_heads=num_heads, dropout=dropout)
        self.addnorm1 = AddNorm(num_hiddens=num_hiddens, dropout=dropout, norm=norm)
        self.ffn = PositionWiseFFN(num_hiddens=num_hiddens, ffn_hiddens=ffn_hiddens)
        self.addnorm2 = AddNorm(num_hiddens=num_hiddens, dropout=dropout, norm=norm)

    def forward(self, X: Tensor, valid_lens: Tensor | None, *, causal: bool = False) -> Tensor:
        Y = self.addnorm1(X, self.attention(X, X, X, valid_lens, causal=causal))
        return self.addnorm2(Y, self.ffn(Y))

    @torch.no_grad()
    def load_from(self, layer: nn.TransformerEncoderLayer) -> "EncoderBlock":
        self.attention.load_from(layer.self_attn)
        _copy_ffn_and_norms(self, layer, [self.addnorm1, self.addnorm2])
        return self


class DecoderBlock(nn.Module):
    """Causal self-attention over the target so far, attention to the encoder's outputs (the
    cross-attention), then the FFN, each with add & norm.

    ``cache`` holds the block's inputs at the earlier positions (B, t, d), which are the keys and
    values of the self-attention: fed the whole target at once (training) or one token per call
    (prediction), the block computes the same outputs.
    """

    def __init__(self, *, num_hiddens: int, num_heads: int, ffn_hiddens: int, dropout: float = 0.0,
                 norm: str = "layer"):
        super().__init__()
        self.self_attention = MultiHeadAttention(num_hiddens=num_hiddens, num_heads=num_heads, dropout=dropout)
        self.addnorm1 = AddNorm(num_hiddens=num_hiddens, dropout=dropout, norm=norm)
        self.cross_attention = MultiHeadAttention(num_hiddens=num_hiddens, num_heads=num_heads, dropout=dropout)
        self.addnorm2 = AddNorm(num_hiddens=num_hiddens, dropout=dropout, norm=norm)
        self.ffn = PositionWiseFFN(num_hiddens=num_hiddens, ffn_hiddens=ffn_hiddens)
        self.addnorm3 = AddNorm(num_hiddens=num_hiddens, dropout=dropout, norm=norm)

    def forward(self, X: Tensor, enc_outputs: Tensor, src_len: Tensor | None,
                cache: Tensor | None = None) -> tuple[Tensor, Tensor]:
        # X (B, T, d) new positions; enc_outputs (B, S, d) -> (B, T, d), and the cache (B, t + T, d)
        keys = X if cache is None else torch.cat([cache, X], dim=1)
        B, T, _ = X.shape
        earlier = keys.shape[1] - T
        causal = (earlier + torch.arange(1, T + 1))[None, :].expand(B, T)  # query j sees keys 0 .. earlier + j
        Y = self.addnorm1(X, self.self_attention(X, keys, keys, causal))
        Z = self.addnorm2(Y, self.cross_attention(Y, enc_outputs, enc_outputs, src_len))
        return self.addnorm3(Z, self.ffn(Z)), keys

    @torch.no_grad()
    def load_from(self, layer: nn.TransformerDecoderLayer) -> "DecoderBlock":
        self.self_attention.load_from(layer.self_attn)
        self.cross_attention.load_from(layer.multihead_attn)
        _copy_ffn_and_norms(self, layer, [self.addnorm1, self.addnorm2, self.addnorm3])
        return self


def _copy_ffn_and_norms(block: nn.Module, layer: nn.Module, addnorms: list[AddNorm]) -> None:
    if layer.norm_first or layer.activation is not F.relu:
        raise ValueError("load_from needs a post-norm layer with ReLU (norm_first=False, activation='relu')")
    block.ffn.dense1.load_state_dict(layer.linear1.state_dict())
    block.ffn.dense2.load_state_dict(layer.linear2.state_dict())
    for addnorm, i in zip(addnorms, range(1, 4)):
        addnorm.norm.load_state_dict(getattr(layer, f"norm{i}").state_dict())


class TransformerEncoder(nn.Module):
    """Embedding plus positional encoding, then ``num_layers`` encoder blocks.

    The paper multiplies the embeddings by √d because its embeddings start at a scale of 1/√d;
    PyTorch's ``nn.Embedding`` starts at N(0, 1), already the scale of the encoding, so no factor here.
    """

    def __init__(self, vocab_size: int, *, num_hiddens: int, num_heads: int, ffn_hiddens: int, num_layers: int,
                 dropout: float = 0.0, max_len: int = 1000, norm: str = "layer"):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, num_hiddens)
        self.positions = PositionalEncoding(num_hiddens=num_hiddens, max_len=max_len, dropout=dropout)
        self.blocks = nn.ModuleList(
            EncoderBlock(num_hiddens=num_hiddens, num_heads=num_heads, ffn_hiddens=ffn_hiddens, dropout=dropout,
                         norm=norm) for _ in range(num_layers))

    def forward(self, X: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, None]:
        # X (B, S) source tokens, lengths (B,) -> outputs (B, S, d); no recurrent state
        H = self.positions(self.embedding(X))
        for block in self.blocks:
            H = block(H, lengths)
        return H, None


class TransformerDecoder(nn.Module):
    """Embedding plus positional encoding, ``num_layers`` decoder blocks, a linear layer to the vocabulary.

    The state is (enc_outputs, src_len, one cache per block, the number of positions decoded so far).
    ``attention_weights`` keeps, per block, the self- and cross-attention weights of the last call.
    """

    def __init__(self, vocab_size: int, *, num_hiddens: int, num_heads: int, ffn_hiddens: int, num_layers: int,
                 dropout: float = 0.0, max_len: int = 1000, norm: str = "layer"):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, num_hiddens)
        self.positions = PositionalEncoding(num_hiddens=num_hiddens, max_len=max_len, dropout=dropout)
        self.blocks = nn.ModuleList(
            DecoderBlock(num_hiddens=num_hiddens, num_heads=num_heads, ffn_hiddens=ffn_hiddens, dropout=dropout,
                         norm=norm) for _ in range(num_layers))
        self.output = nn.Linear(num_hiddens, vocab_size)
        self.attention_weights: list[tuple[Tensor, Tensor]] = []

    def init_state(self, enc_outputs: Tensor, enc_state: None, src_len: Tensor):
        return enc_outputs, src_len, [None] * len(self.blocks), 0

    def forward(self, Y: Tensor, state):
        # Y (B, T) target tokens at the next T positions -> logits (B, T, V), and the state after them
        enc_outputs, src_len, caches, done = state
        H = self.positions(self.embedding(Y), offset=done)
        new_caches, self.attention_weights = [], []
        for block, cache in zip(self.blocks, caches):
            H, cache = block(H, enc_outputs, src_len, cache)
            new_caches.append(cache)
            self.attention_weights.append((block.self_attention.attention_weights,  # (B, heads, T, t)
                                           block.cross_attention.attention_weights))  # (B, heads, T, S)
        return self.output(H), (enc_outputs, src_len, new_caches, done + Y.shape[1])

    def select_state(self, state, index: Tensor):
        enc_outputs, src_len, caches, done = state
        return enc_outputs[index], src_len[index], [None if c is None else c[index] for c in caches], done
