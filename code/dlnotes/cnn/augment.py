"""Image augmentation: a real photo for torchvision's transforms, and fast augmentation of tensor batches.

The book keeps data sets as tensors (see :mod:`dlnotes.data`), so training-time augmentation
here works on a whole minibatch ``(B, C, H, W)`` at once with tensor ops: one random flip mask,
one random offset pair per image, one gather. :class:`AugmentedLoader` wraps a training loader
and augments every batch it yields; test loaders stay untouched.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dlnotes import download

PHOTOS = ("sklearn-china", "sklearn-flower", "cat1", "catdog", "banana")
REGISTRY_PHOTOS = ("cat1", "catdog", "banana")  # d2l's photos, through the download registry


def load_photo(name: str, *, max_side: int | None = None, square: bool = False) -> Tensor:
    """A real colour photo as a float tensor (3, H, W) in [0, 1].

    ``sklearn-china`` / ``sklearn-flower`` ship inside scikit-learn (offline); ``cat1`` (a cat),
    ``catdog`` (a dog and a cat) and ``banana`` (bananas on a bear) are d2l's photos, fetched
    through the download registry. ``square`` keeps the central square;
    ``max_side`` then shrinks the photo (keeping its aspect ratio) so that figures stay light.
    """
    if name.startswith("sklearn-") and name in PHOTOS:
        from sklearn.datasets import load_sample_image

        array = load_sample_image(name.removeprefix("sklearn-") + ".jpg")  # (H, W, 3) uint8
    elif name in REGISTRY_PHOTOS:
        from PIL import Image

        with Image.open(download.fetch(name)) as img:
            array = np.asarray(img.convert("RGB"))  # (H, W, 3) uint8
    else:
        raise ValueError(f"unknown photo {name!r}; known: {', '.join(PHOTOS)}")
    image = torch.from_numpy(array.copy()).permute(2, 0, 1).float() / 255  # (3, H, W)
    if square:
        H, W = image.shape[1:]
        side = min(H, W)
        top, left = (H - side) // 2, (W - side) // 2
        image = image[:, top:top + side, left:left + side]  # (3, side, side)
    if max_side is not None and max(image.shape[1:]) > max_side:
        factor = max_side / max(image.shape[1:])
        size = [round(s * factor) for s in image.shape[1:]]
        image = F.interpolate(image[None], size=size, mode="bilinear", antialias=True,
                              align_corners=False)[0].clamp(0, 1)
    return image


def apply_n(image: Tensor, augment: Callable[[Tensor], Tensor], *, n: int) -> Tensor:
    """``n`` independent draws of a random transform on one image, stacked to (n, C, H', W')."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    return torch.stack([augment(image) for _ in range(n)])


def _check_batch(X: Tensor) -> None:
    if X.ndim != 4:
        raise ValueError(f"expected a batch of images (B, C, H, W), got shape {tuple(X.shape)}")


def random_flip(X: Tensor, *, generator: torch.Generator | None = None, p: float = 0.5) -> Tensor:
    """Mirror each image left-right with probability ``p`` (an independent coin per image)."""
    _check_batch(X)
    if not 0 <= p <= 1:
        raise ValueError(f"p must lie in [0, 1], got {p}")
    flip = torch.rand(len(X), generator=generator) < p  # (B,) drawn on the CPU: same numbers on any device
    return torch.where(flip.to(X.device)[:, None, None, None], X.flip(-1), X)


def crop_at(X: Tensor, *, top: Tensor, left: Tensor, padding: int, fill: float = 0.0) -> Tensor:
    """Pad each image by ``padding`` on every side, then cut an H x W window at (top[i], left[i]).

    ``top`` and ``left`` (B,) lie in [0, 2 * padding]; ``top = left = padding`` returns the image
    unchanged, any other value shifts it by ``padding - top`` rows and ``padding - left`` columns.
    """
    _check_batch(X)
    B, C, H, W = X.shape
    if padding < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    if top.shape != (B,) or left.shape != (B,):
        raise ValueError(f"top and left need one offset per image, shape ({B},)")
    if (top.min() < 0 or left.min() < 0 or top.max() > 2 * padding or left.max() > 2 * padding):
        raise ValueError(f"offsets must lie in [0, 2 * padding] = [0, {2 * padding}]")
    padded = F.pad(X, (padding,) * 4, value=fill)  # (B, C, H + 2p, W + 2p)
    rows = (top.to(X.device)[:, None] + torch.arange(H, device=X.device))  # (B, H): rows each image keeps
    cols = (left.to(X.device)[:, None] + torch.arange(W, device=X.device))  # (B, W)
    batch = torch.arange(B, device=X.device)[:, None, None]  # (B, 1, 1)
    # advanced indexing on the two spatial axes; the channel axis rides along as a slice
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]  # (B, H, W, C)
    return out.permute(0, 3, 1, 2)  # (B, C, H, W)


def random_crop(X: Tensor, *, padding: int, generator: torch.Generator | None = None,
                fill: float = 0.0) -> Tensor:
    """Pad by ``padding`` and cut a random H x W window per image: a random shift of up to ``padding``."""
    _check_batch(X)
    top = torch.randint(0, 2 * padding + 1, (len(X),), generator=generator)  # (B,)
    left = torch.randint(0, 2 * padding + 1, (len(X),), generator=generator)  # (B,)
    return crop_at(X, top=top, left=left, padding=padding, fill=fill)


def rotate_scale(X: Tensor, *, degrees: Tensor, scale: Tensor) -> Tensor:
    """Rotate image i by ``degrees[i]`` (counter-clockwise) and zoom it by ``scale[i]`` about its centre.

    One ``affine_grid`` + ``grid_sample`` for the whole batch (bilinear, zeros outside). A zero
    angle and unit scale give back the image.
    """
    _check_batch(X)
    B = len(X)
    if degrees.shape != (B,) or scale.shape != (B,):
        raise ValueError(f"degrees and scale need one value per image, shape ({B},)")
    if (scale <= 0).any():
        raise ValueError("scale must be positive")
    theta = degrees.to(X.device, X.dtype) * math.pi / 180
    s = scale.to(X.device, X.dtype)
    cos, sin = torch.cos(theta) / s, torch.sin(theta) / s  # the grid maps output to input: inverse transform
    A = torch.stack([torch.stack([cos, -sin, torch.zeros_like(s)], dim=1),
                     torch.stack([sin, cos, torch.zeros_like(s)], dim=1)], dim=1)  # (B, 2, 3)
    grid = F.affine_grid(A, list(X.shape), align_corners=False)  # (B, H, W, 2)
    return F.grid_sample(X, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def augment_batch(X: Tensor, *, generator: torch.Generator | None = None, flip_p: float = 0.5,
                  padding: int = 4, max_degrees: float = 0.0, scale_range: tuple[float, float] = (1.0, 1.0),
                  fill: float = 0.0) -> Tensor:
    """Random flips, then random rotation/zoom, then random padded crops, for a whole batch at once.

    Every image gets its own coin, angle, zoom and offset. ``flip_p=0`` switches flips off (as
    digits need: a mirrored 2 is not a 2). The output stays in [0, 1] when the input does.
    """
    _check_batch(X)
    if max_degrees < 0 or not 0 < scale_range[0] <= scale_range[1]:
        raise ValueError(f"need max_degrees >= 0 and 0 < scale_range[0] <= scale_range[1], "
                         f"got {max_degrees} and {scale_range}")
    out = random_flip(X, generator=generator, p=flip_p) if flip_p > 0 else X
    if max_degrees > 0 or scale_range != (1.0, 1.0):
        B = len(X)
        degrees = (torch.rand(B, generator=generator) * 2 - 1) * max_degrees  # (B,) uniform in ±max
        lo, hi = scale_range
        scale = lo + torch.rand(B, generator=generator) * (hi - lo)  # (B,)
        out = rotate_scale(out, degrees=degrees, scale=scale)
    if padding > 0:
        out = random_crop(out, padding=padding, generator=generator, fill=fill)
    return out


class AugmentedLoader:
    """A training loader whose every batch ``(X, y)`` comes out as ``(augment(X), y)``.

    Wraps any iterable of batches (e.g. :class:`dlnotes.data.TensorLoader`); fresh random
    versions are drawn each epoch, so the network never sees exactly the same batch twice.
    """

    def __init__(self, loader: Iterable, *, augment: Callable[[Tensor], Tensor]):
        self.loader, self.augment = loader, augment

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for X, *rest in self.loader:
            with torch.no_grad():  # augmentation is data preparation, not part of the model
                X = self.augment(X)
            yield (X, *rest)


def small_cnn(*, num_classes: int, in_channels: int = 1, width: int = 16) -> nn.Sequential:
    """A small CNN for 28 x 28 images: two conv blocks as the backbone, one linear layer as the head.

    ``model[:-1]`` is the backbone (it ends with a flat vector of ``2 * width * 7 * 7`` conv
    features), ``model[-1]`` the head; the fine-tuning chapter uses that split.
    """
    c1, c2 = width, 2 * width
    return nn.Sequential(
        nn.Conv2d(in_channels, c1, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, c1, 14, 14)
        nn.Conv2d(c1, c2, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, c2, 7, 7)
        nn.Flatten(),  # (B, c2 * 49): the features a head reads
        nn.Linear(c2 * 7 * 7, num_classes),  # (B, num_classes)
    )
