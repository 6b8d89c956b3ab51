"""dlnotes.sequences.rnn: the scratch RNN, the language model, clipping, training, generation."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from dlnotes.sequences import rnn, text


def test_the_scratch_rnn_equals_nn_rnn_with_the_same_weights():
    g = torch.Generator().manual_seed(0)
    mine = rnn.RNNScratch(5, 7, sigma=0.3, generator=g).double()
    theirs = nn.RNN(5, 7).double()  # h_t = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)
    with torch.no_grad():
        theirs.weight_ih_l0.copy_(mine.W_xh.T)
        theirs.weight_hh_l0.copy_(mine.W_hh.T)
        theirs.bias_ih_l0.copy_(mine.b_h)
        theirs.bias_hh_l0.zero_()
    X = torch.randn(6, 3, 5, generator=g, dtype=torch.float64)  # (T, B, d)
    H0 = torch.randn(1, 3, 7, generator=g, dtype=torch.float64)
    (out_m, h_m), (out_t, h_t) = mine(X, H0), theirs(X, H0)
    assert out_m.shape == (6, 3, 7) and h_m.shape == (1, 3, 7)
    assert torch.allclose(out_m, out_t, atol=1e-12) and torch.allclose(h_m, h_t, atol=1e-12)
    out_zero, _ = mine(X)  # no state given: zeros
    assert torch.allclose(out_zero, theirs(X, torch.zeros(1, 3, 7, dtype=torch.float64))[0], atol=1e-12)


def test_an_untrained_language_model_is_close_to_uniform():
    vocab = text.Vocab(list("abcdefgh"))
    torch.manual_seed(0)
    model = rnn.RNNLM(rnn.RNNScratch(len(vocab), 16), vocab_size=len(vocab), num_hiddens=16)
    corpus = torch.randint(1, len(vocab), (2000,))
    logits, state = model(corpus[:40].reshape(4, 10))
    assert logits.shape == (4, 10, len(vocab)) and state.shape == (1, 4, 16)
    assert rnn.held_out_perplexity(model, corpus, batch_size=4, num_steps=10) == pytest.approx(len(vocab), rel=0.3)


@pytest.mark.parametrize("sampling", rnn.SAMPLINGS)
def test_training_learns_a_repetitive_text_and_generation_continues_it(sampling):
    vocab = text.Vocab(list("abcd"))
    corpus = torch.tensor(vocab[list("abcd" * 300)])
    torch.manual_seed(0)
    model = rnn.RNNLM(nn.GRU(len(vocab), 32), vocab_size=len(vocab), num_hiddens=32)
    run = rnn.train_language_model(model, corpus, corpus[:400], batch_size=8, num_steps=10, lr=0.01,
                                   num_epochs=8, sampling=sampling, generator=torch.Generator().manual_seed(0))
    assert len(run.held_out_perplexity) == len(run.train_perplexity) == 8
    assert run.held_out_perplexity[-1] < 1.1 < run.held_out_perplexity[0]
    assert rnn.generate(model, "ab", vocab, num_tokens=10) == "abcdabcdabcd"
    sampled = rnn.generate(model, "ab", vocab, num_tokens=10, temperature=1.0, generator=torch.Generator().manual_seed(0))
    assert len(sampled) == 12 and sampled.startswith("ab")


def test_the_state_is_detached_for_a_tensor_and_for_an_lstm_tuple():
    h = torch.zeros(1, 2, 3, requires_grad=True) * 2
    assert not rnn.detach_state(h).requires_grad and rnn.detach_state(None) is None
    pair = rnn.detach_state((h, h))
    assert isinstance(pair, tuple) and not any(s.requires_grad for s in pair)


def test_bad_training_settings_are_errors():
    vocab = text.Vocab(list("ab"))
    model = rnn.RNNLM(nn.GRU(len(vocab), 4), vocab_size=len(vocab), num_hiddens=4)
    corpus = torch.tensor(vocab[list("ab" * 100)])
    with pytest.raises(ValueError, match="sampling"):
        rnn.train_language_model(model, corpus, batch_size=2, num_steps=5, lr=0.1, num_epochs=1, sampling="shuffled")
    with pytest.raises(ValueError, match="optimizer"):
        rnn.train_language_model(model, corpus, batch_size=2, num_steps=5, lr=0.1, num_epochs=1, optimizer="lbfgs")


def test_load_from_copies_nn_rnn_so_that_the_outputs_agree():
    torch.manual_seed(0)
    theirs = nn.RNN(5, 7).double()
    mine = rnn.RNNScratch(5, 7).double().load_from(theirs)
    X = torch.randn(6, 3, 5, dtype=torch.float64)  # (T, B, d)
    H0 = torch.randn(1, 3, 7, dtype=torch.float64)
    for a, b in zip(mine(X, H0), theirs(X, H0)):
        assert torch.allclose(a, b, atol=1e-12)
    with pytest.raises(ValueError, match="one-layer"):
        rnn.RNNScratch(5, 7).load_from(nn.RNN(5, 7, num_layers=2))
    with pytest.raises(ValueError, match="does not fit"):
        rnn.RNNScratch(5, 8).load_from(nn.RNN(5, 7))


@pytest.mark.parametrize("make", [
    lambda V: rnn.RNNLM(nn.GRU(V, 8), vocab_size=V, num_hiddens=8),
    lambda V: rnn.RNNLM(nn.LSTM(6, 8), vocab_size=V, num_hiddens=8, embed_size=6),
    lambda V: rnn.JordanLM(vocab_size=V, num_hiddens=8),
])
def test_carrying_the_state_across_two_halves_equals_one_pass(make):
    torch.manual_seed(0)
    model = make(11)
    X = torch.randint(0, 11, (3, 10))  # (B, T)
    whole, _ = model(X)
    first, state = model(X[:, :4])
    second, _ = model(X[:, 4:], state)
    assert whole.shape == (3, 10, 11)
    assert torch.allclose(whole, torch.cat([first, second], dim=1), atol=1e-6)


def test_an_identity_embedding_is_the_one_hot_input():
    torch.manual_seed(0)
    one_hot = rnn.RNNLM(nn.RNN(9, 5), vocab_size=9, num_hiddens=5)
    embedded = rnn.RNNLM(nn.RNN(9, 5), vocab_size=9, num_hiddens=5, embed_size=9)
    embedded.load_state_dict({**one_hot.state_dict(), "embedding.weight": torch.eye(9)})
    X = torch.randint(0, 9, (2, 7))
    assert torch.allclose(one_hot(X)[0], embedded(X)[0], atol=1e-6)


def test_the_jordan_memory_is_the_previous_output():
    torch.manual_seed(0)
    model = rnn.JordanLM(vocab_size=4, num_hiddens=6)
    X = torch.tensor([[1, 2, 3]])
    logits, state = model(X)
    assert torch.equal(state[0], logits[:, -1])  # the state is the last output (1, B, V)
    with torch.no_grad():  # without the feedback weights, each step sees its own input only
        model.hidden.weight[:, 4:] = 0
    alone = torch.cat([model(X[:, t:t + 1])[0] for t in range(3)], dim=1)
    assert torch.allclose(model(X)[0], alone, atol=1e-6)


def test_generation_skips_unknown_unless_allowed():
    vocab = text.Vocab(list("abc"))
    model = rnn.RNNLM(nn.RNN(len(vocab), 4), vocab_size=len(vocab), num_hiddens=4)
    with torch.no_grad():
        model.output.bias[vocab.unk] = 100.0  # <unk> is by far the likeliest
    assert "<unk>" not in rnn.generate(model, "a", vocab, num_tokens=5)
    assert rnn.generate(model, "a", vocab, num_tokens=2, allow_unknown=True) == "a<unk><unk>"


def test_loss_jitter_removes_the_trend_and_measures_the_noise():
    steps = torch.arange(400, dtype=torch.float64)
    trend = (5 - steps / 100).tolist()
    noise = (0.3 * torch.randn(400, generator=torch.Generator().manual_seed(0), dtype=torch.float64)).tolist()
    assert rnn.loss_jitter(trend) < 1e-9
    assert rnn.loss_jitter([t + n for t, n in zip(trend, noise)]) == pytest.approx(0.3, rel=0.15)
    with pytest.raises(ValueError, match="at least 50"):
        rnn.loss_jitter(trend[:40])


def test_a_diverging_run_reports_infinite_perplexity_instead_of_failing():
    vocab = text.Vocab(list("abcd"))
    corpus = torch.tensor(vocab[list("abcdbadc" * 100)])
    torch.manual_seed(0)
    model = rnn.RNNLM(nn.RNN(len(vocab), 16), vocab_size=len(vocab), num_hiddens=16)
    run = rnn.train_language_model(model, corpus, corpus[:200], batch_size=4, num_steps=10, lr=1e6,
                                   num_epochs=2, optimizer="sgd", max_norm=None)
    assert len(run.step_losses) == len(run.grad_norms) > 0
    assert run.train_perplexity == run.held_out_perplexity == [math.inf, math.inf]  # exp overflows


def test_held_out_perplexity_without_a_carried_state_restarts_every_window():
    torch.manual_seed(0)
    model = rnn.RNNLM(nn.GRU(6, 8), vocab_size=6, num_hiddens=8)
    corpus = torch.randint(0, 6, (41,))
    total, count = 0.0, 0
    X_all, Y_all = corpus[:40].reshape(2, 20), corpus[1:41].reshape(2, 20)  # batch_size 2
    with torch.no_grad():
        for i in range(0, 20, 5):  # every window from a zero state
            logits, _ = model(X_all[:, i:i + 5])
            total += F.cross_entropy(logits.reshape(-1, 6), Y_all[:, i:i + 5].reshape(-1), reduction="sum").item()
            count += 10
    restarted = rnn.held_out_perplexity(model, corpus, batch_size=2, num_steps=5, carry_state=False)
    assert restarted == pytest.approx(math.exp(total / count), rel=1e-6)
    carried = rnn.held_out_perplexity(model, corpus, batch_size=2, num_steps=5)
    assert carried != pytest.approx(restarted, rel=1e-6)  # a GRU with memory sees more context when carried
    whole = rnn.held_out_perplexity(model, corpus, batch_size=2, num_steps=20, carry_state=False)
    assert whole == pytest.approx(rnn.held_out_perplexity(model, corpus, batch_size=2, num_steps=20), rel=1e-9)
