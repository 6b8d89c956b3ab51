"""Backpropagation through time: how large the gradient is that reaches the state k steps back, and
what truncating the backward pass does to the gradient of a language model.

The recurrent layers are PyTorch's (``nn.RNN``, ``nn.GRU``, ``nn.LSTM``) or this package's scratch
layers: anything that maps time-major inputs (T, B, d) and a state to outputs and a new state.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from dlnotes.sequences.rnn import RNNLM, detach_state


def _tensors(state) -> tuple[Tensor, ...]:
    return state if isinstance(state, tuple) else (state,)


def _hidden(state) -> Tensor:
    return state[0] if isinstance(state, tuple) else state  # an LSTM's state is (h, c)


def state_gradient_norms(layer: nn.Module, inputs: Tensor, *, readout: Tensor | None = None) -> Tensor:
    """‖∂ℓ/∂s_t‖ for the state s_t after each step t = 1..T, where ℓ = ⟨u, h_T⟩ reads the last hidden state.

    inputs (T, B, d) -> norms (T,): the mean over the batch of each example's gradient norm, over
    all layers of the state (for an LSTM both h and c count). ``readout`` is u (hidden,), scaled to
    unit length; a random one if None. The last entry is therefore 1 (the returned c_T of an LSTM
    feeds no later step), and entry T - 1 - k is the gradient k steps back.
    """
    if inputs.ndim != 3:
        raise ValueError(f"expected time-major inputs (T, B, d), got shape {tuple(inputs.shape)}")
    states, state = [], None
    for x in inputs:  # x (B, d): one step at a time, so that every state is a tensor of the graph
        _, state = layer(x[None], state)
        for s in _tensors(state):
            s.retain_grad()
        states.append(state)
    h_last = _hidden(state)[-1]  # (B, hidden): the top layer's last hidden state
    if readout is None:
        readout = torch.randn(h_last.shape[-1], generator=torch.Generator().manual_seed(0))
    readout = readout / readout.norm()
    (h_last @ readout).sum().backward()
    norms = []
    for st in states:  # each part (layers, B, hidden); a part the loss does not reach has no gradient
        squares = sum((s.grad.pow(2).sum(dim=(0, 2)) for s in _tensors(st) if s.grad is not None),
                      torch.zeros(inputs.shape[1]))  # (B,)
        norms.append(squares.sqrt().mean())
    return torch.stack(norms).detach()


def decay_rate(norms: Tensor, *, skip: int = 5) -> float:
    """The mean factor by which the gradient norm changes per step back: exp of the slope of
    log ‖∂ℓ/∂s_{T-k}‖ against k, fitted from k = ``skip`` on (below 1: vanishing, above: exploding).

    Norms that overflowed (inf) or underflowed (below the smallest normal float) are left out of
    the fit, so an explosion or a vanishing is measured up to where the float type gives out.
    """
    if len(norms) < skip + 2:
        raise ValueError(f"need more than {skip + 1} steps, got {len(norms)}")
    back = norms.flip(0)[skip:]  # (T - skip,): k = skip, skip + 1, ...
    kept = torch.isfinite(back) & (back >= torch.finfo(back.dtype).tiny)
    k = torch.arange(len(back), dtype=torch.float64)[kept]
    logs = back[kept].double().log()
    if len(logs) < 2:
        raise ValueError("fewer than two finite gradient norms to fit")
    slope = ((k - k.mean()) * (logs - logs.mean())).sum() / ((k - k.mean()) ** 2).sum()
    return math.exp(float(slope))


def scale_recurrent_weights(layer: nn.Module, *, spectral_radius: float) -> nn.Module:
    """Rescale each hidden-to-hidden matrix of ``layer`` (weight_hh_l*, or W_hh) to the given
    spectral radius, the factor that decides, near zero, whether the state grows or shrinks."""
    with torch.no_grad():
        for name, W in layer.named_parameters():
            if name.startswith("weight_hh") or name == "W_hh":
                hidden = W.shape[1]
                for block in W.split(hidden, dim=0):  # a GRU or LSTM stacks one square block per gate
                    radius = torch.linalg.eigvals(block).abs().max()
                    block.mul_(spectral_radius / radius)
    return layer


def set_forget_bias(lstm: nn.LSTM, value: float) -> nn.LSTM:
    """Set the forget gate's total bias (b_if + b_hf, every layer) to ``value``: f = σ(value + ...).

    PyTorch stacks the gates as (input, forget, cell, output), so the forget gate is the second
    quarter of each bias vector.
    """
    with torch.no_grad():
        for name, b in lstm.named_parameters():
            if name.startswith("bias_"):
                quarter = b.shape[0] // 4
                b[quarter:2 * quarter] = value if name.startswith("bias_ih") else 0.0
    return lstm


def lm_gradient(model: RNNLM, X: Tensor, Y: Tensor, *, truncate: int | None = None) -> Tensor:
    """The gradient of the mean cross-entropy of ``model`` on X -> Y (B, T), as one flat vector.

    ``truncate`` = k detaches the state every k steps, so no gradient flows further back than k
    steps (truncated BPTT); None backpropagates through all T steps.
    """
    if truncate is not None and truncate < 1:
        raise ValueError(f"truncate must be at least 1 or None, got {truncate}")
    model.zero_grad()
    k = X.shape[1] if truncate is None else truncate
    state, total = None, 0.0
    for i in range(0, X.shape[1], k):
        logits, state = model(X[:, i:i + k], detach_state(state) if truncate else state)
        total = total + F.cross_entropy(logits.reshape(-1, logits.shape[-1]), Y[:, i:i + k].reshape(-1),
                                        reduction="sum")
    (total / Y.numel()).backward()
    return torch.cat([p.grad.reshape(-1) for p in model.parameters() if p.grad is not None])


def cosine(a: Tensor, b: Tensor) -> float:
    """The cosine of the angle between two flat vectors."""
    return float(F.cosine_similarity(a.double(), b.double(), dim=0))
