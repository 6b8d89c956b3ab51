"""Bounding boxes and anchors: formats, IoU, anchors per pixel, labelling anchors, NMS, decoding.

Boxes are float tensors ``(N, 4)``. The *corner* format is ``(x1, y1, x2, y2)`` (top left,
bottom right), the *center* format ``(cx, cy, w, h)``. Anchors are in coordinates relative to
the image (0..1 on both axes), so one set of anchors serves an image of any size. Ground truth
per image is ``(G, 5)``: class, then the corner box; rows with class ``-1`` are padding.
:func:`box_iou` and :func:`nms` equal ``torchvision.ops.box_iou`` / ``nms`` (tested).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

OFFSET_SCALES = (0.1, 0.2)  # the offsets' usual standard deviations, for centres and for sizes


def corner_to_center(boxes: Tensor) -> Tensor:
    """(N, 4) x1, y1, x2, y2 -> (N, 4) cx, cy, w, h."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], dim=-1)


def center_to_corner(boxes: Tensor) -> Tensor:
    """(N, 4) cx, cy, w, h -> (N, 4) x1, y1, x2, y2."""
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)


def box_area(boxes: Tensor) -> Tensor:
    """(N, 4) corner boxes -> (N,) areas."""
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Intersection over union of every pair: (N, 4), (M, 4) corner boxes -> (N, M)."""
    if boxes1.ndim != 2 or boxes1.shape[-1] != 4 or boxes2.ndim != 2 or boxes2.shape[-1] != 4:
        raise ValueError(f"boxes must be (N, 4) and (M, 4), got {tuple(boxes1.shape)} and {tuple(boxes2.shape)}")
    top_left = torch.maximum(boxes1[:, None, :2], boxes2[None, :, :2])  # (N, M, 2)
    bottom_right = torch.minimum(boxes1[:, None, 2:], boxes2[None, :, 2:])  # (N, M, 2)
    sides = (bottom_right - top_left).clamp(min=0)  # (N, M, 2): no overlap -> 0
    inter = sides[..., 0] * sides[..., 1]  # (N, M)
    union = box_area(boxes1)[:, None] + box_area(boxes2)[None, :] - inter
    return inter / union


def anchors(height: int, width: int, *, sizes: Sequence[float], ratios: Sequence[float]) -> Tensor:
    """Anchors centred on every pixel of a height x width map: (height * width * k, 4) corner boxes.

    A size s is the side of a square anchor as a fraction of the image's height; a ratio r is
    width / height. Each pixel gets k = len(sizes) + len(ratios) - 1 anchors: every size with
    ratios[0], and sizes[0] with every other ratio (all pairs would be too many). Their widths
    are relative to the image's width, so an image of height H and width W, for the anchors of
    a feature map of its shape, should pass height / width = H / W (as a feature map has).
    """
    if not sizes or not ratios or min(sizes) <= 0 or min(ratios) <= 0:
        raise ValueError(f"sizes and ratios must be positive and not empty, got {sizes} and {ratios}")
    pairs = [(s, ratios[0]) for s in sizes] + [(sizes[0], r) for r in ratios[1:]]
    s = torch.tensor([p[0] for p in pairs])
    r = torch.tensor([p[1] for p in pairs])
    half_w = s * r.sqrt() * height / width / 2  # (k,) in units of the image's width
    half_h = s / r.sqrt() / 2  # (k,) in units of the image's height
    cy = (torch.arange(height) + 0.5) / height  # pixel centres
    cx = (torch.arange(width) + 0.5) / width
    cy, cx = torch.meshgrid(cy, cx, indexing="ij")  # (height, width) each
    centres = torch.stack([cx, cy, cx, cy], dim=-1).reshape(-1, 1, 4)  # (hw, 1, 4)
    halves = torch.stack([-half_w, -half_h, half_w, half_h], dim=-1)  # (k, 4)
    return (centres + halves).reshape(-1, 4)  # pixel by pixel, k anchors each


def assign(truth: Tensor, anchor_boxes: Tensor, *, iou_threshold: float = 0.5) -> Tensor:
    """Which ground-truth box each anchor is responsible for: (A,) indices into truth, -1 for none.

    First each ground-truth box takes its best anchor, greedily from the largest IoU of all
    (so every box gets an anchor, even a poorly matching one); then each remaining anchor takes
    the box it overlaps most, if that IoU reaches the threshold.
    """
    iou = box_iou(anchor_boxes, truth)  # (A, G)
    best_iou, best_box = iou.max(dim=1) if truth.numel() else (iou.new_zeros(len(iou)), None)
    owner = torch.full((len(anchor_boxes),), -1, dtype=torch.long)
    if best_box is None:
        return owner
    owner[best_iou >= iou_threshold] = best_box[best_iou >= iou_threshold]
    iou = iou.clone()
    for _ in range(min(iou.shape)):
        flat = int(iou.argmax())
        anchor, box = divmod(flat, iou.shape[1])
        owner[anchor] = box
        iou[anchor, :] = -1  # this anchor and this box are taken
        iou[:, box] = -1
    return owner


def encode(anchor_boxes: Tensor, boxes: Tensor, *, scales: Sequence[float] = OFFSET_SCALES) -> Tensor:
    """Offsets that move each anchor onto its box: (A, 4), (A, 4) corner boxes -> (A, 4).

    Centres move in units of the anchor's size, sizes change by a log ratio; dividing by the
    scales gives offsets of roughly unit spread, which suits a regression loss.
    """
    a, b = corner_to_center(anchor_boxes), corner_to_center(boxes)
    xy = (b[:, :2] - a[:, :2]) / a[:, 2:] / scales[0]
    wh = torch.log(b[:, 2:] / a[:, 2:]) / scales[1]
    return torch.cat([xy, wh], dim=1)


def decode(anchor_boxes: Tensor, offsets: Tensor, *, scales: Sequence[float] = OFFSET_SCALES) -> Tensor:
    """The inverse of :func:`encode`: anchors (A, 4) moved by offsets (A, 4) -> corner boxes (A, 4)."""
    a = corner_to_center(anchor_boxes)
    xy = offsets[:, :2] * scales[0] * a[:, 2:] + a[:, :2]
    wh = torch.exp(offsets[:, 2:] * scales[1]) * a[:, 2:]
    return center_to_corner(torch.cat([xy, wh], dim=1))


def label_anchors(anchor_boxes: Tensor, truth: Tensor, *, iou_threshold: float = 0.5):
    """Training targets for every anchor of every image.

    anchor_boxes (A, 4); truth (B, G, 5) with class -1 rows as padding. Returns
    ``classes (B, A)`` (0 = background, c + 1 = class c), ``offsets (B, A, 4)`` (zero for
    background) and ``mask (B, A, 4)`` (1 where the offsets count in the loss).
    """
    if truth.ndim != 3 or truth.shape[-1] != 5:
        raise ValueError(f"truth must be (batch, boxes, 5): class, x1, y1, x2, y2; got {tuple(truth.shape)}")
    classes, offsets, masks = [], [], []
    for rows in truth:
        rows = rows[rows[:, 0] >= 0]  # (G, 5) without padding
        owner = assign(rows[:, 1:], anchor_boxes, iou_threshold=iou_threshold)  # (A,)
        positive = owner >= 0
        cls = torch.zeros(len(anchor_boxes), dtype=torch.long)
        cls[positive] = rows[owner[positive], 0].long() + 1
        off = torch.zeros(len(anchor_boxes), 4)
        off[positive] = encode(anchor_boxes[positive], rows[owner[positive], 1:])
        classes.append(cls)
        offsets.append(off)
        masks.append(positive[:, None].float().expand(-1, 4))
    return torch.stack(classes), torch.stack(offsets), torch.stack(masks)


def nms(boxes: Tensor, scores: Tensor, *, iou_threshold: float) -> Tensor:
    """Non-maximum suppression: indices of the kept boxes, by decreasing score.

    Take the best remaining box, drop every box that overlaps it by more than the threshold,
    repeat. Equal scores keep their input order, as in torchvision.
    """
    if len(boxes) != len(scores):
        raise ValueError(f"{len(boxes)} boxes but {len(scores)} scores")
    order = torch.sort(scores, descending=True, stable=True).indices
    iou = box_iou(boxes, boxes)  # (N, N)
    kept = []
    alive = torch.ones(len(boxes), dtype=torch.bool)
    for i in order.tolist():
        if alive[i]:
            kept.append(i)
            alive &= iou[i] <= iou_threshold  # drops i itself too (IoU 1)
    return torch.tensor(kept, dtype=torch.long)


def detect(probs: Tensor, offsets: Tensor, anchor_boxes: Tensor, *, nms_threshold: float = 0.5,
           score_threshold: float = 0.0) -> list[Tensor]:
    """Predicted boxes per image after NMS.

    probs (B, A, C + 1) with the background at 0, offsets (B, A, 4), anchor_boxes (A, 4).
    Each anchor proposes its most likely object class; NMS runs over all classes at once.
    Returns one (K, 6) tensor per image: class, score, x1, y1, x2, y2, by decreasing score.
    """
    results = []
    for p, off in zip(probs, offsets):
        score, cls = p[:, 1:].max(dim=1)  # (A,), (A,): the best object class
        boxes = decode(anchor_boxes, off)
        # boxes below the threshold cannot suppress higher ones, so drop them before NMS
        candidates = torch.nonzero(score >= score_threshold).flatten()
        keep = candidates[nms(boxes[candidates], score[candidates], iou_threshold=nms_threshold)]
        results.append(torch.cat([cls[keep, None].float(), score[keep, None], boxes[keep]], dim=1))
    return results
