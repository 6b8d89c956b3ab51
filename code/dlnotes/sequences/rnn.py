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

    def load_from(self, layer: nn.RNN) -> "RNNScratch":
        """Copy the weights of a one-layer tanh ``nn.RNN`` (its two biases add up to b_h)."""
        if layer.num_layers != 1 or layer.nonlinearity != "tanh" or layer.bidirectional or not layer.bias:
            raise ValueError("load_from needs a one-layer, one-directional tanh nn.RNN with biases")
        if (layer.input_size, layer.hidden_size) != tuple(self.W_xh.shape):
            raise ValueError(f"nn.RNN({layer.input_size}, {layer.hidden_size}) does not fit "
                             f"RNNScratch({self.W_xh.shape[0]}, {self.W_xh.shape[1]})")
        with torch.no_grad():  # nn.RNN computes x W_ih^T + b_ih + h W_hh^T + b_hh
            self.W_xh.copy_(layer.weight_ih_l0.T)
            self.W_hh.copy_(layer.weight_hh_l0.T)
            self.b_h.copy_(layer.bias_ih_l0 + layer.bias_hh_l0)
        return self


class RNNLM(nn.Module):
    """A language model around a recurrent layer: tokens in, next-token logits out.

    The tokens enter as one-hot vectors (the recurrent layer's input size is ``vocab_size``), or,
    with ``embed_size``, as learned embeddings (input size ``embed_size``), which is cheaper for a
    vocabulary of thousands of Chinese characters.
    """

    def __init__(self, rnn: nn.Module, *, vocab_size: int, num_hiddens: int, embed_size: int | None = None):
        super().__init__()
        self.rnn, self.vocab_size = rnn, vocab_size
        self.embedding = None if embed_size is None else nn.Embedding(vocab_size, embed_size)
        self.output = nn.Linear(num_hiddens, vocab_size)

    def forward(self, X: Tensor, state=None):
        # X (B, T) token indices -> logits (B, T, vocab_size), and the recurrent state
        if self.embedding is None:
            inputs = lm.time_major_one_hot(X, vocab_size=self.vocab_size)  # (T, B, V)
        else:
            inputs = self.embedding(X.T)  # (T, B, embed_size)
        outputs, state = self.rnn(inputs, state)
        return self.output(outputs).transpose(0, 1), state  # (T, B, h) -> (B, T, V)


class JordanLM(nn.Module):
    """A Jordan network as a language model: the memory is the previous *output*, not the hidden layer.

    H_t = tanh(X_t W_xh + softmax(O_{t-1}) W_oh + b_h),  O_t = H_t W_hq + b_q.
    Its state is O_t (1, B, V), so it trains and generates with the same calls as :class:`RNNLM`.
    """

    def __init__(self, *, vocab_size: int, num_hiddens: int):
        super().__init__()
        self.vocab_size = vocab_size
        self.hidden = nn.Linear(2 * vocab_size, num_hiddens)  # [X_t, softmax(O_{t-1})] -> H_t
        self.output = nn.Linear(num_hiddens, vocab_size)

    def forward(self, X: Tensor, state: Tensor | None = None):
        # X (B, T) token indices -> logits (B, T, V), and the last output as the state (1, B, V)
        inputs = lm.time_major_one_hot(X, vocab_size=self.vocab_size)  # (T, B, V)
        memory = inputs.new_zeros(inputs.shape[1:]) if state is None else F.softmax(state[0], dim=-1)
        outputs = []
        for X_t in inputs:  # X_t (B, V)
            O = self.output(torch.tanh(self.hidden(torch.cat([X_t, memory], dim=1))))  # (B, V)
            outputs.append(O)
            memory = F.softmax(O, dim=-1)
        return torch.stack(outputs, dim=1), O[None]  # (B, T, V), (1, B, V)


def detach_state(state):
    """The state with its history cut off: a tensor, or tuples and lists of them (an LSTM's (h, c),
    a stack's list of layer states, a bidirectional layer's pair)."""
    if state is None:
        return None
    if isinstance(state, (tuple, list)):
        return type(state)(detach_state(s) for s in state)
    return state.detach()


def held_out_perplexity(model: RNNLM, corpus: Tensor, *, batch_size: int = 32, num_steps: int = 64,
                        carry_state: bool = True) -> float:
    """exp(mean cross-entropy) over ``corpus`` read in order, the state carried from window to window;
    with ``carry_state=False`` every window of ``num_steps`` starts from a zero state, so that no
    prediction sees more than ``num_steps`` tokens of context."""
    model.eval()
    total, count, state = 0.0, 0, None
    usable = (len(corpus) - 1) // batch_size * batch_size
    X_all = corpus[:usable].reshape(batch_size, -1)  # (B, L): B parallel stretches of the text
    Y_all = corpus[1:usable + 1].reshape(batch_size, -1)
    with torch.no_grad():
        for i in range(0, X_all.shape[1], num_steps):
            logits, state = model(X_all[:, i:i + num_steps], state if carry_state else None)
            Y = Y_all[:, i:i + num_steps]
            total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), Y.reshape(-1), reduction="sum").item()
            count += Y.numel()
    model.train()
    return lm.perplexity(total / count)


def last_token_perplexity(model: RNNLM, corpus: Tensor, *, context: int = 32, stride: int = 7) -> float:
    """exp(mean cross-entropy) of predicting the token after each window of ``context`` tokens from
    that window alone, every ``stride`` tokens: what the model predicts when the text after the
    token does not exist yet, as in generation (a bidirectional model reads its inputs both ways,
    and scored on whole windows it sees the answer)."""
    if len(corpus) <= context:
        raise ValueError(f"the corpus has {len(corpus)} tokens, fewer than context + 1 = {context + 1}")
    windows = corpus.unfold(0, context + 1, stride)  # (N, context + 1)
    model.eval()
    with torch.no_grad():
        logits, _ = model(windows[:, :-1])  # (N, context, V)
        loss = F.cross_entropy(logits[:, -1], windows[:, -1]).item()  # the last position's prediction
    model.train()
    return lm.perplexity(loss)


@dataclass
class LMRun:
    """What :func:`train_language_model` measured: per epoch, the training and held-out perplexity."""

    train_perplexity: list[float] = field(default_factory=list)
    held_out_perplexity: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)  # training time up to the end of each epoch
    grad_norms: list[float] = field(default_factory=list)  # before clipping, every step
    step_losses: list[float] = field(default_factory=list)  # the minibatch's mean cross-entropy, every step


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
            run.step_losses.append(loss.item())
            total, count = total + run.step_losses[-1] * Y.numel(), count + Y.numel()
            if time_budget is not None and elapsed + time.perf_counter() - start > time_budget:
                break
        elapsed += time.perf_counter() - start
        run.seconds.append(elapsed)
        run.train_perplexity.append(lm.perplexity(total / count))
        if held_out is not None:
            run.held_out_perplexity.append(held_out_perplexity(model, held_out))
        if time_budget is not None and elapsed > time_budget:
            break
    return run


def loss_jitter(step_losses: list[float], *, window: int = 25) -> float:
    """How much the minibatch loss jumps around its trend: the standard deviation of the loss minus
    its moving average over ``window`` steps, over the second half of training."""
    if len(step_losses) < 2 * window:
        raise ValueError(f"need at least {2 * window} steps for a window of {window}, got {len(step_losses)}")
    losses = torch.tensor(step_losses[len(step_losses) // 2:], dtype=torch.float64)  # (S,)
    trend = F.avg_pool1d(losses[None, None], window, stride=1)[0, 0]  # (S - window + 1,)
    return float((losses[window // 2:window // 2 + len(trend)] - trend).std())


def generate(model: RNNLM, prefix: str | list[str], vocab: Vocab, *, num_tokens: int, temperature: float = 0.0,
             allow_unknown: bool = False, generator: torch.Generator | None = None) -> str:
    """Continue ``prefix`` by ``num_tokens`` tokens: the most likely one each time (temperature 0),
    or sampled from softmax(logits / temperature). ``<unk>`` is never chosen unless ``allow_unknown``
    (it stands for many rare tokens, so it is often the likeliest and says nothing). Characters are
    joined without separator."""
    tokens = list(prefix)
    model.eval()
    with torch.no_grad():
        logits, state = model(torch.tensor([vocab[tokens]]), None)  # warm up the state on the prefix
        for _ in range(num_tokens):
            last = logits[0, -1].clone()  # (V,)
            if not allow_unknown:
                last[vocab.unk] = -math.inf
            if temperature > 0:
                probs = F.softmax(last / temperature, dim=0)
                index = int(torch.multinomial(probs, 1, generator=generator))
            else:
                index = int(last.argmax())
            tokens.append(vocab.to_tokens(index))
            logits, state = model(torch.tensor([[index]]), state)
    model.train()
    return "".join(tokens)
