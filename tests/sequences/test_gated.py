"""dlnotes.sequences.gated: scratch GRU and LSTM equal PyTorch's, deep and bidirectional stacks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dlnotes.sequences import gated, rnn


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
    mine = gated.Stacked([gated.GRUScratch(4, 6).double(), gated.GRUScratch(6, 6).double()]).load_from(theirs)
    X = torch.randn(5, 2, 4, dtype=torch.float64)
    out_m, states = mine(X)
    out_t, h_t = theirs(X)
    assert torch.allclose(out_m, out_t, atol=1e-12)
    assert torch.allclose(torch.cat(states), h_t, atol=1e-12)  # (num_layers, B, h)


def test_a_bidirectional_pair_equals_a_bidirectional_lstm_and_sees_the_future():
    torch.manual_seed(0)
    theirs = nn.LSTM(4, 6, bidirectional=True).double()
    mine = gated.Bidirectional(gated.LSTMScratch(4, 6).double(), gated.LSTMScratch(4, 6).double()).load_from(theirs)
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
    with pytest.raises(ValueError, match="needs a one-directional"):
        gated.Stacked([gated.GRUScratch(3, 4), gated.GRUScratch(4, 4)]).load_from(nn.GRU(3, 4, num_layers=3))
    with pytest.raises(ValueError, match="bidirectional"):
        gated.Bidirectional(gated.GRUScratch(3, 4), gated.GRUScratch(3, 4)).load_from(nn.GRU(3, 4))
    with pytest.raises(ValueError, match="unknown gate"):
        gated.GRUScratch(3, 4, fixed_gates={"f": 1.0})
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        gated.LSTMScratch(3, 4, fixed_gates={"f": 2.0})


def test_resetting_before_the_product_is_another_gru_that_agrees_when_the_gate_is_open():
    torch.manual_seed(0)
    theirs = nn.GRU(5, 7).double()
    before = gated.GRUScratch(5, 7, reset_after=False).double().load_from(theirs)
    X = torch.randn(6, 3, 5, dtype=torch.float64)
    assert (before(X)[0] - theirs(X)[0]).abs().max() > 1e-3  # same weights, another function
    H = torch.randn(3, 7, dtype=torch.float64)  # by hand, one step: N = tanh(x W_xn + b_xn + (R ⊙ h) W_hn + b_hn)
    x, R = X[0], torch.sigmoid(X[0] @ before.W_xr + H @ before.W_hr + before.b_r)
    Z = torch.sigmoid(x @ before.W_xz + H @ before.W_hz + before.b_z)
    N = torch.tanh(x @ before.W_xn + before.b_xn + (R * H) @ before.W_hn + before.b_hn)
    assert torch.allclose(before(X[:1], H[None])[0][0], Z * H + (1 - Z) * N, atol=1e-12)
    with torch.no_grad():
        theirs.bias_ih_l0[:7] = 50.0  # reset gate R = 1: nothing is reset, and the two coincide
    before.load_from(theirs)
    assert torch.allclose(before(X)[0], theirs(X)[0], atol=1e-12)


def test_gate_values_are_the_gates_the_forward_pass_used():
    torch.manual_seed(0)
    lstm = gated.LSTMScratch(3, 4).double()
    with torch.no_grad():
        lstm.b["f"].fill_(-60.0)  # forget gate shut: the cell keeps only this step's write
    X = torch.randn(5, 2, 3, dtype=torch.float64)
    gates = gated.gate_values(lstm, X)
    assert set(gates) == {"i", "f", "o"} and gates["f"].shape == (5, 2, 4)
    assert gates["f"].max() < 1e-20 and ((gates["i"] > 0) & (gates["i"] < 1)).all()
    outputs, _ = lstm(X)
    cell = gates["i"] * torch.tanh(X @ lstm.W_x["g"] + torch.cat([torch.zeros(1, 2, 4, dtype=X.dtype), outputs[:-1]])
                                   @ lstm.W_h["g"] + lstm.b["g"])  # C_t = I_t ⊙ G_t when F = 0
    assert torch.allclose(outputs, gates["o"] * torch.tanh(cell), atol=1e-12)
    gru = gated.GRUScratch(3, 4).double()
    assert set(gated.gate_values(gru, X)) == {"r", "z"}
    with pytest.raises(ValueError, match="GRUScratch or LSTMScratch"):
        gated.gate_values(nn.GRU(3, 4), X)


def test_a_gru_that_never_keeps_and_never_resets_is_a_tanh_rnn():
    torch.manual_seed(0)
    plain = nn.RNN(3, 5).double()
    gru = gated.GRUScratch(3, 5, fixed_gates={"z": 0.0, "r": 1.0}).double()
    with torch.no_grad():  # the candidate's weights are the RNN's: H' = tanh(X W_xn + b_xn + H W_hn + b_hn)
        gru.W_xn.copy_(plain.weight_ih_l0.T)
        gru.W_hn.copy_(plain.weight_hh_l0.T)
        gru.b_xn.copy_(plain.bias_ih_l0)
        gru.b_hn.copy_(plain.bias_hh_l0)
    X, H0 = torch.randn(7, 2, 3, dtype=torch.float64), torch.randn(1, 2, 5, dtype=torch.float64)
    for a, b in zip(gru(X, H0), plain(X, H0)):
        assert torch.allclose(a, b, atol=1e-12)


def test_an_lstm_cell_that_never_forgets_and_never_writes_keeps_its_value():
    torch.manual_seed(0)
    lstm = gated.LSTMScratch(3, 4, fixed_gates={"f": 1.0, "i": 0.0}).double()
    X = torch.randn(6, 2, 3, dtype=torch.float64)
    C0 = torch.randn(1, 2, 4, dtype=torch.float64)
    outputs, (H, C) = lstm(X, (torch.zeros(1, 2, 4, dtype=torch.float64), C0))
    assert torch.equal(C, C0)
    O = gated.gate_values(lstm, X)["o"]  # gate_values starts from zeros; the output gate then differs
    assert O.shape == (6, 2, 4) and (O > 0).all() and (O < 1).all()
    assert torch.allclose(outputs[0], torch.sigmoid(X[0] @ lstm.W_x["o"] + lstm.b["o"]) * torch.tanh(C0[0]),
                          atol=1e-12)  # the first step from H = 0
