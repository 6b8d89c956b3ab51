"""dlnotes.sequences.pretraining: rows, causal and bidirectional stacks, BERT's masking, the
training loop on both objectives, and sampling under a poem's form."""

from __future__ import annotations

from functools import partial

import pytest
import torch

from dlnotes.sequences import pretraining as pt


def _lm(vocab: int = 6, *, causal: bool = True, seed: int = 0) -> pt.TransformerLM:
    torch.manual_seed(seed)
    return pt.TransformerLM(vocab, num_hiddens=16, num_heads=2, ffn_hiddens=32, num_layers=2, causal=causal)


def test_rows_start_every_sequence_at_position_zero_and_padding_is_not_scored():
    R = pt.rows([[5, 6, 7], [8], [1, 2, 3, 4, 5]], length=4, pad=0)
    assert R.tolist() == [[5, 6, 7, 0], [8, 0, 0, 0], [1, 2, 3, 4]]
    inputs, targets = pt.next_token_pairs(R, pad=0)
    assert targets.tolist() == [[6, 7, pt.IGNORE], [pt.IGNORE] * 3, [2, 3, 4]]


def test_learned_positions_and_their_errors():
    model = _lm(vocab=6)
    assert isinstance(model.positions, pt.LearnedPositions)
    with pytest.raises(ValueError, match="max_len"):
        pt.LearnedPositions(num_hiddens=4, max_len=3)(torch.zeros(1, 4, 4))
    with pytest.raises(ValueError, match="positions"):
        pt.TransformerLM(6, num_hiddens=4, num_heads=1, ffn_hiddens=4, num_layers=1, positions="rotary")


def test_a_causal_stack_ignores_later_tokens_and_a_bidirectional_one_does_not():
    X = torch.tensor([[1, 2, 3, 4, 5]])
    later = X.clone()
    later[0, 3:] = 0
    for causal in (True, False):
        model = _lm(causal=causal).eval()
        same = torch.allclose(model(X)[:, :3], model(later)[:, :3], atol=1e-6)
        assert same == causal


def test_masking_follows_berts_proportions():
    g = torch.Generator().manual_seed(0)
    X = torch.randint(1, 50, (200, 100), generator=g)
    keep = torch.zeros_like(X, dtype=torch.bool)
    keep[:, 0] = True
    inputs, targets = pt.mask_tokens(X, mask_id=0, vocab_size=50, rate=0.15, keep=keep, generator=g)
    chosen = targets != pt.IGNORE
    assert abs(chosen.float().mean().item() - 0.15 * 0.99) < 0.01
    assert not chosen[:, 0].any() and torch.equal(targets[chosen], X[chosen])
    masked = (inputs[chosen] == 0).float().mean().item()
    unchanged = (inputs[chosen] == X[chosen]).float().mean().item()
    assert abs(masked - 0.8) < 0.02 and abs(unchanged - (0.1 + 0.1 / 50)) < 0.02
    assert torch.equal(inputs[~chosen], X[~chosen])
    with pytest.raises(ValueError, match="rate"):
        pt.mask_tokens(X, mask_id=0, vocab_size=50, rate=1.5)


def _periodic(length: int = 2000) -> torch.Tensor:
    tokens = torch.tensor([1, 2, 3, 4, 5] * (length // 5))  # tokens 1..5, each fixed by its neighbours
    starts = torch.arange((length - 1) // 8) * 8
    return tokens[starts[:, None] + torch.arange(9)[None, :]]  # rows of 9 that overlap by one


def test_a_causal_lm_learns_a_periodic_sequence_and_samples_it():
    data = _periodic()
    model = _lm()
    run = pt.train_lm(model, data, batch_size=16, lr=0.01, num_epochs=6, generator=torch.Generator().manual_seed(0))
    assert run.losses[-1] < 0.1 * run.losses[0]
    assert pt.sample_tokens(model, [1, 2], num_tokens=6, temperature=0) == [3, 4, 5, 1, 2, 3]
    loss, accuracy = pt.evaluate_lm(model, data[:20])
    assert loss < 0.1 and accuracy == 1.0
    assert model.training  # evaluation and sampling leave the mode as they found it
    with pytest.raises(ValueError, match="prefix"):
        pt.sample_tokens(model, [], num_tokens=1)


def test_a_masked_lm_fills_in_hidden_tokens_from_both_sides():
    data = _periodic()
    model = _lm(causal=False)
    g = torch.Generator().manual_seed(0)
    make_pairs = partial(pt.mask_tokens, mask_id=0, vocab_size=6, rate=0.2, generator=g)
    run = pt.train_lm(model, data, batch_size=16, lr=0.01, num_epochs=25, make_pairs=make_pairs, generator=g)
    assert run.losses[-1] < 0.2 * run.losses[0]
    X = torch.tensor([[1, 2, 0, 4, 5, 1, 0, 3]])  # the hidden tokens are 3 and 2
    assert model.eval()(X)[0, [2, 6]].argmax(dim=-1).tolist() == [3, 2]


def test_the_poem_form_forces_heads_and_punctuation():
    num_tokens, forced = pt.poem_form([7, -1, 8, -1], verse_length=5, comma=1, full_stop=2)
    assert num_tokens == 24
    assert forced == {0: 7, 5: 1, 11: 2, 12: 8, 17: 1, 23: 2}
    model = _lm(vocab=10)
    g = torch.Generator().manual_seed(0)
    out = pt.sample_tokens(model, [0], num_tokens=num_tokens, forced=forced, banned=[0, 1, 2], generator=g)
    assert all(out[step] == token for step, token in forced.items())
    assert not set(out[i] for i in range(num_tokens) if i not in forced) & {0, 1, 2}
