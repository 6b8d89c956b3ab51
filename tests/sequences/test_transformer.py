"""dlnotes.sequences.transformer: blocks equal to PyTorch's layers, the FFN is position-wise, layer
norm against batch norm under padding, the decoder's cache, and a Transformer that learns."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dlnotes.sequences import seq2seq, transformer, translation
from dlnotes.sequences.text import Vocab


def _perturb(module: nn.Module) -> None:
    with torch.no_grad():  # PyTorch starts biases at 0 and norms at 1; make every weight count
        for p in module.parameters():
            p.add_(0.1 * torch.randn_like(p))


def test_the_ffn_is_the_same_mlp_at_every_position():
    torch.manual_seed(0)
    ffn = transformer.PositionWiseFFN(num_hiddens=4, ffn_hiddens=8)
    X = torch.randn(2, 3, 4)
    X[1, 2] = X[0, 0]  # two identical tokens
    out = ffn(X)
    assert out.shape == (2, 3, 4)
    assert torch.equal(out[1, 2], out[0, 0])
    assert torch.allclose(out[0, 1], ffn(X[0, 1][None, None])[0, 0])


def test_the_encoder_block_equals_pytorchs_layer():
    torch.manual_seed(0)
    theirs = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
    _perturb(theirs)
    ours = transformer.EncoderBlock(num_hiddens=8, num_heads=2, ffn_hiddens=16).load_from(theirs)
    X, lengths = torch.randn(3, 5, 8), torch.tensor([5, 2, 4])
    padding = torch.arange(5)[None, :] >= lengths[:, None]
    assert torch.allclose(ours(X, lengths), theirs(X, src_key_padding_mask=padding), atol=1e-5)
    with pytest.raises(ValueError, match="post-norm"):
        ours.load_from(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True, norm_first=True))


def test_the_decoder_block_equals_pytorchs_layer():
    torch.manual_seed(0)
    theirs = nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
    _perturb(theirs)
    ours = transformer.DecoderBlock(num_hiddens=8, num_heads=2, ffn_hiddens=16).load_from(theirs)
    Y, memory, src_len = torch.randn(3, 4, 8), torch.randn(3, 6, 8), torch.tensor([6, 3, 1])
    causal = torch.triu(torch.ones(4, 4, dtype=torch.bool), diagonal=1)
    expected = theirs(Y, memory, tgt_mask=causal, memory_key_padding_mask=torch.arange(6)[None, :] >= src_len[:, None])
    out, cache = ours(Y, memory, src_len)
    assert torch.allclose(out, expected, atol=1e-5)
    assert torch.equal(cache, Y)


def test_layer_norm_ignores_the_batch_and_batch_norm_does_not():
    for norm, same in [("layer", True), ("batch", False)]:
        torch.manual_seed(0)
        encoder = transformer.TransformerEncoder(9, num_hiddens=8, num_heads=2, ffn_hiddens=16, num_layers=2,
                                                 norm=norm)
        encoder(torch.randint(0, 9, (16, 5)), torch.full((16,), 5))  # a training step moves batch norm's statistics
        sentence = torch.tensor([[3, 4, 5]])
        alone, _ = encoder(sentence, torch.tensor([3]))
        batch, _ = encoder(torch.tensor([[3, 4, 5, 1, 1], [6, 7, 8, 2, 3]]), torch.tensor([3, 5]))
        assert torch.allclose(alone[0], batch[0, :3], atol=1e-5) == same, norm
    with pytest.raises(ValueError, match="norm"):
        transformer.AddNorm(num_hiddens=4, norm="group")


def _model(vocab: int = 9, **sizes) -> seq2seq.EncoderDecoder:
    sizes = dict(num_hiddens=16, num_heads=2, ffn_hiddens=32, num_layers=2) | sizes
    return seq2seq.EncoderDecoder(transformer.TransformerEncoder(vocab, **sizes),
                                  transformer.TransformerDecoder(vocab, **sizes))


def test_the_decoder_one_token_at_a_time_equals_the_decoder_on_the_whole_target():
    torch.manual_seed(0)
    model = _model().eval()
    src, src_len = torch.tensor([[3, 4, 5, 2, 1], [6, 7, 2, 1, 1]]), torch.tensor([4, 3])
    Y = torch.tensor([[1, 4, 5, 6], [1, 7, 3, 3]])
    whole = model(src, src_len, Y)
    state, steps = model.init_state(src, src_len), []
    for t in range(Y.shape[1]):
        logits, state = model.decoder(Y[:, t:t + 1], state)
        steps.append(logits)
    assert torch.allclose(whole, torch.cat(steps, dim=1), atol=1e-5)
    assert state[3] == 4 and state[2][0].shape == (2, 4, 16)
    self_weights, cross_weights = model.decoder.attention_weights[0]
    assert cross_weights[1, :, :, 3:].abs().max() == 0  # no weight on the second source's padding
    changed = Y.clone()
    changed[:, 3] = 8  # a later token does not change the earlier outputs
    assert torch.allclose(model(src, src_len, changed)[:, :3], whole[:, :3], atol=1e-6)


def test_a_transformer_learns_to_reverse_and_runs_under_beam_search():
    vocab = Vocab([list("abcdef")], reserved=translation.RESERVED)
    g = torch.Generator().manual_seed(0)
    words = [[chr(ord("a") + int(i)) for i in torch.randint(0, 6, (int(n),), generator=g)]
             for n in torch.randint(1, 6, (300,), generator=g)]
    data = translation.build([(w, w[::-1]) for w in words], num_steps=7, src_vocab=vocab, tgt_vocab=vocab)
    torch.manual_seed(0)
    model = _model(len(vocab), num_hiddens=32, ffn_hiddens=64)
    run = seq2seq.train_seq2seq(model, data, batch_size=30, lr=0.005, num_epochs=12, generator=g)
    assert run.losses[-1] < 0.2 * run.losses[0]
    outputs, references = seq2seq.translate(model, data, data.subset(torch.arange(50)), num_steps=7)
    assert sum(o == r for o, r in zip(outputs, references)) >= 40
    bos, eos = vocab["<bos>"], vocab["<eos>"]
    one = seq2seq.beam_search(model, data.src[:1], data.src_len[:1], beam_size=1, bos=bos, eos=eos, max_len=7)
    assert one[0][0] == vocab[outputs[0]]  # beam 1 is greedy, through the cache
    beam = seq2seq.beam_search(model, data.src[:1], data.src_len[:1], beam_size=3, bos=bos, eos=eos, max_len=7)
    assert [c[1] for c in beam] == sorted((c[1] for c in beam), reverse=True)
