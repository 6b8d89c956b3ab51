"""A generated detection data set: d2l's banana pasted onto crops of other photos, as d2l made its own.

d2l's banana set is 1,000 images of 256 x 256 with one banana each, but only its demo photo
(bananas on a bear) is reachable here. :func:`banana_sprite` cuts the largest banana out of
that photo by its colour; :func:`banana_set` pastes it, scaled, stretched and mirrored at
random, onto random crops of four other photos (two that ship with scikit-learn and d2l's cat
and cat-and-dog photos). The boxes are known exactly because we put the bananas there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from dlnotes.applications import boxes
from dlnotes.cnn import augment

BACKGROUNDS = ("sklearn-china", "sklearn-flower", "cat1", "catdog")


def _banana_regions(photo: Tensor, *, min_pixels: int) -> list[np.ndarray]:
    """Masks (H, W) of the banana-coloured regions of a photo (3, H, W), the largest first."""
    from scipy import ndimage

    r, g, b = photo
    yellow = ((r > 0.59) & (g > 0.43) & (r - b > 0.27)).numpy()  # (H, W): bright, little blue
    parts, count = ndimage.label(yellow)
    sizes = ndimage.sum(yellow, parts, index=range(1, count + 1))
    order = [1 + int(i) for i in np.argsort(-np.asarray(sizes)) if sizes[i] >= min_pixels]
    return [ndimage.binary_fill_holes(ndimage.binary_closing(parts == k, iterations=2)) for k in order]


def _bounds(mask: np.ndarray) -> tuple[slice, slice]:
    rows, cols = np.nonzero(mask)
    return slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1)


def banana_sprite() -> Tensor:
    """The largest banana of d2l's demo photo with its outline: (4, h, w), RGB and alpha in [0, 1]."""
    photo = augment.load_photo("banana")  # (3, 256, 256)
    regions = _banana_regions(photo, min_pixels=200)
    if not regions:
        raise RuntimeError("no banana-coloured region in the banana photo: is it the right file?")
    rows, cols = _bounds(regions[0])
    alpha = torch.from_numpy(regions[0][rows, cols].astype(np.float32))[None]  # (1, h, w)
    return torch.cat([photo[:, rows, cols], alpha])  # (4, h, w)


def photo_bananas(*, size: int | None = None, min_pixels: int = 200) -> tuple[Tensor, Tensor]:
    """d2l's demo photo (3, 256, 256), or scaled to (3, size, size), and the boxes of its bananas (G, 5).

    The bananas are found by their colour in the full photo. The boxes are relative to the photo's
    side, so scaling leaves them as they are; the first is the banana that :func:`banana_sprite` cuts out.
    """
    photo = augment.load_photo("banana")
    H, W = photo.shape[1:]
    rows = []
    for mask in _banana_regions(photo, min_pixels=min_pixels):
        r, c = _bounds(mask)
        rows.append([0.0, c.start / W, r.start / H, c.stop / W, r.stop / H])
    if size is not None:
        photo = F.interpolate(photo[None], size=(size, size), mode="bilinear", antialias=True,
                              align_corners=False)[0].clamp(0, 1)
    return photo, torch.tensor(rows, dtype=torch.float32).reshape(-1, 5)


@dataclass(frozen=True)
class DetectionData:
    """Images (N, 3, S, S) in [0, 1] and their boxes (N, G, 5): class, x1, y1, x2, y2 relative to S."""

    X_train: Tensor
    y_train: Tensor
    X_test: Tensor
    y_test: Tensor
    classes: tuple[str, ...]

    def __repr__(self) -> str:
        return (f"DetectionData(train {tuple(self.X_train.shape)}, test {tuple(self.X_test.shape)}, "
                f"classes {self.classes})")


def _paste(background: Tensor, sprite: Tensor, *, top: int, left: int) -> Tensor:
    """Alpha-blend an RGBA sprite (4, h, w) onto a copy of an RGB image (3, S, S) at (top, left)."""
    out = background.clone()
    h, w = sprite.shape[1:]
    alpha = sprite[3:]
    region = out[:, top:top + h, left:left + w]
    out[:, top:top + h, left:left + w] = alpha * sprite[:3] + (1 - alpha) * region
    return out


def banana_images(num: int, *, size: int, generator: torch.Generator, max_bananas: int = 1,
                  scale: tuple[float, float] = (0.2, 0.6)) -> tuple[Tensor, Tensor]:
    """``num`` images (num, 3, size, size) with 1 to ``max_bananas`` bananas each; boxes (num, max_bananas, 5).

    A banana's longer side is a random fraction ``scale`` of the image side; its aspect is
    stretched by up to 25 % either way, it is mirrored half of the time, and its brightness
    varies by 20 %. Bananas of one image overlap by an IoU of at most 0.1. Images with fewer
    bananas pad their boxes with rows of class -1.
    """
    if num < 1 or size < 16 or max_bananas < 1 or not 0 < scale[0] <= scale[1] < 1:
        raise ValueError(f"need num >= 1, size >= 16, max_bananas >= 1 and 0 < scale[0] <= scale[1] < 1; "
                         f"got {num}, {size}, {max_bananas}, {scale}")
    sprite = banana_sprite()
    photos = [augment.load_photo(name, max_side=4 * size) for name in BACKGROUNDS]

    def uniform(low: float, high: float) -> float:
        return low + (high - low) * torch.rand((), generator=generator).item()

    def integer(high: int) -> int:  # 0 .. high - 1
        return int(torch.randint(high, (), generator=generator))

    def banana() -> Tensor:  # (4, h, w): scaled, stretched, maybe mirrored, brightened or darkened
        longest, stretch = uniform(*scale) * size, uniform(0.8, 1.25)
        h, w = sprite.shape[1] * stretch, sprite.shape[2] / stretch
        factor = longest / max(h, w)
        out = F.interpolate(sprite[None], size=(max(4, round(h * factor)), max(4, round(w * factor))),
                            mode="bilinear", antialias=True, align_corners=False)[0].clamp(0, 1)
        out = out.flip(-1) if integer(2) else out
        out[:3] = (out[:3] * uniform(0.8, 1.2)).clamp(0, 1)
        return out

    images, truth = [], torch.full((num, max_bananas, 5), -1.0)
    for i in range(num):
        photo = photos[integer(len(photos))]
        side = int(uniform(0.35, 1.0) * min(photo.shape[1:]))
        top, left = integer(photo.shape[1] - side + 1), integer(photo.shape[2] - side + 1)
        crop = photo[None, :, top:top + side, left:left + side]
        image = F.interpolate(crop, size=(size, size), mode="bilinear", antialias=True,
                              align_corners=False)[0].clamp(0, 1)  # (3, size, size)
        placed = 0
        for _ in range(1 + integer(max_bananas)):
            for _attempt in range(10):  # find a place that does not cover an earlier banana
                b = banana()
                h, w = b.shape[1:]
                y, x = integer(size - h + 1), integer(size - w + 1)
                box = torch.tensor([[x / size, y / size, (x + w) / size, (y + h) / size]])
                if placed == 0 or boxes.box_iou(box, truth[i, :placed, 1:]).max() <= 0.1:
                    image = _paste(image, b, top=y, left=x)
                    truth[i, placed] = torch.cat([torch.zeros(1), box[0]])
                    placed += 1
                    break
        images.append(image)
    return torch.stack(images), truth


def banana_set(*, num_train: int, num_test: int, size: int, max_bananas: int = 1, seed: int = 0) -> DetectionData:
    """A training and a test set of banana images (see :func:`banana_images`), from one seed."""
    generator = torch.Generator().manual_seed(seed)
    X_train, y_train = banana_images(num_train, size=size, max_bananas=max_bananas, generator=generator)
    X_test, y_test = banana_images(num_test, size=size, max_bananas=max_bananas, generator=generator)
    return DetectionData(X_train, y_train, X_test, y_test, classes=("banana",))
