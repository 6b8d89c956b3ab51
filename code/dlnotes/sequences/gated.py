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


def _check_fixed(fixed_gates: dict[str, float] | None, names: tuple[str, ...]) -> dict[str, float]:
    fixed = dict(fixed_gates or {})
    unknown = set(fixed) - set(names)
    if unknown:
        raise ValueError(f"unknown gate(s) {sorted(unknown)}: this layer's gates are {list(names)}")
    if any(not 0.0 <= v <= 1.0 for v in fixed.values()):
        raise ValueError(f"a gate is a value in [0, 1], got {fixed}")
    return fixed


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

    ``reset_after=False`` is the GRU of Cho et al. (2014) and of d2l's formula, which resets the
    state before the product: N = tanh(X W_xn + b_xn + (R ⊙ H) W_hn + b_hn).
    ``fixed_gates`` pins gates to constants, to see what a GRU is without one: {"r": 1.0} never
    resets, {"z": 0.0} never keeps the old state (every step writes the candidate).
    """

    GATES = ("r", "z")

    def __init__(self, num_inputs: int, num_hiddens: int, *, sigma: float = 0.01, reset_after: bool = True,
                 fixed_gates: dict[str, float] | None = None, generator: torch.Generator | None = None):
        super().__init__()
        d, h = num_inputs, num_hiddens
        self.num_inputs, self.num_hiddens, self.reset_after = d, h, reset_after
        self.fixed_gates = _check_fixed(fixed_gates, self.GATES)
        self.W_xr, self.W_xz, self.W_xn = _params(generator, sigma, (d, h), (d, h), (d, h))
        self.W_hr, self.W_hz, self.W_hn = _params(generator, sigma, (h, h), (h, h), (h, h))
        self.b_r, self.b_z, self.b_xn, self.b_hn = (nn.Parameter(torch.zeros(h)) for _ in range(4))

    def step(self, X: Tensor, H: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """One time step: X (B, d), H (B, h) -> the new H (B, h), and the gates {"r", "z"}, each (B, h)."""
        R = torch.sigmoid(X @ self.W_xr + H @ self.W_hr + self.b_r)  # reset gate
        Z = torch.sigmoid(X @ self.W_xz + H @ self.W_hz + self.b_z)  # update gate
        if self.fixed_gates:
            R = torch.full_like(R, self.fixed_gates["r"]) if "r" in self.fixed_gates else R
            Z = torch.full_like(Z, self.fixed_gates["z"]) if "z" in self.fixed_gates else Z
        if self.reset_after:  # candidate state
            N = torch.tanh(X @ self.W_xn + self.b_xn + R * (H @ self.W_hn + self.b_hn))
        else:
            N = torch.tanh(X @ self.W_xn + self.b_xn + (R * H) @ self.W_hn + self.b_hn)
        return Z * H + (1 - Z) * N, {"r": R, "z": Z}

    def forward(self, inputs: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        # inputs (T, B, d); state (1, B, h), zeros if None
        H = inputs.new_zeros(inputs.shape[1], self.num_hiddens) if state is None else state[0]
        outputs = []
        for X in inputs:  # X (B, d)
            H, _ = self.step(X, H)
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

    ``fixed_gates`` pins gates to constants, e.g. {"f": 1.0}: a cell that never forgets.
    """

    GATES = ("i", "f", "g", "o")  # PyTorch's order in weight_ih_l0 and weight_hh_l0

    def __init__(self, num_inputs: int, num_hiddens: int, *, sigma: float = 0.01,
                 fixed_gates: dict[str, float] | None = None, generator: torch.Generator | None = None):
        super().__init__()
        d, h = num_inputs, num_hiddens
        self.num_inputs, self.num_hiddens = d, h
        self.fixed_gates = _check_fixed(fixed_gates, ("i", "f", "o"))
        self.W_x = nn.ParameterDict(dict(zip(self.GATES, _params(generator, sigma, *[(d, h)] * 4))))
        self.W_h = nn.ParameterDict(dict(zip(self.GATES, _params(generator, sigma, *[(h, h)] * 4))))
        self.b = nn.ParameterDict({gate: nn.Parameter(torch.zeros(h)) for gate in self.GATES})

    def step(self, X: Tensor, H: Tensor, C: Tensor) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """One time step: X (B, d), H and C (B, h) -> the new H, C, and the gates {"i", "f", "o"}, each (B, h)."""
        pre = {g: X @ self.W_x[g] + H @ self.W_h[g] + self.b[g] for g in self.GATES}  # each (B, h)
        I, F, O = (torch.full_like(pre[g], self.fixed_gates[g]) if g in self.fixed_gates else torch.sigmoid(pre[g])
                   for g in ("i", "f", "o"))
        C = F * C + I * torch.tanh(pre["g"])  # forget some of the cell, write some of the candidate
        return O * torch.tanh(C), C, {"i": I, "f": F, "o": O}

    def forward(self, inputs: Tensor, state: tuple[Tensor, Tensor] | None = None):
        # inputs (T, B, d); state (H, C), each (1, B, h), zeros if None
        B = inputs.shape[1]
        H, C = (inputs.new_zeros(B, self.num_hiddens),) * 2 if state is None else (state[0][0], state[1][0])
        outputs = []
        for X in inputs:  # X (B, d)
            H, C, _ = self.step(X, H, C)
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


def gate_values(layer: GRUScratch | LSTMScratch, inputs: Tensor) -> dict[str, Tensor]:
    """Run ``layer`` over inputs (T, B, d) from a zero state and return every gate at every step,
    each (T, B, h): what the gates did while the layer read the sequence."""
    if not isinstance(layer, (GRUScratch, LSTMScratch)):
        raise ValueError(f"gate_values needs a GRUScratch or LSTMScratch (load_from copies PyTorch's weights), "
                         f"got {type(layer).__name__}")
    B, h = inputs.shape[1], layer.num_hiddens
    H, C = inputs.new_zeros(B, h), inputs.new_zeros(B, h)
    steps = []
    with torch.no_grad():
        for X in inputs:  # X (B, d)
            if isinstance(layer, LSTMScratch):
                H, C, gates = layer.step(X, H, C)
            else:
                H, gates = layer.step(X, H)
            steps.append(gates)
    return {name: torch.stack([g[name] for g in steps]) for name in steps[0]}


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

    def load_from(self, layer: nn.GRU | nn.LSTM) -> "Stacked":
        """Copy a multi-layer ``nn.GRU`` or ``nn.LSTM`` (one direction) layer by layer into the scratch layers."""
        if layer.bidirectional or layer.num_layers != len(self.layers):
            raise ValueError(f"a stack of {len(self.layers)} layers needs a one-directional {type(layer).__name__} "
                             f"of {len(self.layers)} layers, got num_layers={layer.num_layers}, "
                             f"bidirectional={layer.bidirectional}")
        for i, mine in enumerate(self.layers):
            mine.load_from(_single(layer, f"_l{i}", num_inputs=mine.num_inputs))
        return self


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

    def load_from(self, layer: nn.GRU | nn.LSTM) -> "Bidirectional":
        """Copy a one-layer bidirectional ``nn.GRU`` or ``nn.LSTM``: its two directions into the two layers."""
        if not layer.bidirectional or layer.num_layers != 1:
            raise ValueError(f"needs a one-layer bidirectional {type(layer).__name__}, got num_layers="
                             f"{layer.num_layers}, bidirectional={layer.bidirectional}")
        self.forward_layer.load_from(_single(layer, "_l0", num_inputs=layer.input_size))
        self.backward_layer.load_from(_single(layer, "_l0_reverse", num_inputs=layer.input_size))
        return self


def _single(layer: nn.GRU | nn.LSTM, suffix: str, *, num_inputs: int) -> nn.GRU | nn.LSTM:
    """One layer (or direction) of a PyTorch RNN, e.g. suffix "_l1" or "_l0_reverse", as a one-layer RNN."""
    single = type(layer)(num_inputs, layer.hidden_size).to(layer.weight_hh_l0.dtype)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(single, f"{name}_l0").copy_(getattr(layer, name + suffix))
    return single
