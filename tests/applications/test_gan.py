"""dlnotes.applications.gan: the ring data and its coverage score, both generator losses and their gradients,
the discriminator loss, and a GAN that learns the ring."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from dlnotes.applications import gan


def test_the_ring_and_the_coverage_of_real_and_collapsed_samples():
    g = torch.Generator().manual_seed(0)
    real = gan.ring_of_gaussians(8000, modes=8, radius=2.0, std=0.05, generator=g)
    centres = gan.ring_centres(modes=8, radius=2.0)
    assert real.shape == (8000, 2) and torch.allclose(centres.norm(dim=1), torch.full((8,), 2.0))
    score = gan.mode_coverage(real, centres, std=0.05)
    assert score["modes"] == 8 and score["good"] == pytest.approx(1 - math.exp(-4.5), abs=0.01)  # 2-D: P(r < 3 std)
    assert score["balance"] > 0.99
    collapsed = centres[3] + 0.05 * torch.randn(1000, 2, generator=g)
    assert gan.mode_coverage(collapsed, centres, std=0.05) == pytest.approx({"modes": 1, "good": 0.989, "balance": 0.0},
                                                                            abs=0.01)
    assert gan.mode_coverage(torch.zeros(100, 2), centres, std=0.05)["good"] == 0.0  # the centre is no mode


def test_the_discriminator_loss_is_the_mean_binary_cross_entropy():
    real, fake = torch.randn(5), torch.randn(7)
    bce = nn.BCEWithLogitsLoss()
    expected = (bce(real, torch.ones(5)) + bce(fake, torch.zeros(7))) / 2
    assert torch.allclose(gan.discriminator_loss(real, fake), expected)


def test_the_two_generator_losses_and_their_gradients():
    logits = torch.linspace(-8, 8, 9, requires_grad=True)
    for kind, expected in [("minimax", -torch.sigmoid(logits)), ("non-saturating", torch.sigmoid(logits) - 1)]:
        (grad,) = torch.autograd.grad(gan.generator_loss(logits, kind=kind), logits)
        assert torch.allclose(grad * len(logits), expected.detach(), atol=1e-6), kind
    d = torch.sigmoid(logits.detach())  # both losses are decreasing in D(G(z)): they want the fakes called real
    assert torch.allclose(gan.generator_loss(logits.detach(), kind="minimax"), torch.log(1 - d).mean(), atol=1e-5)
    assert torch.allclose(gan.generator_loss(logits.detach()), -torch.log(d).mean(), atol=1e-4)
    with pytest.raises(ValueError, match="unknown generator loss 'wasserstein'"):
        gan.generator_loss(logits, kind="wasserstein")


def _pair(seed: int):
    torch.manual_seed(seed)
    return (gan.mlp(in_features=2, hidden=64, out_features=2), gan.mlp(in_features=2, hidden=64, out_features=1))


def test_a_gan_learns_the_ring():
    real = gan.ring_of_gaussians(10000, generator=torch.Generator().manual_seed(0))
    G, D = _pair(0)
    run = gan.train_gan(G, D, real, latent_dim=2, steps=1200, batch_size=256, lr=1e-3, snapshot_every=600,
                        generator=torch.Generator().manual_seed(0))
    assert sorted(run.snapshots) == [0, 600, 1200] and len(run.d_loss) == len(run.g_grad) == 1200
    before = gan.mode_coverage(run.snapshots[0], gan.ring_centres(), std=0.05)
    after = gan.mode_coverage(run.snapshots[1200], gan.ring_centres(), std=0.05)
    assert before["good"] < 0.05 and after["modes"] >= 6 and after["good"] > 0.5


def test_a_confident_discriminator_starves_the_minimax_generator_of_gradient():
    real = gan.ring_of_gaussians(5000, generator=torch.Generator().manual_seed(0))
    first = {}
    for kind in gan.GENERATOR_LOSSES:
        G, D = _pair(0)
        run = gan.train_gan(G, D, real, latent_dim=2, steps=1, batch_size=256, lr=1e-3, kind=kind, d_warmup=300,
                            generator=torch.Generator().manual_seed(0))
        first[kind] = run.g_grad[0]
    assert first["minimax"] < 0.05 * first["non-saturating"]
    with pytest.raises(ValueError, match="optimizer"):
        gan.train_gan(G, D, real, latent_dim=2, steps=1, batch_size=4, lr=1e-3, optimizer="rmsprop")


def test_balance_is_the_normalised_entropy_of_the_counts():
    assert gan.balance(torch.tensor([5, 5, 5, 5])) == pytest.approx(1.0)
    assert gan.balance(torch.tensor([0, 12, 0])) == 0
    assert gan.balance(torch.tensor([1, 3])) == pytest.approx(-(0.25 * math.log(0.25) + 0.75 * math.log(0.75)) / math.log(2))
