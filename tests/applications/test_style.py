"""dlnotes.applications.style: the frozen extractor, Gram matrices, the three losses and the optimisation of pixels."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dlnotes import download
from dlnotes.applications import style as S


def small_extractor() -> S.FeatureExtractor:
    return S.random_features(widths=(8, 16, 16), seed=0)


def test_the_random_extractor_is_frozen_and_taps_every_block():
    extractor = small_extractor()
    assert all(not p.requires_grad for p in extractor.parameters())
    features = extractor(torch.rand(2, 3, 32, 48))
    assert [tuple(f.shape) for f in features] == [(2, 8, 32, 48), (2, 16, 16, 24), (2, 16, 8, 12)]
    assert all((f >= 0).all() for f in features)  # after ReLU
    assert extractor.content_layers == (2,) and extractor.style_layers == (0, 1, 2)
    same = S.random_features(widths=(8, 16, 16), seed=0)
    assert all(torch.equal(a, b) for a, b in zip(extractor.parameters(), same.parameters()))  # seeded


def test_the_extractor_normalises_with_the_imagenet_statistics():
    extractor = small_extractor()
    mean = torch.tensor(S.IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(S.IMAGENET_STD).view(1, 3, 1, 1)
    images = torch.rand(1, 3, 16, 16)
    expected = extractor.layers[1](extractor.layers[0]((images - mean) / std))
    assert torch.allclose(extractor(images)[0], expected, atol=1e-6)


def test_gram_by_its_definition_and_blind_to_positions():
    X = torch.randn(2, 4, 5, 6)
    G = S.gram(X)
    flat = X.reshape(2, 4, 30)
    assert torch.allclose(G[1], flat[1] @ flat[1].T / (4 * 30), atol=1e-6)
    assert torch.allclose(G, G.transpose(1, 2))  # symmetric
    shuffled = flat[:, :, torch.randperm(30)].reshape(2, 4, 5, 6)  # the same values at other positions
    assert torch.allclose(S.gram(shuffled), G, atol=1e-6)


def test_the_three_losses_by_hand():
    a, b = torch.randn(1, 3, 4, 4), torch.randn(1, 3, 4, 4)
    assert S.content_loss(a, b).item() == pytest.approx(((a - b) ** 2).mean().item())
    assert S.style_loss(a, S.gram(a)).item() == 0
    assert S.style_loss(a, S.gram(b)).item() == pytest.approx(F.mse_loss(S.gram(a), S.gram(b)).item())
    image = torch.zeros(1, 3, 4, 4)
    image[:, :, :, 2:] = 1.0  # one vertical edge: every row has one jump of 1 among 3 horizontal pairs
    assert S.tv_loss(image).item() == pytest.approx(0.5 * (0 + 1 / 3))
    assert S.tv_loss(torch.full((1, 3, 5, 5), 0.7)).item() == 0


def test_transfer_moves_only_the_pixels_and_lowers_the_style_loss():
    extractor = small_extractor()
    g = torch.Generator().manual_seed(0)
    content, style_image = torch.rand(3, 24, 24, generator=g), S.stained_glass(24, 24, cells=6)
    before = [p.clone() for p in extractor.parameters()]
    run = S.transfer(extractor, content, style_image, steps=60, lr=0.05, content_weight=1.0, style_weight=1e4,
                     tv_weight=1.0)
    assert all(torch.equal(a, b) for a, b in zip(before, extractor.parameters()))
    assert run.image.shape == (3, 24, 24) and run.image.min() >= 0 and run.image.max() <= 1
    assert run.losses["style"][-1] < 0.2 * run.losses["style"][0]
    assert run.losses["content"][0] == 0  # it starts as the content image
    total = torch.tensor(run.losses["content"]) + torch.tensor(run.losses["style"]) + torch.tensor(run.losses["tv"])
    assert torch.allclose(total, torch.tensor(run.losses["total"]), rtol=1e-5)  # a weighted sum
    assert len(run.losses["total"]) == 60 and run.seconds > 0


def test_with_adam_only_the_ratio_of_the_weights_matters():
    extractor = small_extractor()
    content, style_image = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(1)), S.stained_glass(16, 16)
    kwargs = dict(steps=10, lr=0.05)
    a = S.transfer(extractor, content, style_image, content_weight=1.0, style_weight=1e3, tv_weight=1.0, **kwargs)
    b = S.transfer(extractor, content, style_image, content_weight=100.0, style_weight=1e5, tv_weight=100.0, **kwargs)
    c = S.transfer(extractor, content, style_image, content_weight=1.0, style_weight=1e5, tv_weight=1.0, **kwargs)
    assert (a.image - b.image).abs().max() < 1e-3
    assert (a.image - c.image).abs().max() > 10 * (a.image - b.image).abs().max()


def test_texture_synthesis_from_noise_and_bad_arguments():
    extractor = small_extractor()
    g = torch.Generator().manual_seed(2)
    run = S.transfer(extractor, torch.rand(3, 16, 16), S.stained_glass(16, 16, cells=5), steps=3, lr=0.05,
                     content_weight=0.0, style_weight=1e4, tv_weight=0.0, init="noise", generator=g)
    assert run.losses["content"] == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="init"):
        S.transfer(extractor, torch.rand(3, 8, 8), torch.rand(3, 8, 8), steps=1, lr=0.1, content_weight=1,
                   style_weight=1, tv_weight=1, init="zeros")
    with pytest.raises(ValueError, match="single images"):
        S.transfer(extractor, torch.rand(1, 3, 8, 8), torch.rand(3, 8, 8), steps=1, lr=0.1, content_weight=1,
                   style_weight=1, tv_weight=1)
    with pytest.raises(ValueError, match="unknown feature extractor"):
        S.feature_extractor("resnet")


def test_the_stained_glass_has_saturated_cells_and_dark_borders():
    image = S.stained_glass(40, 60, cells=12, seed=3)
    assert image.shape == (3, 40, 60) and image.min() >= 0 and image.max() <= 1
    dark = (image.amax(dim=0) < 0.1)
    assert 0.02 < dark.float().mean() < 0.4  # borders, not the whole image
    bright = image[:, ~dark]
    assert torch.allclose(bright.amax(dim=0), torch.ones(bright.shape[1]))  # every cell's colour is saturated
    assert torch.equal(image, S.stained_glass(40, 60, cells=12, seed=3))


def test_grain_is_zero_for_flat_images_and_grows_with_noise():
    flat = torch.full((3, 10, 10), 0.5)
    assert S.high_frequency_energy(flat) == 0
    noisy = flat + 0.1 * torch.randn(3, 10, 10, generator=torch.Generator().manual_seed(0))
    assert S.high_frequency_energy(noisy) > S.high_frequency_energy(flat + 0.01 * (noisy - flat))


def test_the_vgg19_weights_are_registered_with_a_checksum():
    remote = download.REGISTRY["vgg19-imagenet"]
    assert remote.url.endswith("vgg19-dcbb9e9d.pth") and remote.checksums == ("sha256-prefix:dcbb9e9d",)
    assert S.VGG19_LAYERS[4] == 25  # conv4_4, the content layer of the notes (the fourth block's last conv)
