"""Generative adversarial networks on points in the plane: losses, a training loop, and how many modes are found.

A generator G maps noise z to a sample; a discriminator D maps a sample to a logit, the log-odds
that it is real. D minimises the binary cross-entropy of real against generated samples. G has
two classic objectives: the *minimax* one, minimise log(1 - D(G(z))), whose gradient vanishes
when D confidently rejects the fakes, and the *non-saturating* one, minimise -log D(G(z)), which
has the same fixed point and a strong gradient exactly then. The toy data is a ring of Gaussian
modes, so that a generator that covers only some of them (mode collapse) can be counted.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dlnotes.training.critical import one_thread

GENERATOR_LOSSES = ("non-saturating", "minimax")


def ring_centres(*, modes: int = 8, radius: float = 2.0) -> Tensor:
    """(modes, 2) points evenly spaced on a circle."""
    angles = torch.arange(modes) * 2 * math.pi / modes
    return radius * torch.stack([angles.cos(), angles.sin()], dim=1)


def ring_of_gaussians(num: int, *, modes: int = 8, radius: float = 2.0, std: float = 0.05,
                      generator: torch.Generator | None = None) -> Tensor:
    """``num`` samples (num, 2) from an equal mixture of Gaussians on a circle."""
    which = torch.randint(modes, (num,), generator=generator)
    noise = std * torch.randn(num, 2, generator=generator)
    return ring_centres(modes=modes, radius=radius)[which] + noise


def mlp(*, in_features: int, hidden: int, out_features: int, layers: int = 2) -> nn.Sequential:
    """``layers`` hidden layers of width ``hidden`` with ReLU, then a linear output."""
    sizes = [in_features] + [hidden] * layers
    body = [m for a, b in zip(sizes, sizes[1:]) for m in (nn.Linear(a, b), nn.ReLU())]
    return nn.Sequential(*body, nn.Linear(sizes[-1], out_features))


def discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Binary cross-entropy: real samples labelled 1, generated ones 0 (mean over both)."""
    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))) / 2


def generator_loss(fake_logits: Tensor, *, kind: str = "non-saturating") -> Tensor:
    """The generator's objective on D's logits l for its samples (D(G(z)) = sigmoid(l)).

    minimax: mean log(1 - sigmoid(l)) = -softplus(l); its gradient in l is -sigmoid(l), which
    vanishes as D rejects the fakes (l -> -inf). non-saturating: mean -log sigmoid(l) =
    softplus(-l), with gradient -(1 - sigmoid(l)), largest exactly then.
    """
    if kind == "minimax":
        return -F.softplus(fake_logits).mean()
    if kind == "non-saturating":
        return F.softplus(-fake_logits).mean()
    raise ValueError(f"unknown generator loss {kind!r}; known: {', '.join(GENERATOR_LOSSES)}")


@dataclass
class GANRun:
    """Losses and the norm of the generator's gradient per step, generated samples at the recorded steps."""

    d_loss: list[float] = field(default_factory=list)
    g_loss: list[float] = field(default_factory=list)
    g_grad: list[float] = field(default_factory=list)
    snapshots: dict[int, Tensor] = field(default_factory=dict)
    seconds: float = 0.0


def train_gan(G: nn.Module, D: nn.Module, real: Tensor, *, latent_dim: int, steps: int, batch_size: int,
              lr: float, d_lr: float | None = None, kind: str = "non-saturating", optimizer: str = "adam",
              d_steps: int = 1, g_steps: int = 1, d_warmup: int = 0, snapshot_every: int = 0, num_shown: int = 1000,
              generator: torch.Generator | None = None) -> GANRun:
    """Alternate ``d_steps`` discriminator steps and ``g_steps`` generator steps, ``steps`` times.

    ``lr`` is the generator's learning rate, ``d_lr`` the discriminator's (by default the same).
    ``real`` (N, ...) holds points (N, d) or images (N, C, H, W).

    ``optimizer``: "adam" (beta1 0.5, as for most GANs) or "sgd" (plain, whose steps are
    proportional to the gradient, unlike Adam's).
    ``d_warmup`` discriminator steps first train D against the untrained G, which makes D
    confident from the start. ``real`` is sampled with replacement. At the start, every
    ``snapshot_every`` steps and at the end, ``num_shown`` samples from fixed noise are kept,
    to watch the generator move; ``GANRun.g_grad`` records the norm of G's gradient per step.
    """
    if kind not in GENERATOR_LOSSES:
        raise ValueError(f"unknown generator loss {kind!r}; known: {', '.join(GENERATOR_LOSSES)}")
    if optimizer not in ("adam", "sgd"):
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    if min(d_steps, g_steps) < 1:
        raise ValueError(f"d_steps and g_steps must be at least 1, got {d_steps} and {g_steps}")
    d_lr = lr if d_lr is None else d_lr
    if optimizer == "adam":
        opt_g = torch.optim.Adam(G.parameters(), lr=lr, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(D.parameters(), lr=d_lr, betas=(0.5, 0.999))
    else:
        opt_g, opt_d = torch.optim.SGD(G.parameters(), lr=lr), torch.optim.SGD(D.parameters(), lr=d_lr)
    fixed = torch.randn(num_shown, latent_dim, generator=generator)
    run, start = GANRun(), time.perf_counter()
    with one_thread():  # networks this small run faster on one thread
        if snapshot_every:
            run.snapshots[0] = G(fixed).detach()  # before any step
        for step in range(1 - d_warmup, steps + 1):  # steps < 1: the discriminator's warm-up
            for _ in range(d_steps if step >= 1 else 1):
                batch = real[torch.randint(len(real), (batch_size,), generator=generator)]
                fake = G(torch.randn(batch_size, latent_dim, generator=generator)).detach()
                d_loss = discriminator_loss(D(batch), D(fake))
                opt_d.zero_grad()
                d_loss.backward()
                opt_d.step()
            if step < 1:
                continue
            for _ in range(g_steps):
                g_loss = generator_loss(D(G(torch.randn(batch_size, latent_dim, generator=generator))), kind=kind)
                opt_g.zero_grad()
                g_loss.backward()  # D's gradients from this are cleared by opt_d.zero_grad() before use
                opt_g.step()
            run.g_grad.append(torch.cat([p.grad.flatten() for p in G.parameters()]).norm().item())  # the last
            run.d_loss.append(d_loss.item())
            run.g_loss.append(g_loss.item())
            if (snapshot_every and step % snapshot_every == 0) or step == steps:
                run.snapshots[step] = G(fixed).detach()
    run.seconds = time.perf_counter() - start
    return run


def balance(counts: Tensor) -> float:
    """The normalised entropy of counts per mode (K,): 1 when every mode has the same share, 0 when one has all."""
    share = counts.float() / counts.sum().clamp(min=1)
    entropy = -(share[share > 0] * share[share > 0].log()).sum().item()
    return entropy / math.log(len(counts)) if len(counts) > 1 else 1.0


def mode_coverage(samples: Tensor, centres: Tensor, *, std: float, min_share: float = 0.01) -> dict[str, float]:
    """How a sample set covers the modes: a sample is *good* if it lies within 3 std of a centre.

    ``modes``: the number of centres that receive at least ``min_share`` of the samples as good
    ones; ``good``: the share of good samples; ``balance``: the normalised entropy of the good
    samples' modes, 1 when every mode gets the same share, 0 when one mode gets all.
    """
    distance = torch.cdist(samples, centres)  # (N, modes)
    nearest, which = distance.min(dim=1)
    good = nearest < 3 * std
    counts = torch.bincount(which[good], minlength=len(centres))
    return {"modes": int((counts >= min_share * len(samples)).sum()), "good": good.float().mean().item(),
            "balance": balance(counts)}
