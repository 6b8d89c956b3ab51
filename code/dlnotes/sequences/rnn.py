"""Recurrent networks for language modelling: a tanh RNN from scratch, a language model around any
recurrent layer, training on one long corpus (clipped as in the numerical-stability chapter),
held-out perplexity, generation.

Every recurrent layer here takes time-major inputs (T, B, d) and a state, and returns outputs
(T, B, h) and the new state, like ``nn.RNN`` / ``nn.GRU`` / ``nn.LSTM``, so the language model and
the training loop work with the scratch layers and PyTorch's alike.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from dlnotes.sequences import language_model as lm
from dlnotes.sequences.text import Vocab
from dlnotes.training.stability import clip_grad_norm_scratch  # the numerical-stability chapter's

SAMPLINGS = ("random", "sequential")


class RNNScratch(nn.Module):
    """One tanh layer: H_t = tanh(X_t W_xh + H_{t-1} W_hh + b_h), for t = 1..T."""

    def __init__(self, num_inputs: int, num_hiddens: int, *, sigma: float = 0.01,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.num_hiddens = num_hiddens
        self.W_xh = nn.Parameter(sigma * torch.randn(num_inputs, num_hiddens, generator=generator))
        self.W_hh = nn.Parameter(sigma * torch.randn(num_hiddens, num_hiddens, generator=generator))
        self.b_h = nn.Parameter(torch.zeros(num_hiddens))

    def forward(self, inputs: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        # inputs (T, B, num_inputs); state (1, B, num_hiddens) as in nn.RNN, zeros if None
        H = inputs.new_zeros(inputs.shape[1], self.num_hiddens) if state is None else state[0]
        outputs = []
        for X in inputs:  # X (B, num_inputs): one time step
            H = torch.tanh(X @ self.W_xh + H @ self.W_hh + self.b_h)
            outputs.append(H)
        return torch.stack(outputs), H[None]  # (T, B, num_hiddens), (1, B, num_hiddens)


class RNNLM(nn.Module):
    """A language model around a recurrent layer: one-hot tokens in, next-token logits out."""

    def __init__(self, rnn: nn.Module, *, vocab_size: int, num_hiddens: int):
        super().__init__()
        self.rnn, self.vocab_size = rnn, vocab_size
        self.output = nn.Linear(num_hiddens, vocab_size)

    def forward(self, X: Tensor, state=None):
        # X (B, T) token indices -> logits (B, T, vocab_size), and the recurrent state
        outputs, state = self.rnn(lm.time_major_one_hot(X, vocab_size=self.vocab_size), state)
        return self.output(outputs).transpose(0, 1), state  # (T, B, h) -> (B, T, V)


def detach_state(state):
    """The state with its history cut off (a tensor, or a tuple of them as for an LSTM)."""
    if state is None:
        return None
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


def held_out_perplexity(model: RNNLM, corpus: Tensor, *, batch_size: int = 32, num_steps: int = 64) -> float:
    """exp(mean cross-entropy) over ``corpus`` read in order, the state carried from window to window."""
    model.eval()
    total, count, state = 0.0, 0, None
    usable = (len(corpus) - 1) // batch_size * batch_size
    X_all = corpus[:usable].reshape(batch_size, -1)  # (B, L): B parallel stretches of the text
    Y_all = corpus[1:usable + 1].reshape(batch_size, -1)
    with torch.no_grad():
        for i in range(0, X_all.shape[1], num_steps):
            logits, state = model(X_all[:, i:i + num_steps], state)
            Y = Y_all[:, i:i + num_steps]
            total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), Y.reshape(-1), reduction="sum").item()
            count += Y.numel()
    model.train()
    return math.exp(total / count)


@dataclass
class LMRun:
    """What :func:`train_language_model` measured: per epoch, the training and held-out perplexity."""

    train_perplexity: list[float] = field(default_factory=list)
    held_out_perplexity: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)  # training time up to the end of each epoch
    grad_norms: list[float] = field(default_factory=list)  # before clipping, every step


def train_language_model(model: RNNLM, corpus: Tensor, held_out: Tensor | None = None, *, batch_size: int,
                         num_steps: int, lr: float, num_epochs: int, sampling: str = "sequential",
                         max_norm: float | None = 1.0, optimizer: str = "adam", time_budget: float | None = None,
                         generator: torch.Generator | None = None) -> LMRun:
    """Train on one long corpus (T,) of token indices; stop after ``num_epochs`` or ``time_budget`` seconds.

    ``sampling`` "sequential" carries the state across minibatches (detached at each boundary),
    "random" starts every minibatch from a zero state. ``max_norm`` clips the gradients (None: no
    clipping). ``optimizer`` is "adam" or "sgd". The held-out perplexity is measured after every
    epoch (its time is not counted in ``seconds``).
    """
    if sampling not in SAMPLINGS:
        raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
    if optimizer not in ("adam", "sgd"):
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    make = torch.optim.Adam if optimizer == "adam" else torch.optim.SGD
    opt = make(model.parameters(), lr=lr)
    batches = lm.sequential_batches if sampling == "sequential" else lm.random_batches
    run, elapsed = LMRun(), 0.0
    for _ in range(num_epochs):
        start, state, total, count = time.perf_counter(), None, 0.0, 0
        for X, Y in batches(corpus, batch_size=batch_size, num_steps=num_steps, generator=generator):
            state = detach_state(state) if sampling == "sequential" else None
            logits, state = model(X, state)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), Y.reshape(-1))
            opt.zero_grad()
            loss.backward()
            run.grad_norms.append(float(clip_grad_norm_scratch(model.parameters(), max_norm=max_norm or math.inf)))
            opt.step()
            total, count = total + loss.item() * Y.numel(), count + Y.numel()
            if time_budget is not None and elapsed + time.perf_counter() - start > time_budget:
                break
        elapsed += time.perf_counter() - start
        run.seconds.append(elapsed)
        run.train_perplexity.append(math.exp(total / count))
        if held_out is not None:
            run.held_out_perplexity.append(held_out_perplexity(model, held_out))
        if time_budget is not None and elapsed > time_budget:
            break
    return run


def generate(model: RNNLM, prefix: str | list[str], vocab: Vocab, *, num_tokens: int,
             temperature: float = 0.0, generator: torch.Generator | None = None) -> str:
    """Continue ``prefix`` by ``num_tokens`` tokens: the most likely one each time (temperature 0),
    or sampled from softmax(logits / temperature). Characters are joined without separator."""
    tokens = list(prefix)
    model.eval()
    with torch.no_grad():
        logits, state = model(torch.tensor([vocab[tokens]]), None)  # warm up the state on the prefix
        for _ in range(num_tokens):
            last = logits[0, -1]
            if temperature > 0:
                probs = F.softmax(last / temperature, dim=0)
                index = int(torch.multinomial(probs, 1, generator=generator))
            else:
                index = int(last.argmax())
            tokens.append(vocab.to_tokens(index))
            logits, state = model(torch.tensor([[index]]), state)
    model.train()
    return "".join(tokens)
