"""Gated recurrent layers from scratch, in PyTorch's own formulation so that copied weights give the
same outputs as ``nn.GRU`` and ``nn.LSTM``; and the two ways to combine layers, stacking (deep
RNNs) and running a second layer backwards in time (bidirectional RNNs).

Every layer takes time-major inputs (T, B, d) and a state, and returns outputs (T, B, h) and the
new state, like the layers of :mod:`dlnotes.sequences.rnn`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def _params(generator: torch.Generator | None, sigma: float, *shapes: tuple[int, ...]) -> list[nn.Parameter]:
    return [nn.Parameter(sigma * torch.randn(*shape, generator=generator)) for shape in shapes]


def _check_layer(layer: nn.RNNBase, kind: type, num_inputs: int, num_hiddens: int) -> None:
    if not isinstance(layer, kind) or layer.num_layers != 1 or layer.bidirectional or not layer.bias:
        raise ValueError(f"load_from needs a one-layer, one-directional {kind.__name__} with biases")
    if (layer.input_size, layer.hidden_size) != (num_inputs, num_hiddens):
        raise ValueError(f"{kind.__name__}({layer.input_size}, {layer.hidden_size}) does not fit a scratch "
                         f"layer of {num_inputs} inputs and {num_hiddens} hidden units")


class GRUScratch(nn.Module):
    """A GRU as PyTorch computes it (r resets the *product* W_hn h, not h itself):

    R = σ(X W_xr + H W_hr + b_r),  Z = σ(X W_xz + H W_hz + b_z),
    N = tanh(X W_xn + b_xn + R ⊙ (H W_hn + b_hn)),  H' = Z ⊙ H + (1 − Z) ⊙ N.
    """

    def __init__(self, num_inputs: int, num_hiddens: int, *, sigma: float = 0.01,
                 generator: torch.Generator | None = None):
        super().__init__()
        d, h = num_inputs, num_hiddens
        self.num_inputs, self.num_hiddens = d, h
        self.W_xr, self.W_xz, self.W_xn = _params(generator, sigma, (d, h), (d, h), (d, h))
        self.W_hr, self.W_hz, self.W_hn = _params(generator, sigma, (h, h), (h, h), (h, h))
        self.b_r, self.b_z, self.b_xn, self.b_hn = (nn.Parameter(torch.zeros(h)) for _ in range(4))

    def forward(self, inputs: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        # inputs (T, B, d); state (1, B, h), zeros if None
        H = inputs.new_zeros(inputs.shape[1], self.num_hiddens) if state is None else state[0]
        outputs = []
        for X in inputs:  # X (B, d)
            R = torch.sigmoid(X @ self.W_xr + H @ self.W_hr + self.b_r)  # reset gate (B, h)
            Z = torch.sigmoid(X @ self.W_xz + H @ self.W_hz + self.b_z)  # update gate (B, h)
            N = torch.tanh(X @ self.W_xn + self.b_xn + R * (H @ self.W_hn + self.b_hn))  # candidate (B, h)
            H = Z * H + (1 - Z) * N
            outputs.append(H)
        return torch.stack(outputs), H[None]  # (T, B, h), (1, B, h)

    def load_from(self, layer: nn.GRU) -> "GRUScratch":
        """Copy a one-layer ``nn.GRU``'s weights (stacked as reset, update, new)."""
        _check_layer(layer, nn.GRU, self.num_inputs, self.num_hiddens)
        with torch.no_grad():
            for mine, theirs in zip((self.W_xr, self.W_xz, self.W_xn), layer.weight_ih_l0.chunk(3)):
                mine.copy_(theirs.T)
            for mine, theirs in zip((self.W_hr, self.W_hz, self.W_hn), layer.weight_hh_l0.chunk(3)):
                mine.copy_(theirs.T)
            (b_ir, b_iz, b_in), (b_hr, b_hz, b_hn) = layer.bias_ih_l0.chunk(3), layer.bias_hh_l0.chunk(3)
            self.b_r.copy_(b_ir + b_hr)
            self.b_z.copy_(b_iz + b_hz)
            self.b_xn.copy_(b_in)
            self.b_hn.copy_(b_hn)
        return self


class LSTMScratch(nn.Module):
    """An LSTM: input, forget and output gates, a candidate cell, and the cell state C beside H.

    I = σ(X W_xi + H W_hi + b_i),  F = σ(X W_xf + H W_hf + b_f),  O = σ(X W_xo + H W_ho + b_o),
    G = tanh(X W_xg + H W_hg + b_g),  C' = F ⊙ C + I ⊙ G,  H' = O ⊙ tanh(C').
    """

    GATES = ("i", "f", "g", "o")  # PyTorch's order in weight_ih_l0 and weight_hh_l0

    def __init__(self, num_inputs: int, num_hiddens: int, *, sigma: float = 0.01,
                 generator: torch.Generator | None = None):
        super().__init__()
        d, h = num_inputs, num_hiddens
        self.num_inputs, self.num_hiddens = d, h
        self.W_x = nn.ParameterDict(dict(zip(self.GATES, _params(generator, sigma, *[(d, h)] * 4))))
        self.W_h = nn.ParameterDict(dict(zip(self.GATES, _params(generator, sigma, *[(h, h)] * 4))))
        self.b = nn.ParameterDict({gate: nn.Parameter(torch.zeros(h)) for gate in self.GATES})

    def forward(self, inputs: Tensor, state: tuple[Tensor, Tensor] | None = None):
        # inputs (T, B, d); state (H, C), each (1, B, h), zeros if None
        B = inputs.shape[1]
        H, C = (inputs.new_zeros(B, self.num_hiddens),) * 2 if state is None else (state[0][0], state[1][0])
        outputs = []
        for X in inputs:  # X (B, d)
            pre = {g: X @ self.W_x[g] + H @ self.W_h[g] + self.b[g] for g in self.GATES}  # each (B, h)
            I, F, O = torch.sigmoid(pre["i"]), torch.sigmoid(pre["f"]), torch.sigmoid(pre["o"])
            C = F * C + I * torch.tanh(pre["g"])
            H = O * torch.tanh(C)
            outputs.append(H)
        return torch.stack(outputs), (H[None], C[None])  # (T, B, h), ((1, B, h), (1, B, h))

    def load_from(self, layer: nn.LSTM) -> "LSTMScratch":
        """Copy a one-layer ``nn.LSTM``'s weights (stacked as input, forget, cell, output)."""
        _check_layer(layer, nn.LSTM, self.num_inputs, self.num_hiddens)
        with torch.no_grad():
            blocks = zip(self.GATES, layer.weight_ih_l0.chunk(4), layer.weight_hh_l0.chunk(4),
                         layer.bias_ih_l0.chunk(4), layer.bias_hh_l0.chunk(4))
            for gate, w_i, w_h, b_i, b_h in blocks:
                self.W_x[gate].copy_(w_i.T)
                self.W_h[gate].copy_(w_h.T)
                self.b[gate].copy_(b_i + b_h)
        return self


class Stacked(nn.Module):
    """A deep RNN: each layer reads the outputs of the one below. The state is one per layer, in a list."""

    def __init__(self, layers: list[nn.Module]):
        super().__init__()
        if not layers:
            raise ValueError("a stack needs at least one layer")
        self.layers = nn.ModuleList(layers)

    def forward(self, inputs: Tensor, state: list | None = None):
        # inputs (T, B, d) -> outputs of the top layer (T, B, h_top), and [state of each layer]
        states = [None] * len(self.layers) if state is None else state
        new_states = []
        for layer, s in zip(self.layers, states):
            inputs, s = layer(inputs, s)
            new_states.append(s)
        return inputs, new_states


class Bidirectional(nn.Module):
    """Two layers over the same inputs, the second reading them backwards in time; their outputs are
    concatenated step by step, so output t has seen the whole sequence, before and after t."""

    def __init__(self, forward_layer: nn.Module, backward_layer: nn.Module):
        super().__init__()
        self.forward_layer, self.backward_layer = forward_layer, backward_layer

    def forward(self, inputs: Tensor, state: tuple | None = None):
        # inputs (T, B, d) -> outputs (T, B, h_forward + h_backward), (forward state, backward state)
        f_state, b_state = (None, None) if state is None else state
        f_out, f_state = self.forward_layer(inputs, f_state)
        b_out, b_state = self.backward_layer(inputs.flip(0), b_state)
        return torch.cat([f_out, b_out.flip(0)], dim=-1), (f_state, b_state)
