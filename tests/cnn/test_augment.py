"""Augmentation: batch flips, padded crops and rotations against reference ops; the loader wrapper; the photo."""

import pytest
import torch
import torch.nn.functional as F

from dlnotes import data
from dlnotes.cnn import augment


def batch(B=6, C=2, H=5, W=7):
    return torch.arange(B * C * H * W, dtype=torch.float32).reshape(B, C, H, W) / (B * C * H * W)


def test_random_flip_is_an_involution_and_flips_whole_images():
    X = batch(B=16)
    once = augment.random_flip(X, generator=torch.Generator().manual_seed(3))
    twice = augment.random_flip(once, generator=torch.Generator().manual_seed(3))  # the same coins again
    assert torch.equal(twice, X)
    flipped = (once != X).flatten(1).any(1)  # (B,): which images changed
    assert 3 < flipped.sum() < 13  # about half of the 16 images flip
    assert torch.equal(once[flipped], X[flipped].flip(-1))
    assert torch.equal(augment.random_flip(X, p=1.0), X.flip(-1))
    assert torch.equal(augment.random_flip(X, p=0.0), X)


def test_crop_at_matches_a_per_image_pad_and_slice():
    X = batch()
    top, left, p = torch.tensor([0, 1, 2, 3, 4, 2]), torch.tensor([4, 3, 2, 1, 0, 0]), 2
    out = augment.crop_at(X, top=top, left=left, padding=p)
    padded = F.pad(X, (p, p, p, p))
    expected = torch.stack([padded[i, :, t:t + 5, l:l + 7] for i, (t, l) in enumerate(zip(top, left))])
    assert out.shape == X.shape
    assert not torch.equal(out, X)
    torch.testing.assert_close(out, expected, rtol=0, atol=0)


def test_zero_shift_crop_is_the_identity():
    X = batch()
    for p in (0, 3):
        centre = torch.full((len(X),), p)
        assert torch.equal(augment.crop_at(X, top=centre, left=centre, padding=p), X)


def test_random_crop_keeps_shape_and_differs_across_the_batch():
    X = torch.rand(1, 1, 8, 8).expand(16, 1, 8, 8)  # 16 copies of one image
    out = augment.random_crop(X, padding=3, generator=torch.Generator().manual_seed(0))
    assert out.shape == X.shape
    assert len({tuple(o.flatten().tolist()) for o in out}) > 8  # each image got its own offset


def test_crop_rejects_bad_offsets_and_shapes():
    X = batch()
    with pytest.raises(ValueError, match=r"\[0, 2 \* padding\]"):
        augment.crop_at(X, top=torch.full((6,), 5), left=torch.zeros(6, dtype=torch.long), padding=2)
    with pytest.raises(ValueError, match="one offset per image"):
        augment.crop_at(X, top=torch.zeros(3, dtype=torch.long), left=torch.zeros(3, dtype=torch.long), padding=1)
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        augment.random_crop(X[0], padding=1)


def test_rotate_scale_identity_and_quarter_turn_match_torch():
    X = torch.rand(4, 3, 6, 6)
    B = len(X)
    same = augment.rotate_scale(X, degrees=torch.zeros(B), scale=torch.ones(B))
    torch.testing.assert_close(same, X, atol=1e-6, rtol=0)
    quarter = augment.rotate_scale(X, degrees=torch.full((B,), 90.0), scale=torch.ones(B))
    # pixel centres map onto pixel centres, so bilinear sampling reproduces an exact 90 degree turn
    matches = [k for k in (1, -1) if torch.allclose(quarter, torch.rot90(X, k, dims=(2, 3)), atol=1e-5)]
    assert len(matches) == 1
    with pytest.raises(ValueError, match="positive"):
        augment.rotate_scale(X, degrees=torch.zeros(B), scale=torch.zeros(B))


def test_zoom_in_enlarges_the_centre():
    X = torch.zeros(1, 1, 9, 9)
    X[..., 3:6, 3:6] = 1.0  # a 3 x 3 square in the middle
    big = augment.rotate_scale(X, degrees=torch.zeros(1), scale=torch.tensor([2.0]))
    small = augment.rotate_scale(X, degrees=torch.zeros(1), scale=torch.tensor([0.5]))
    assert big.sum() > 2 * X.sum() and small.sum() < X.sum()


def test_augment_batch_stays_in_range_and_is_reproducible():
    X = torch.rand(32, 1, 12, 12)
    kwargs = dict(flip_p=0.5, padding=2, max_degrees=20.0, scale_range=(0.8, 1.2))
    a = augment.augment_batch(X, generator=torch.Generator().manual_seed(7), **kwargs)
    b = augment.augment_batch(X, generator=torch.Generator().manual_seed(7), **kwargs)
    c = augment.augment_batch(X, generator=torch.Generator().manual_seed(8), **kwargs)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == X.shape
    assert a.min() >= 0 and a.max() <= 1 + 1e-6
    plain = augment.augment_batch(X, flip_p=0.0, padding=0)
    assert torch.equal(plain, X)  # everything switched off: nothing happens
    with pytest.raises(ValueError, match="scale_range"):
        augment.augment_batch(X, scale_range=(1.2, 0.8))


def test_augmented_loader_changes_images_keeps_labels_and_leaves_autograd_on():
    X, y = torch.rand(10, 1, 6, 6), torch.arange(10)
    g = torch.Generator().manual_seed(0)
    base = data.TensorLoader(X, y, batch_size=4)
    loader = augment.AugmentedLoader(base, augment=lambda b: augment.random_crop(b, padding=2, generator=g))
    assert len(loader) == len(base) == 3
    batches = list(zip(base, loader))
    for (X0, y0), (X1, y1) in batches:
        assert torch.equal(y0, y1) and X1.shape == X0.shape
    assert any(not torch.equal(X0, X1) for (X0, _), (X1, _) in batches)
    for Xb, _ in loader:  # the consumer of the batches must still be able to train
        assert torch.is_grad_enabled()
        assert not Xb.requires_grad


def test_small_cnn_shapes_and_backbone_split():
    net = augment.small_cnn(num_classes=10, width=8)
    X = torch.rand(3, 1, 28, 28)
    assert net(X).shape == (3, 10)
    assert net[:-1](X).shape == (3, net[-1].in_features)


def test_load_photo_from_scikit_learn():
    photo = augment.load_photo("sklearn-china", max_side=64)
    assert photo.shape[0] == 3 and max(photo.shape[1:]) == 64 and photo.dtype == torch.float32
    assert 0 <= photo.min() and photo.max() <= 1 and photo.std() > 0.05  # a real photo, not a blank
    square = augment.load_photo("sklearn-flower", max_side=32, square=True)
    assert square.shape == (3, 32, 32)
    with pytest.raises(ValueError, match="unknown photo"):
        augment.load_photo("dog")
