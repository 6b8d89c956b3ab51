"""dlnotes.sequences.attention: kernel pooling, the masked softmax, dot-product attention equal to
PyTorch's, additive attention's gradient, and the Bahdanau decoder under the seq2seq protocol."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from dlnotes.sequences import attention, seq2seq, translation
from dlnotes.sequences.text import Vocab


def test_nadaraya_watson_goes_from_nearest_neighbour_to_the_mean():
    x_keys, y = torch.tensor([0.0, 1.0, 2.0, 3.0]), torch.tensor([5.0, -1.0, 2.0, 7.0])
    x_query = torch.tensor([0.9, 2.2])
    narrow, weights = attention.nadaraya_watson(x_query, x_keys, y, bandwidth=0.01)
    assert torch.allclose(narrow, torch.tensor([-1.0, 2.0])) and torch.allclose(weights.sum(1), torch.ones(2))
    wide, _ = attention.nadaraya_watson(x_query, x_keys, y, bandwidth=1e4)
    assert torch.allclose(wide, y.mean().expand(2), atol=1e-4)
    with pytest.raises(ValueError, match="bandwidth"):
        attention.nadaraya_watson(x_query, x_keys, y, bandwidth=0.0)


def test_the_masked_softmax_gives_padded_keys_exactly_zero():
    torch.manual_seed(0)
    scores = torch.randn(2, 3, 5)
    weights = attention.masked_softmax(scores, torch.tensor([2, 4]))
    assert weights[0, :, 2:].abs().max() == 0 and weights[1, :, 4:].abs().max() == 0
    assert torch.allclose(weights.sum(-1), torch.ones(2, 3))
    assert torch.allclose(weights[0, :, :2], F.softmax(scores[0, :, :2], dim=-1))
    per_query = attention.masked_softmax(scores, torch.tensor([[1, 2, 3], [5, 5, 1]]))
    assert (per_query[0, 1, 2:] == 0).all() and per_query[1, 2, 0] == 1
    assert torch.equal(attention.masked_softmax(scores, None), F.softmax(scores, dim=-1))
    with pytest.raises(ValueError, match="at least one valid key"):
        attention.masked_softmax(scores, torch.tensor([0, 2]))


def test_scaled_dot_product_attention_equals_pytorchs():
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 3, 8), torch.randn(2, 5, 8), torch.randn(2, 5, 4)
    lens = torch.tensor([3, 5])
    mine = attention.DotProductAttention()(q, k, v, lens)
    mask = torch.arange(5)[None, None, :] < lens[:, None, None]  # (B, 1, K): True where a key may be seen
    theirs = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert torch.allclose(mine, theirs, atol=1e-6)


def test_additive_attention_weights_and_gradient():
    torch.manual_seed(0)
    layer = attention.AdditiveAttention(query_size=3, key_size=4, num_hiddens=6).double()
    q, k = torch.randn(2, 1, 3, dtype=torch.float64), torch.randn(2, 5, 4, dtype=torch.float64)
    v = torch.randn(2, 5, 2, dtype=torch.float64, requires_grad=True)
    out = layer(q, k, v, torch.tensor([2, 5]))
    assert out.shape == (2, 1, 2) and layer.attention_weights[0, 0, 2:].abs().max() == 0
    assert torch.autograd.gradcheck(lambda q_, v_: layer(q_, k, v_, torch.tensor([2, 5])),
                                    (q.requires_grad_(), v))


def _copy_task():
    vocab = Vocab([list("abcdef")], reserved=translation.RESERVED)
    g = torch.Generator().manual_seed(0)
    pairs = [[chr(ord("a") + int(i)) for i in torch.randint(0, 6, (int(n),), generator=g)]
             for n in torch.randint(1, 6, (300,), generator=g)]
    return vocab, translation.build([(p, p[::-1]) for p in pairs], num_steps=7, src_vocab=vocab, tgt_vocab=vocab)


@pytest.mark.parametrize("scoring", ["additive", "dot"])
def test_the_bahdanau_decoder_steps_like_it_runs_and_attends_only_to_the_source(scoring):
    vocab, data = _copy_task()
    torch.manual_seed(0)
    model = seq2seq.EncoderDecoder(seq2seq.Seq2SeqEncoder(len(vocab), embed_size=8, num_hiddens=16),
                                   attention.BahdanauDecoder(len(vocab), embed_size=8, num_hiddens=16,
                                                             scoring=scoring))
    src, src_len, Y = data.src[:4], data.src_len[:4], seq2seq.shift_right(data.tgt[:4], vocab["<bos>"])
    whole = model(src, src_len, Y)
    weights = model.decoder.attention_weights  # (B, T, S)
    assert torch.allclose(weights.sum(-1), torch.ones(4, 7), atol=1e-6)
    beyond = torch.arange(7)[None, :] >= src_len[:, None]  # padded source positions
    assert weights.masked_select(beyond[:, None, :].expand_as(weights)).abs().max() == 0
    state, steps = model.init_state(src, src_len), []
    for t in range(Y.shape[1]):
        logits, state = model.decoder(Y[:, t:t + 1], state)
        steps.append(logits)
    assert torch.allclose(whole, torch.cat(steps, dim=1), atol=1e-5)


def test_the_bahdanau_decoder_rejects_an_unknown_scoring():
    with pytest.raises(ValueError, match="scoring"):
        attention.BahdanauDecoder(5, embed_size=4, num_hiddens=4, scoring="cosine")


def test_an_attention_model_learns_to_reverse_and_beam_search_runs_with_it():
    vocab, data = _copy_task()
    torch.manual_seed(0)
    model = seq2seq.EncoderDecoder(seq2seq.Seq2SeqEncoder(len(vocab), embed_size=16, num_hiddens=32),
                                   attention.BahdanauDecoder(len(vocab), embed_size=16, num_hiddens=32))
    run = seq2seq.train_seq2seq(model, data, batch_size=30, lr=0.01, num_epochs=15,
                                generator=torch.Generator().manual_seed(0))
    assert run.losses[-1] < 0.2 * run.losses[0]
    bos, eos = vocab["<bos>"], vocab["<eos>"]
    out = seq2seq.greedy_decode(model, data.src[:50], data.src_len[:50], bos=bos, eos=eos, max_len=7)
    right = sum(o == row[:n - 1] for o, row, n in zip(out, data.tgt[:50].tolist(), data.tgt_len[:50].tolist()))
    assert right >= 40
    beam = seq2seq.beam_search(model, data.src[:1], data.src_len[:1], beam_size=3, bos=bos, eos=eos, max_len=7)
    one = seq2seq.beam_search(model, data.src[:1], data.src_len[:1], beam_size=1, bos=bos, eos=eos, max_len=7)
    assert one[0][0] == out[0]
    assert [c[1] for c in beam] == sorted((c[1] for c in beam), reverse=True)  # likeliest first
