"""dlnotes.applications.boxes: formats, IoU and NMS against torchvision, anchors, labelling, decoding."""

from __future__ import annotations

import pytest
import torch
import torchvision

from dlnotes.applications import boxes as B


def _random_boxes(n: int, *, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    top_left = torch.rand(n, 2, generator=g)
    return torch.cat([top_left, top_left + 0.01 + 0.5 * torch.rand(n, 2, generator=g)], dim=1)  # (n, 4)


def test_the_formats_are_inverse():
    boxes = _random_boxes(20, seed=0)
    assert torch.allclose(B.center_to_corner(B.corner_to_center(boxes)), boxes, atol=1e-6)
    assert B.corner_to_center(torch.tensor([[1.0, 2.0, 5.0, 4.0]])).tolist() == [[3.0, 3.0, 4.0, 2.0]]


@pytest.mark.parametrize("n, m", [(7, 5), (1, 30), (0, 4), (3, 0)])
def test_box_iou_equals_torchvision(n, m):
    a, b = _random_boxes(n, seed=1), _random_boxes(m, seed=2)
    ours = B.box_iou(a, b)
    assert ours.shape == (n, m)
    assert torch.allclose(ours, torchvision.ops.box_iou(a, b), atol=1e-7)
    if n and m:
        assert ours.min() >= 0 and ours.max() <= 1
        assert torch.allclose(B.box_iou(a, a).diagonal(), torch.ones(n))


def test_box_iou_by_hand_and_bad_shapes():
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    b = torch.tensor([[1.0, 1.0, 3.0, 3.0], [2.0, 2.0, 3.0, 3.0], [5.0, 5.0, 6.0, 6.0]])
    assert torch.allclose(B.box_iou(a, b), torch.tensor([[1 / 7, 0.0, 0.0]]))  # overlap 1, union 7
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        B.box_iou(torch.zeros(3, 5), b)


@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.7, 1.0])
@pytest.mark.parametrize("ties", [False, True])
def test_nms_equals_torchvision(threshold, ties):
    boxes = _random_boxes(60, seed=3)
    g = torch.Generator().manual_seed(4)
    scores = torch.randint(0, 3, (60,), generator=g).float() if ties else torch.rand(60, generator=g)
    ours = B.nms(boxes, scores, iou_threshold=threshold)
    assert ours.tolist() == torchvision.ops.nms(boxes, scores, threshold).tolist()
    kept = boxes[ours]
    iou = B.box_iou(kept, kept).fill_diagonal_(0)
    assert iou.max() <= threshold  # no two kept boxes overlap by more than the threshold


def test_nms_on_nothing_and_on_mismatched_input():
    assert B.nms(torch.zeros(0, 4), torch.zeros(0), iou_threshold=0.5).tolist() == []
    with pytest.raises(ValueError, match="3 boxes but 2 scores"):
        B.nms(torch.zeros(3, 4), torch.zeros(2), iou_threshold=0.5)


def test_anchors_have_the_asked_shapes_sizes_and_ratios():
    height, width, sizes, ratios = 3, 4, [0.6, 0.3], [1.0, 2.0, 0.5]
    a = B.anchors(height, width, sizes=sizes, ratios=ratios)
    k = len(sizes) + len(ratios) - 1
    assert a.shape == (height * width * k, 4)
    centres = B.corner_to_center(a).reshape(height, width, k, 4)
    assert torch.allclose(centres[1, 2, :, 0], torch.full((k,), 2.5 / width))  # pixel (row 1, column 2)
    assert torch.allclose(centres[1, 2, :, 1], torch.full((k,), 1.5 / height))
    # in pixels of an image of the map's shape: width / height = ratio, area = (size * H)^2
    pixel_w = centres[0, 0, :, 2] * width
    pixel_h = centres[0, 0, :, 3] * height
    expected = [(0.6, 1.0), (0.3, 1.0), (0.6, 2.0), (0.6, 0.5)]
    for (s, r), w, h in zip(expected, pixel_w, pixel_h):
        assert torch.isclose(w / h, torch.tensor(r)) and torch.isclose(w * h, torch.tensor((s * height) ** 2))
    with pytest.raises(ValueError, match="positive"):
        B.anchors(2, 2, sizes=[], ratios=[1.0])


def test_encode_and_decode_are_inverse_and_zero_on_the_anchor_itself():
    anchor_boxes, boxes = _random_boxes(30, seed=5), _random_boxes(30, seed=6)
    offsets = B.encode(anchor_boxes, boxes)
    assert torch.allclose(B.decode(anchor_boxes, offsets), boxes, atol=1e-5)
    assert B.encode(anchor_boxes, anchor_boxes).abs().max() < 1e-6


def test_assign_gives_every_box_an_anchor_and_respects_the_threshold():
    truth = torch.tensor([[0.1, 0.1, 0.5, 0.5], [0.55, 0.55, 0.9, 0.9]])
    anchor_boxes = torch.tensor([[0.0, 0.0, 0.4, 0.4],  # best for box 0
                                 [0.1, 0.1, 0.48, 0.5],  # even better for box 0
                                 [0.0, 0.6, 0.2, 1.0],  # touches nothing
                                 [0.6, 0.6, 1.0, 1.0],  # box 1 (IoU below 0.5 is still taken: its best)
                                 [0.3, 0.3, 0.7, 0.7]])  # overlaps both a little
    owner = B.assign(truth, anchor_boxes, iou_threshold=0.5)
    assert owner.tolist() == [-1, 0, -1, 1, -1]
    assert B.assign(truth, anchor_boxes, iou_threshold=0.1).tolist() == [0, 0, -1, 1, 0]  # 0.14 and 0.09
    assert B.assign(truth[:0], anchor_boxes).tolist() == [-1] * 5


def test_label_anchors_gives_classes_offsets_and_masks():
    anchor_boxes = B.anchors(4, 4, sizes=[0.4, 0.2], ratios=[1.0, 2.0])
    truth = torch.tensor([[[0, 0.1, 0.1, 0.5, 0.5], [-1, 0, 0, 0, 0]],  # one box, one padding row
                          [[1, 0.5, 0.2, 0.9, 0.6], [0, 0.0, 0.6, 0.3, 0.95]]])
    classes, offsets, mask = B.label_anchors(anchor_boxes, truth)
    A = len(anchor_boxes)
    assert classes.shape == (2, A) and offsets.shape == mask.shape == (2, A, 4)
    assert set(classes[0].tolist()) == {0, 1} and set(classes[1].tolist()) == {0, 1, 2}
    assert torch.equal(mask[..., 0] > 0, classes > 0)
    assert (offsets[mask == 0] == 0).all()
    positive = classes[1] == 2  # anchors of class 1, the first box of image 1
    assert torch.allclose(B.decode(anchor_boxes[positive], offsets[1][positive]),
                          truth[1, 0, 1:].expand(int(positive.sum()), 4), atol=1e-5)
    with pytest.raises(ValueError, match="class, x1"):
        B.label_anchors(anchor_boxes, truth[0])


def test_detect_decodes_the_confident_anchors_and_suppresses_duplicates():
    anchor_boxes = torch.tensor([[0.1, 0.1, 0.5, 0.5], [0.12, 0.1, 0.52, 0.5], [0.6, 0.6, 0.9, 0.9]])
    probs = torch.tensor([[[0.1, 0.9, 0.0], [0.2, 0.8, 0.0], [0.6, 0.1, 0.3]]])  # (1, 3, 1 + 2 classes)
    offsets = torch.zeros(1, 3, 4)
    (found,) = B.detect(probs, offsets, anchor_boxes, nms_threshold=0.5)
    assert found[:, 0].tolist() == [0, 1]  # classes: anchor 1 was suppressed by anchor 0
    assert torch.allclose(found[:, 1], torch.tensor([0.9, 0.3]))
    assert torch.allclose(found[:, 2:], anchor_boxes[[0, 2]])
    (confident,) = B.detect(probs, offsets, anchor_boxes, score_threshold=0.5)
    assert len(confident) == 1
