"""dlnotes.applications.bananas: the sprite, the photo's boxes, and generated images whose boxes are right."""

from __future__ import annotations

import pytest
import torch

from dlnotes.applications import bananas, boxes


def test_the_sprite_is_a_banana_cut_out_of_the_photo():
    sprite = bananas.banana_sprite()
    assert sprite.shape[0] == 4 and 40 < sprite.shape[1] < 80 and 40 < sprite.shape[2] < 80
    alpha = sprite[3]
    assert set(alpha.unique().tolist()) == {0.0, 1.0}
    assert 0.2 < alpha.mean() < 0.7  # a crescent fills part of its box
    r, g, b = (sprite[:3] * alpha).sum(dim=(1, 2)) / alpha.sum()
    assert r > b + 0.2 and g > b + 0.1  # yellow
    for edge in (alpha[0], alpha[-1], alpha[:, 0], alpha[:, -1]):
        assert edge.any()  # the box is tight: the banana touches every side


def test_the_photo_boxes_contain_the_yellow_pixels():
    photo, truth = bananas.photo_bananas()
    assert photo.shape == (3, 256, 256) and truth.shape[1] == 5 and len(truth) >= 3
    assert truth.dtype == torch.float32 and (truth[:, 0] == 0).all()
    assert (truth[:, 1:3] < truth[:, 3:]).all() and truth[:, 1:].min() >= 0 and truth[:, 1:].max() <= 1
    iou = boxes.box_iou(truth[:, 1:], truth[:, 1:]).fill_diagonal_(0)
    assert iou.max() < 0.1  # separate bananas


def test_the_scaled_photo_keeps_its_boxes_and_its_colours():
    photo, truth = bananas.photo_bananas()
    small, small_truth = bananas.photo_bananas(size=64)
    assert small.shape == (3, 64, 64) and torch.equal(small_truth, truth)  # the boxes are relative
    assert small.min() >= 0 and small.max() <= 1
    assert torch.allclose(small.mean(dim=(1, 2)), photo.mean(dim=(1, 2)), atol=0.01)  # antialiased: the mean survives


def test_generated_images_have_their_bananas_inside_their_boxes():
    g = torch.Generator().manual_seed(0)
    X, truth = bananas.banana_images(40, size=48, generator=g, max_bananas=3)
    assert X.shape == (40, 3, 48, 48) and truth.shape == (40, 3, 5)
    assert X.min() >= 0 and X.max() <= 1
    real = truth[:, :, 0] >= 0
    assert real[:, 0].all() and (real.sum(1) > 1).any()  # every image has one, some have more
    assert ((truth[:, :, 0] == -1) | (truth[:, :, 0] == 0)).all()
    sizes = (truth[real][:, 3:] - truth[real][:, 1:3]).max(dim=1).values
    assert sizes.min() >= 0.2 - 1 / 48 and sizes.max() <= 0.6 + 2 / 48
    for image, rows in zip(X, truth):
        rows = rows[rows[:, 0] >= 0]
        yellow = (image[0] > 0.55) & (image[2] < image[0] - 0.25)  # (48, 48)
        inside = torch.zeros_like(yellow)
        for _, x1, y1, x2, y2 in (rows * torch.tensor([1, 48, 48, 48, 48])).round().long().tolist():
            inside[y1:y2, x1:x2] = True
        assert (yellow & inside).sum() > 0  # a banana is in each image's boxes
        ious = boxes.box_iou(rows[:, 1:], rows[:, 1:]).fill_diagonal_(0)
        assert ious.max() <= 0.1 + 1e-6


def test_a_seed_gives_the_same_set_and_bad_arguments_are_refused():
    a = bananas.banana_set(num_train=6, num_test=3, size=32, seed=1)
    b = bananas.banana_set(num_train=6, num_test=3, size=32, seed=1)
    assert torch.equal(a.X_train, b.X_train) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.X_train, bananas.banana_set(num_train=6, num_test=3, size=32, seed=2).X_train)
    assert "train (6, 3, 32, 32)" in repr(a)
    with pytest.raises(ValueError, match="max_bananas"):
        bananas.banana_images(3, size=32, generator=torch.Generator(), max_bananas=0)
