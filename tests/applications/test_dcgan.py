"""dlnotes.applications.dcgan: the digits, the two networks' shapes, the census and the Frechet distance."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dlnotes.applications import dcgan, gan


def test_small_digits_are_real_mnist_averaged_down():
    digits = dcgan.small_digits(size=14)
    assert digits.X_train.shape == (4000, 1, 14, 14) and digits.X_test.shape == (1000, 1, 14, 14)
    assert 0 <= digits.X_train.min() and digits.X_train.max() <= 1
    assert torch.bincount(digits.y_train).tolist() == [400] * 10
    with pytest.raises(ValueError, match="divide 28"):
        dcgan.small_digits(size=10)


def test_the_generator_grows_4_to_7_to_14_and_the_discriminator_shrinks_back():
    G, D = dcgan.generator(latent_dim=8, width=4), dcgan.discriminator(width=4)
    h = torch.randn(5, 8)
    sides = []
    for layer in G:
        h = layer(h)
        if h.dim() == 4:
            sides.append(h.shape[-1])
    assert sides[0] == 4 and 7 in sides and sides[-1] == 14  # (n - 1) s - 2 p + k
    assert h.min() > -1 and h.max() < 1  # tanh
    assert D(h).shape == (5, 1)
    convs = [m for m in G if isinstance(m, torch.nn.ConvTranspose2d)]
    assert len(convs) == 2 and all(c.stride == (2, 2) for c in convs)
    assert not any(isinstance(m, (torch.nn.MaxPool2d, torch.nn.AvgPool2d)) for m in D)  # strided, no pooling


def test_range_conversions_are_inverse():
    x = torch.rand(3, 1, 14, 14)
    assert torch.allclose(dcgan.from_gan_range(dcgan.to_gan_range(x)), x)
    assert dcgan.from_gan_range(torch.tensor([-3.0, 3.0])).tolist() == [0.0, 1.0]


def test_the_census_counts_classes_and_balance():
    class Fixed(torch.nn.Module):  # "classifies" image i as class labels[i]
        def __init__(self, labels):
            super().__init__()
            self.labels = labels

        def forward(self, images):
            return F.one_hot(self.labels[:len(images)], 10).float() * 10

    images = torch.zeros(100, 1, 14, 14)
    collapsed = dcgan.class_census(Fixed(torch.full((100,), 3)), images)
    assert collapsed["classes"] == 1 and collapsed["counts"][3] == 100 and collapsed["balance"] == 0
    even = dcgan.class_census(Fixed(torch.arange(100) % 10), images)
    assert even["classes"] == 10 and even["balance"] == pytest.approx(1.0) and even["confident"] == 1.0


def test_the_frechet_distance_is_zero_for_equal_sets_and_grows_with_shift_and_collapse():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(2000, 4, generator=g)
    assert dcgan.frechet_distance(a, a) == pytest.approx(0, abs=1e-6)
    shifted = a + torch.tensor([2.0, 0, 0, 0])
    assert dcgan.frechet_distance(a, shifted) == pytest.approx(4.0, rel=1e-4)  # |mu difference|^2, same covariance
    # Gaussians N(0, I) and N(0, s^2 I) in d dims: d (1 - s)^2
    scaled = 0.1 * a
    assert dcgan.frechet_distance(a, scaled) == pytest.approx(4 * 0.81, rel=0.05)


def test_a_balanced_dcgan_moves_towards_the_real_digits():
    digits = dcgan.small_digits()
    torch.manual_seed(0)
    classifier, accuracy = dcgan.digit_classifier(digits, num_epochs=2, lr=3e-3)
    assert accuracy > 0.85
    features = classifier[:-1]
    with torch.no_grad():
        real = features(digits.X_test)
    torch.manual_seed(0)
    G, D = dcgan.generator(latent_dim=16, width=16), dcgan.discriminator(width=16)
    run = gan.train_gan(G, D, dcgan.to_gan_range(digits.X_train), latent_dim=16, steps=150, batch_size=32,
                        lr=5e-4, snapshot_every=150, num_shown=300, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = dcgan.frechet_distance(real, features(dcgan.from_gan_range(run.snapshots[0])))
        after = dcgan.frechet_distance(real, features(dcgan.from_gan_range(run.snapshots[150])))
    assert after < 0.7 * before


def test_train_gan_takes_separate_learning_rates_and_generator_steps():
    torch.manual_seed(0)
    G, D = gan.mlp(in_features=2, hidden=8, out_features=2), gan.mlp(in_features=2, hidden=8, out_features=1)
    d_before = [p.clone() for p in D.parameters()]
    real = torch.randn(64, 2)
    gan.train_gan(G, D, real, latent_dim=2, steps=1, batch_size=16, lr=1e-2, d_lr=0.0, optimizer="sgd")
    assert all(torch.equal(a, b) for a, b in zip(d_before, D.parameters()))  # d_lr 0: D does not move
    with pytest.raises(ValueError, match="at least 1"):
        gan.train_gan(G, D, real, latent_dim=2, steps=1, batch_size=16, lr=1e-2, g_steps=0)
