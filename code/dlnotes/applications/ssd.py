"""A small single-shot multibox detector (SSD): anchors at several scales, one conv per prediction.

A base network shrinks the image; each further block halves the feature map again. At every
scale a 3 x 3 convolution predicts, for every anchor of every pixel, the class scores
(background first) and four offsets. Small maps have few, large anchors; large maps many, small
ones. The loss labels the anchors against the ground truth (:func:`boxes.label_anchors`), so
:func:`dlnotes.train.fit` trains the model unchanged.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dlnotes.applications import boxes
from dlnotes.cnn.modern_cnn import vgg_block


def scale_sizes(num_scales: int, *, smallest: float = 0.2, largest: float = 0.9) -> list[list[float]]:
    """Anchor sizes per scale, as in the SSD paper: evenly spaced s_i, and sqrt(s_i * s_{i+1})."""
    s = torch.linspace(smallest, largest, num_scales + 1).tolist()
    return [[s[i], (s[i] * s[i + 1]) ** 0.5] for i in range(num_scales)]


class TinySSD(nn.Module):
    """An SSD with ``len(channels)`` base blocks, then ``num_scales`` prediction scales.

    The last scale pools the map to 1 x 1. Returns ``(anchors (A, 4), class scores (B, A, C + 1),
    offsets (B, A, 4))``, the anchors ordered scale by scale, pixel by pixel.
    """

    def __init__(self, *, num_classes: int, channels: Sequence[int] = (8, 16, 32), width: int = 64,
                 num_scales: int = 4, ratios: Sequence[float] = (1.0, 2.0, 0.5),
                 sizes: Sequence[Sequence[float]] | None = None):
        super().__init__()
        self.num_classes = num_classes
        self.sizes = [list(s) for s in (sizes or scale_sizes(num_scales))]
        self.ratios = list(ratios)
        if len(self.sizes) != num_scales:
            raise ValueError(f"{num_scales} scales need {num_scales} lists of sizes, got {len(self.sizes)}")
        per_pixel = len(self.sizes[0]) + len(self.ratios) - 1
        widths = list(channels)
        base = [vgg_block(2, a, b, batch_norm=True) for a, b in zip([3, *widths[:-1]], widths)]
        self.blocks = nn.ModuleList([nn.Sequential(*base)])
        in_channels = [widths[-1]]
        for i in range(1, num_scales):
            last = i == num_scales - 1
            if last:  # the last scale: one pixel
                self.blocks.append(nn.AdaptiveMaxPool2d(1))
            else:  # SSD's down-sampling block: (conv, BN, ReLU) x 2, max-pool
                self.blocks.append(vgg_block(2, in_channels[-1], width, batch_norm=True))
            in_channels.append(in_channels[-1] if last else width)
        self.class_heads = nn.ModuleList(
            nn.Conv2d(c, per_pixel * (num_classes + 1), kernel_size=3, padding=1) for c in in_channels)
        self.box_heads = nn.ModuleList(nn.Conv2d(c, per_pixel * 4, kernel_size=3, padding=1) for c in in_channels)

    @staticmethod
    def _flatten(pred: Tensor, last: int) -> Tensor:
        """(B, k * last, h, w) -> (B, h * w * k, last): pixel by pixel, k anchors each."""
        B = pred.shape[0]
        return pred.permute(0, 2, 3, 1).reshape(B, -1, last)

    def forward(self, X: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        all_anchors, classes, offsets = [], [], []
        H = X
        for block, class_head, box_head, sizes in zip(self.blocks, self.class_heads, self.box_heads, self.sizes):
            H = block(H)  # (B, c, h, w)
            all_anchors.append(boxes.anchors(H.shape[2], H.shape[3], sizes=sizes, ratios=self.ratios))
            classes.append(self._flatten(class_head(H), self.num_classes + 1))
            offsets.append(self._flatten(box_head(H), 4))
        return torch.cat(all_anchors).to(X.device), torch.cat(classes, dim=1), torch.cat(offsets, dim=1)


def ssd_loss(outputs: tuple[Tensor, Tensor, Tensor], truth: Tensor, *, iou_threshold: float = 0.5) -> Tensor:
    """Cross-entropy of every anchor's class plus the L1 error of the positive anchors' offsets.

    outputs as :class:`TinySSD` returns them, truth (B, G, 5). Both parts are means over the
    anchors of an image (the L1 part counts zeros for the background), then over the batch.
    """
    anchor_boxes, class_preds, offset_preds = outputs
    classes, offsets, mask = boxes.label_anchors(anchor_boxes.cpu(), truth.cpu(), iou_threshold=iou_threshold)
    classes, offsets, mask = (t.to(class_preds.device) for t in (classes, offsets, mask))
    B, A, C = class_preds.shape
    class_loss = F.cross_entropy(class_preds.reshape(-1, C), classes.reshape(-1), reduction="none").reshape(B, A)
    box_loss = (F.l1_loss(offset_preds * mask, offsets * mask, reduction="none")).reshape(B, A * 4)
    return class_loss.mean(dim=1).mean() + box_loss.mean(dim=1).mean()


@torch.no_grad()
def predict(model: nn.Module, X: Tensor, *, nms_threshold: float = 0.5, score_threshold: float = 0.0,
            batch_size: int = 256) -> list[Tensor]:
    """Detections for images (N, 3, H, W): one (K, 6) tensor per image (class, score, box)."""
    was_training = model.training
    model.eval()
    found = []
    for i in range(0, len(X), batch_size):
        anchor_boxes, class_preds, offset_preds = model(X[i:i + batch_size])
        probs = F.softmax(class_preds, dim=2)
        found += boxes.detect(probs.cpu(), offset_preds.cpu(), anchor_boxes.cpu(),
                              nms_threshold=nms_threshold, score_threshold=score_threshold)
    model.train(was_training)
    return found


def detection_scores(found: list[Tensor], truth: Tensor, *, iou_threshold: float = 0.5,
                     score_threshold: float = 0.5) -> dict[str, float]:
    """How good detections are against ground truth (N, G, 5); a hit overlaps a true box by the threshold.

    ``top_iou``: the mean IoU of each image's best-scored box with its best-matching true box;
    ``top_hit``: how often that box is a hit. Among all boxes scored at least ``score_threshold``:
    ``precision``, the share that are hits on a not yet found true box of their class, and
    ``recall``, the share of true boxes found.
    """
    if len(found) != len(truth):
        raise ValueError(f"{len(found)} images with detections but {len(truth)} with ground truth")
    top_iou, top_hit, true_positives, predicted, actual = [], [], 0, 0, 0
    for boxes_found, rows in zip(found, truth):
        rows = rows[rows[:, 0] >= 0]
        actual += len(rows)
        iou = boxes.box_iou(boxes_found[:, 2:], rows[:, 1:])  # (K, G)
        best = iou.max(dim=1).values if iou.numel() else torch.zeros(len(boxes_found))
        top_iou.append(best[0].item() if len(best) else 0.0)
        top_hit.append(float(len(best) > 0 and best[0] >= iou_threshold))
        taken = torch.zeros(len(rows), dtype=torch.bool)
        for k in torch.nonzero(boxes_found[:, 1] >= score_threshold).flatten().tolist():
            predicted += 1
            match = (iou[k] >= iou_threshold) & ~taken & (rows[:, 0] == boxes_found[k, 0])
            if match.any():  # a hit: the best-overlapping free true box is found
                taken[int(torch.where(match, iou[k], -1.0).argmax())] = True
                true_positives += 1
    return {"top_iou": sum(top_iou) / len(top_iou), "top_hit": sum(top_hit) / len(top_hit),
            "precision": true_positives / predicted if predicted else float("nan"),
            "recall": true_positives / actual if actual else float("nan")}
