"""dlnotes.sequences.seq2seq: masks, the encoder's padding, teacher forcing, greedy and beam search."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch.nn import functional as F

from dlnotes.sequences import seq2seq, translation
from dlnotes.sequences.text import Vocab


def _model(src_vocab: int = 9, tgt_vocab: int = 7, *, seed: int = 0) -> seq2seq.EncoderDecoder:
    torch.manual_seed(seed)
    return seq2seq.EncoderDecoder(seq2seq.Seq2SeqEncoder(src_vocab, embed_size=4, num_hiddens=6, num_layers=2),
                                  seq2seq.Seq2SeqDecoder(tgt_vocab, embed_size=4, num_hiddens=6, num_layers=2))


def test_the_mask_and_the_masked_loss_ignore_padding():
    mask = seq2seq.sequence_mask(torch.tensor([1, 3, 0]), 4)
    assert mask.tolist() == [[True, False, False, False], [True, True, True, False], [False] * 4]
    torch.manual_seed(0)
    logits, targets = torch.randn(3, 4, 5), torch.randint(2, 5, (3, 4))
    lengths = torch.tensor([2, 4, 1])
    padded = targets.clone()
    padded[~seq2seq.sequence_mask(lengths, 4)] = 1  # pad index 1
    expected = F.cross_entropy(logits.reshape(-1, 5), padded.reshape(-1), ignore_index=1)
    assert torch.allclose(seq2seq.masked_cross_entropy(logits, targets, lengths), expected)


def test_a_sentence_encodes_alike_alone_and_padded_in_a_batch():
    model = _model()
    alone = model.encoder(torch.tensor([[3, 4, 5]]), torch.tensor([3]))
    batch = model.encoder(torch.tensor([[6, 7, 8, 3, 2], [3, 4, 5, 1, 1]]), torch.tensor([5, 3]))
    assert torch.allclose(alone[1][:, 0], batch[1][:, 1], atol=1e-6)  # the final state ignores the padding
    assert torch.allclose(alone[0][:, 0], batch[0][:3, 1], atol=1e-6)
    assert batch[0][3:, 1].abs().max() == 0  # outputs after the end are zeros


def test_the_decoder_step_by_step_equals_the_decoder_on_the_whole_target():
    model = _model()
    src, src_len = torch.tensor([[3, 4, 5, 2]]), torch.tensor([4])
    Y = torch.tensor([[1, 4, 5, 6]])
    whole = model(src, src_len, Y)
    state, steps = model.init_state(src, src_len), []
    for t in range(Y.shape[1]):
        logits, state = model.decoder(Y[:, t:t + 1], state)
        steps.append(logits)
    assert torch.allclose(whole, torch.cat(steps, dim=1), atol=1e-6)
    assert seq2seq.shift_right(torch.tensor([[4, 5, 2]]), 1).tolist() == [[1, 4, 5]]


def _exhaustive_best(model, src, src_len, *, vocab, bos, eos, max_len):
    best = (None, -math.inf)
    tokens = [t for t in range(vocab) if t != eos]
    for length in range(max_len):
        for seq in itertools.product(tokens, repeat=length):
            score = seq2seq.sequence_log_prob(model, src, src_len, list(seq), bos=bos, eos=eos)
            best = max(best, (list(seq), score), key=lambda c: c[1])
    return best


def test_beam_one_is_greedy_and_a_wide_beam_finds_the_likeliest_sequence():
    src, src_len = torch.tensor([[3, 4, 5]]), torch.tensor([3])
    bos, eos, V, max_len = 0, 1, 4, 4
    for seed in range(5):
        model = _model(tgt_vocab=V, seed=seed)
        greedy = seq2seq.greedy_decode(model, src, src_len, bos=bos, eos=eos, max_len=max_len)[0]
        beam1 = seq2seq.beam_search(model, src, src_len, beam_size=1, bos=bos, eos=eos, max_len=max_len)
        assert beam1[0][0] == greedy
        if eos in greedy + [eos] and len(greedy) < max_len:  # greedy ended by itself: scores agree too
            assert beam1[0][1] == pytest.approx(seq2seq.sequence_log_prob(model, src, src_len, greedy, bos=bos, eos=eos))
        wide = seq2seq.beam_search(model, src, src_len, beam_size=V ** max_len, bos=bos, eos=eos, max_len=max_len)
        finished = [c for c in wide if len(c[0]) < max_len]  # those that ended with <eos>
        tokens, score = _exhaustive_best(model, src, src_len, vocab=V, bos=bos, eos=eos, max_len=max_len)
        assert finished[0][0] == tokens and finished[0][1] == pytest.approx(score, abs=1e-5)
    with pytest.raises(ValueError, match="beam_size"):
        seq2seq.beam_search(model, src, src_len, beam_size=0, bos=bos, eos=eos, max_len=3)


def test_training_with_teacher_forcing_learns_to_copy():
    vocab = Vocab([list("abcdef")], reserved=translation.RESERVED)
    g = torch.Generator().manual_seed(0)
    pairs = []
    for _ in range(200):
        word = [chr(ord("a") + int(i)) for i in torch.randint(0, 6, (int(torch.randint(1, 5, (1,), generator=g)),),
                                                              generator=g)]
        pairs.append((word, word))
    data = translation.build(pairs, num_steps=6, src_vocab=vocab, tgt_vocab=vocab)
    torch.manual_seed(0)
    model = seq2seq.EncoderDecoder(seq2seq.Seq2SeqEncoder(len(vocab), embed_size=16, num_hiddens=32),
                                   seq2seq.Seq2SeqDecoder(len(vocab), embed_size=16, num_hiddens=32))
    run = seq2seq.train_seq2seq(model, data, batch_size=20, lr=0.01, num_epochs=30, generator=g)
    assert run.losses[-1] < 0.2 * run.losses[0]
    out = seq2seq.greedy_decode(model, data.src[:50], data.src_len[:50], bos=vocab["<bos>"], eos=vocab["<eos>"],
                                max_len=6)
    copied = sum(o == row[:n - 1] for o, row, n in zip(out, data.tgt[:50].tolist(), data.tgt_len[:50].tolist()))
    assert copied >= 40
    model.eval()
    outputs, references = seq2seq.translate(model, data, data.subset(torch.arange(50)), num_steps=6)
    assert not model.training  # decoding leaves the mode as it found it
    assert references == [word for word, _ in pairs[:50]]  # the targets' tokens, without <eos> and padding
    assert outputs == [vocab.to_tokens(o) for o in out]
    assert sum(o == r for o, r in zip(outputs, references)) == copied
