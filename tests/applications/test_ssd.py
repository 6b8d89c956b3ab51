"""dlnotes.applications.ssd: shapes and anchors per scale, the loss, learning, prediction and scores."""

from __future__ import annotations

import math

import pytest
import torch

from dlnotes import data, train
from dlnotes.applications import bananas, boxes, ssd


def test_scale_sizes_grow_and_pair_with_their_geometric_mean():
    sizes = ssd.scale_sizes(4)
    assert len(sizes) == 4 and sizes[0][0] == pytest.approx(0.2)
    assert all(a[0] < b[0] for a, b in zip(sizes, sizes[1:]))
    assert all(s[1] == pytest.approx(math.sqrt(s[0] * t[0])) for s, t in zip(sizes, sizes[1:]))


def test_the_detector_predicts_for_every_anchor_of_every_scale():
    torch.manual_seed(0)
    model = ssd.TinySSD(num_classes=2, channels=(4, 8), width=8, num_scales=3)
    anchor_boxes, classes, offsets = model(torch.rand(5, 3, 32, 32))
    per_pixel = 2 + 3 - 1
    expected = (8 * 8 + 4 * 4 + 1) * per_pixel  # 32 -> 8 after two blocks, 4, then pooled to 1
    assert anchor_boxes.shape == (expected, 4) and classes.shape == (5, expected, 3) and offsets.shape == (5, expected, 4)
    first = boxes.anchors(8, 8, sizes=model.sizes[0], ratios=model.ratios)
    assert torch.equal(anchor_boxes[:len(first)], first)
    with pytest.raises(ValueError, match="3 scales need 3 lists"):
        ssd.TinySSD(num_classes=1, num_scales=3, sizes=[[0.2], [0.5]])


def test_the_loss_is_zero_for_a_perfect_prediction_and_positive_otherwise():
    model = ssd.TinySSD(num_classes=1, channels=(4, 8), width=8, num_scales=2)
    anchor_boxes, classes, offsets = model(torch.rand(2, 3, 16, 16))
    truth = torch.tensor([[[0, 0.1, 0.1, 0.6, 0.5]], [[0, 0.4, 0.3, 0.9, 0.9]]])
    labels, targets, mask = boxes.label_anchors(anchor_boxes, truth)
    perfect = torch.nn.functional.one_hot(labels, 2).float() * 1e4  # logits that are sure of the labels
    assert ssd.ssd_loss((anchor_boxes, perfect, targets), truth).item() == pytest.approx(0.0, abs=1e-6)
    assert ssd.ssd_loss((anchor_boxes, classes, offsets), truth) > 0.1


def test_a_tiny_detector_learns_the_bananas():
    torch.manual_seed(0)
    d = bananas.banana_set(num_train=256, num_test=64, size=32, seed=0)
    model = ssd.TinySSD(num_classes=1, channels=(16, 32), width=32, num_scales=3)
    before = ssd.detection_scores(ssd.predict(model, d.X_test), d.y_test)
    loader = data.TensorLoader(d.X_train, d.y_train, batch_size=32, shuffle=True,
                               generator=torch.Generator().manual_seed(0))
    history = train.fit(model=model, train_loader=loader, loss_fn=ssd.ssd_loss, num_epochs=15,
                        optimizer=torch.optim.Adam(model.parameters(), lr=0.003), progress=False)
    assert history["train_loss"][-1] < 0.5 * history["train_loss"][0]
    after = ssd.detection_scores(ssd.predict(model, d.X_test), d.y_test)
    assert after["top_iou"] > before["top_iou"] + 0.4 and after["top_hit"] > 0.7  # 0.60 and 0.83 here
    assert model.training  # predict restores the mode


def test_detection_scores_count_hits_duplicates_and_misses():
    truth = torch.tensor([[[0, 0.0, 0.0, 0.5, 0.5], [0, 0.5, 0.5, 1.0, 1.0]]])
    found = [torch.tensor([[0, 0.9, 0.0, 0.0, 0.5, 0.5],  # a hit
                           [0, 0.8, 0.0, 0.0, 0.5, 0.45],  # the same banana again: a false positive
                           [0, 0.7, 0.6, 0.0, 0.9, 0.3],  # nothing there
                           [0, 0.2, 0.5, 0.5, 1.0, 1.0]])]  # a hit, but below the score threshold
    scores = ssd.detection_scores(found, truth, score_threshold=0.5)
    assert scores == {"top_iou": 1.0, "top_hit": 1.0, "precision": 1 / 3, "recall": 1 / 2}
    assert ssd.detection_scores(found, truth, score_threshold=0.1)["recall"] == 1.0
    with pytest.raises(ValueError, match="1 images with detections but 2"):
        ssd.detection_scores(found, truth.expand(2, -1, -1))
