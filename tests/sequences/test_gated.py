"""dlnotes.sequences.gated: scratch GRU and LSTM equal PyTorch's, deep and bidirectional stacks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dlnotes.sequences import gated, rnn


def _one_layer(layer: nn.RNNBase, suffix: str) -> nn.RNNBase:
    """The weights of one layer (or direction) of a multi-layer PyTorch RNN, as a one-layer RNN."""
    single = type(layer)(layer.hidden_size if suffix.startswith("_l1") else layer.input_size, layer.hidden_size)
    single = single.double()
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(single, f"{name}_l0").copy_(getattr(layer, name + suffix))
    return single


def test_the_scratch_gru_equals_nn_gru():
    torch.manual_seed(0)
    theirs = nn.GRU(5, 7).double()
    mine = gated.GRUScratch(5, 7).double().load_from(theirs)
    X, H0 = torch.randn(6, 3, 5, dtype=torch.float64), torch.randn(1, 3, 7, dtype=torch.float64)
    for a, b in zip(mine(X, H0), theirs(X, H0)):
        assert torch.allclose(a, b, atol=1e-12)


def test_the_scratch_lstm_equals_nn_lstm():
    torch.manual_seed(0)
    theirs = nn.LSTM(5, 7).double()
    mine = gated.LSTMScratch(5, 7).double().load_from(theirs)
    X = torch.randn(6, 3, 5, dtype=torch.float64)
    state = (torch.randn(1, 3, 7, dtype=torch.float64), torch.randn(1, 3, 7, dtype=torch.float64))
    (out_m, (h_m, c_m)), (out_t, (h_t, c_t)) = mine(X, state), theirs(X, state)
    assert torch.allclose(out_m, out_t, atol=1e-12)
    assert torch.allclose(h_m, h_t, atol=1e-12) and torch.allclose(c_m, c_t, atol=1e-12)
    out_zero, _ = mine(X)  # no state: zeros, as in PyTorch
    assert torch.allclose(out_zero, theirs(X)[0], atol=1e-12)


def test_a_stack_of_scratch_layers_equals_a_two_layer_gru():
    torch.manual_seed(0)
    theirs = nn.GRU(4, 6, num_layers=2).double()
    mine = gated.Stacked([gated.GRUScratch(4, 6).double().load_from(_one_layer(theirs, "_l0")),
                          gated.GRUScratch(6, 6).double().load_from(_one_layer(theirs, "_l1"))])
    X = torch.randn(5, 2, 4, dtype=torch.float64)
    out_m, states = mine(X)
    out_t, h_t = theirs(X)
    assert torch.allclose(out_m, out_t, atol=1e-12)
    assert torch.allclose(torch.cat(states), h_t, atol=1e-12)  # (num_layers, B, h)


def test_a_bidirectional_pair_equals_a_bidirectional_lstm_and_sees_the_future():
    torch.manual_seed(0)
    theirs = nn.LSTM(4, 6, bidirectional=True).double()
    mine = gated.Bidirectional(gated.LSTMScratch(4, 6).double().load_from(_one_layer(theirs, "_l0")),
                               gated.LSTMScratch(4, 6).double().load_from(_one_layer(theirs, "_l0_reverse")))
    X = torch.randn(5, 2, 4, dtype=torch.float64)
    out_m, _ = mine(X)
    assert out_m.shape == (5, 2, 12)
    assert torch.allclose(out_m, theirs(X)[0], atol=1e-12)
    later = X.clone()
    later[-1] += 1.0  # change only the last step
    changed = (mine(later)[0] - out_m).abs()[0]  # output at the first step (B, 12)
    assert changed[:, :6].max() == 0 and changed[:, 6:].max() > 1e-6  # only the backward half has seen it


def test_states_of_stacks_and_pairs_detach():
    torch.manual_seed(0)
    model = rnn.RNNLM(gated.Stacked([gated.LSTMScratch(5, 4), gated.LSTMScratch(4, 4)]), vocab_size=5, num_hiddens=4)
    _, state = model(torch.randint(0, 5, (2, 3)))
    cut = rnn.detach_state(state)
    assert isinstance(cut, list) and all(not t.requires_grad for s in cut for t in s)


def test_load_from_rejects_layers_that_do_not_fit():
    with pytest.raises(ValueError, match="one-layer"):
        gated.GRUScratch(3, 4).load_from(nn.GRU(3, 4, num_layers=2))
    with pytest.raises(ValueError, match="one-layer"):
        gated.LSTMScratch(3, 4).load_from(nn.GRU(3, 4))
    with pytest.raises(ValueError, match="does not fit"):
        gated.LSTMScratch(3, 5).load_from(nn.LSTM(3, 4))
    with pytest.raises(ValueError, match="at least one"):
        gated.Stacked([])
