"""Tests of dlnotes.booktools.loopbench: the loops compared do the same work, and the timing is sound."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from dlnotes import train
from dlnotes.booktools import loopbench
from dlnotes.data import TensorLoader


def test_bare_loop_does_what_the_package_loop_does():
    X, y = loopbench.synthetic_images(300, seed=1)
    torch.manual_seed(0)
    a = loopbench.make_model("mlp")
    b = copy.deepcopy(a)
    loss_fn = nn.CrossEntropyLoss()
    stats = train.train_epoch(model=a, loader=TensorLoader(X, y, batch_size=64), loss_fn=loss_fn,
                              optimizer=torch.optim.SGD(a.parameters(), lr=0.1), metric=train.accuracy)
    loss, acc = loopbench.bare_epoch(model=b, X=X, y=y, batch_size=64, loss_fn=loss_fn,
                                     optimizer=torch.optim.SGD(b.parameters(), lr=0.1))
    assert loss == pytest.approx(stats["loss"], rel=1e-5)
    assert acc == pytest.approx(stats["accuracy"], abs=1e-6)
    for p, q in zip(a.parameters(), b.parameters()):  # the same steps, the same weights
        torch.testing.assert_close(p, q)


def test_bare_loop_without_recording_still_trains():
    X, y = loopbench.synthetic_images(256, seed=2)
    y = (X.mean(dim=(1, 2, 3)) > 0.5).long()  # learnable labels
    torch.manual_seed(0)
    model = loopbench.make_model("mlp")
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    loss_fn = nn.CrossEntropyLoss()
    before = loss_fn(model(X), y).item()
    for _ in range(20):
        loss, acc = loopbench.bare_epoch(model=model, X=X, y=y, batch_size=32, loss_fn=loss_fn, optimizer=opt,
                                         record=False)
    assert loss != loss and acc != acc  # NaN: nothing recorded
    assert loss_fn(model(X), y).item() < 0.5 * before


def test_ratio_is_the_median_of_the_turns_ratios():
    out = loopbench._throughputs({"a": [1.0, 2.0, 4.0], "b": [2.0, 2.0, 2.0]}, first="a", second="b", examples=100)
    assert out["a_examples_per_s"] == pytest.approx(50.0) and out["b_examples_per_s"] == pytest.approx(50.0)
    assert out["ratio"] == pytest.approx(1.0) and out["turns"] == 3  # median of 2, 1, 0.5
    out = loopbench._throughputs({"a": [1.0, 1.0, 1.0], "b": [1.1, 1.2, 9.0]}, first="a", second="b", examples=1)
    assert out["ratio"] == pytest.approx(1.2)  # one disturbed turn does not move it


def test_per_sample_dataset_gives_the_same_batches_as_tensor_slices():
    X, y = loopbench.synthetic_images(70, seed=3)
    loader = torch.utils.data.DataLoader(loopbench.PerSampleDataset(X, y), batch_size=32)
    pairs = list(zip(loader, TensorLoader(X, y, batch_size=32)))
    assert len(pairs) == 3
    for (xa, ya), (xb, yb) in pairs:
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_ratios_and_throughput_on_tiny_runs():
    r = loopbench.loop_ratio(model="mlp", num_examples=512, batch_size=128, repeats=3)
    assert r["package_examples_per_s"] > 0 and r["bare_examples_per_s"] > 0 and 0.1 < r["ratio"] < 10
    r = loopbench.loader_ratio(model="mlp", num_examples=512, batch_size=128, repeats=3)
    assert set(r) == {"tensor_examples_per_s", "dataloader_examples_per_s", "ratio", "turns"} and r["ratio"] > 0
    assert loopbench.images_per_second(model="lenet", size=28, num_examples=64, batch_size=32, repeats=1) > 0


@pytest.mark.parametrize("name, size", [("mlp", 28), ("lenet", 28), ("resnet18", 32)])
def test_models_classify_into_ten(name, size):
    X, _ = loopbench.synthetic_images(2, size=size)
    assert loopbench.make_model(name).eval()(X).shape == (2, 10)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="unknown model"):
        loopbench.make_model("transformer")
    with pytest.raises(ValueError, match="at least one example"):
        loopbench.synthetic_images(0)
    a, b = loopbench.synthetic_images(5, seed=4), loopbench.synthetic_images(5, seed=4)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
