"""dlnotes.sequences.bptt: gradients through time, their decay, truncation."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dlnotes.sequences import bptt, rnn


def test_the_last_state_gets_the_readout_itself():
    torch.manual_seed(0)
    layer = nn.RNN(3, 6)
    norms = bptt.state_gradient_norms(layer, torch.randn(7, 4, 3))
    assert norms.shape == (7,)
    assert norms[-1].item() == pytest.approx(1.0, abs=1e-6)


def test_in_the_linear_regime_the_gradient_is_a_matrix_power():
    torch.manual_seed(0)
    layer = nn.RNN(3, 5).double()
    with torch.no_grad():
        layer.bias_ih_l0.zero_()
        layer.bias_hh_l0.zero_()
    u = torch.randn(5, dtype=torch.float64)
    inputs = torch.zeros(6, 2, 3, dtype=torch.float64)  # every state stays 0, where tanh' = 1
    norms = bptt.state_gradient_norms(layer, inputs, readout=u)
    W = layer.weight_hh_l0.detach()  # h_t = tanh(W h_{t-1} + ...): dl/dh_{t-1} = W^T dl/dh_t
    expected = [torch.linalg.matrix_power(W.T, k) @ (u / u.norm()) for k in range(6)]
    assert torch.allclose(norms.flip(0), torch.stack([e.norm() for e in expected]), atol=1e-12)


def test_an_lstm_state_counts_both_parts():
    torch.manual_seed(0)
    layer, inputs = nn.LSTM(3, 4, num_layers=2), torch.randn(5, 2, 3)
    norms = bptt.state_gradient_norms(layer, inputs)
    # the returned c_T feeds no later step, so the last entry is the readout alone
    assert norms.shape == (5,) and norms[-1].item() == pytest.approx(1.0, abs=1e-6)
    states, state = [], None  # the same gradients with the cell states left out: smaller where c_t counts
    for x in inputs:
        _, state = layer(x[None], state)
        state[0].retain_grad()
        states.append(state[0])
    (state[0][-1] @ (u := torch.randn(4, generator=torch.Generator().manual_seed(0)))).sum().backward()
    h_only = torch.stack([s.grad.pow(2).sum(dim=(0, 2)).sqrt().mean() for s in states]) / u.norm()
    assert (norms[:-1] > h_only[:-1] + 1e-6).all()


def test_decay_rate_reads_a_geometric_sequence():
    k = torch.arange(30, dtype=torch.float64)
    assert bptt.decay_rate((0.8 ** k).flip(0)) == pytest.approx(0.8)
    assert bptt.decay_rate((1.3 ** k).flip(0), skip=0) == pytest.approx(1.3)
    overflowed = torch.cat([torch.full((3,), float("inf")), (2.0 ** torch.arange(10.0)).flip(0)])
    assert bptt.decay_rate(overflowed, skip=0) == pytest.approx(2.0)  # fitted up to the overflow
    underflowed = torch.cat([torch.zeros(3), (0.5 ** torch.arange(10.0))]).flip(0)  # float32 gave out: zeros
    assert bptt.decay_rate(underflowed, skip=0) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="more than"):
        bptt.decay_rate(torch.ones(5), skip=5)


@pytest.mark.parametrize("layer, gates", [(nn.RNN(4, 6), 1), (nn.GRU(4, 6), 3), (nn.LSTM(4, 6), 4),
                                          (rnn.RNNScratch(4, 6), 1)])
def test_scaling_sets_the_spectral_radius_of_every_gate(layer, gates):
    bptt.scale_recurrent_weights(layer, spectral_radius=1.5)
    W = layer.W_hh if isinstance(layer, rnn.RNNScratch) else layer.weight_hh_l0
    blocks = W.detach().split(6, dim=0)
    assert len(blocks) == gates
    for block in blocks:
        assert torch.linalg.eigvals(block).abs().max().item() == pytest.approx(1.5, rel=1e-5)


def test_truncation_changes_only_the_gradient_that_flows_through_time():
    torch.manual_seed(0)
    model = rnn.RNNLM(nn.RNN(8, 16), vocab_size=8, num_hiddens=16)
    X, Y = torch.randint(0, 8, (3, 24)), torch.randint(0, 8, (3, 24))
    full = bptt.lm_gradient(model, X, Y)
    assert torch.allclose(full, bptt.lm_gradient(model, X, Y, truncate=24))  # one chunk: nothing cut
    cut = bptt.lm_gradient(model, X, Y, truncate=4)
    n_out = sum(p.numel() for p in model.output.parameters())  # the output layer's grads come last
    assert torch.allclose(full[-n_out:], cut[-n_out:], atol=1e-6)  # same forward values, same readout grads
    assert bptt.cosine(full[:-n_out], cut[:-n_out]) < 0.9999
    with pytest.raises(ValueError, match="truncate"):
        bptt.lm_gradient(model, X, Y, truncate=0)


def test_bad_inputs_are_errors():
    with pytest.raises(ValueError, match="time-major"):
        bptt.state_gradient_norms(nn.RNN(3, 4), torch.randn(5, 3))


def test_the_forget_bias_opens_the_forget_gate():
    torch.manual_seed(0)
    lstm = bptt.set_forget_bias(nn.LSTM(3, 5), 4.0)
    assert torch.equal(lstm.bias_ih_l0[5:10] + lstm.bias_hh_l0[5:10], torch.full((5,), 4.0))
    W_f = lstm.weight_ih_l0[5:10]  # forget gate of x alone, state zero: f = σ(W_f x + 4)
    with torch.no_grad():
        x = torch.randn(2, 3)
        f = torch.sigmoid(x @ W_f.T + 4.0)
    assert (f > 0.9).all()
    # with the gate open the gradient reaching 20 steps back is far larger than with the default bias
    inputs = torch.randn(20, 4, 3)
    opened = bptt.state_gradient_norms(lstm, inputs)[0]
    torch.manual_seed(0)
    default = bptt.state_gradient_norms(nn.LSTM(3, 5), inputs)[0]
    assert opened > 100 * default
