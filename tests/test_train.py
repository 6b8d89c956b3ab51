"""Tests of dlnotes.train: accuracy, train_epoch, evaluate, fit and History."""

from __future__ import annotations

import math
import re

import pytest
import torch
from torch import nn

from dlnotes.data import TensorLoader
from dlnotes.train import History, accuracy, evaluate, fit, train_epoch


def separable_data(n: int, *, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` points in the plane, class 1 above the line x0 + x1 = 0, at least 0.5 away from it."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 2, generator=g)
    y = (X.sum(dim=1) > 0).long()
    normal = torch.tensor([1.0, 1.0]) / math.sqrt(2)
    X = X + (2 * y - 1).float().unsqueeze(1) * 0.5 * normal  # push each class away from the line
    return X, y


def regression_data(n: int, *, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 3, generator=g)
    y = X @ torch.tensor([[2.0], [-1.0], [0.5]]) + 0.3 + 0.01 * torch.randn(n, 1, generator=g)
    return X, y


class SGDByHand:
    """An optimizer with nothing but zero_grad() and step()."""

    def __init__(self, params, lr: float):
        self.params, self.lr, self.steps = list(params), lr, 0

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        for p in self.params:
            p -= self.lr * p.grad


class ModeRecorder(nn.Module):
    """A linear layer that records ``self.training`` at every forward pass."""

    def __init__(self, d_in: int, d_out: int):
        super().__init__()
        self.linear = nn.Linear(d_in, d_out)
        self.modes: list[bool] = []

    def forward(self, X):
        self.modes.append(self.training)
        return self.linear(X)


# ---------------------------------------------------------------- accuracy


def test_accuracy_hand_computed():
    y_hat = torch.tensor([[0.1, 0.9, 0.0],   # argmax 1, label 1: right
                          [0.8, 0.1, 0.1],   # argmax 0, label 1: wrong
                          [0.2, 0.3, 0.5],   # argmax 2, label 2: right
                          [0.6, 0.4, 0.0],   # argmax 0, label 0: right
                          [0.0, 0.0, 1.0]])  # argmax 2, label 0: wrong
    y = torch.tensor([1, 1, 2, 0, 0])
    result = accuracy(y_hat, y)
    assert result.ndim == 0
    assert result.item() == pytest.approx(3 / 5)
    assert accuracy(y_hat, y_hat.argmax(dim=1)).item() == 1.0
    assert accuracy(y_hat, (y_hat.argmax(dim=1) + 1) % 3).item() == 0.0


@pytest.mark.parametrize("y_hat, y", [
    (torch.zeros(4), torch.zeros(4, dtype=torch.long)),               # y_hat 1-D
    (torch.zeros(4, 3), torch.zeros(4, 1, dtype=torch.long)),         # y 2-D
    (torch.zeros(4, 3), torch.zeros(5, dtype=torch.long)),            # lengths differ
    (torch.zeros(2, 4, 3), torch.zeros(2, dtype=torch.long)),         # y_hat 3-D
])
def test_accuracy_rejects_bad_shapes(y_hat, y):
    with pytest.raises(ValueError, match=r"accuracy expects y_hat \(B, K\) and y \(B,\)"):
        accuracy(y_hat, y)


# ---------------------------------------------------------------- train_epoch


def test_train_epoch_reduces_the_loss():
    torch.manual_seed(0)
    X, y = regression_data(64, seed=1)
    model = nn.Linear(3, 1)
    loss_fn = nn.MSELoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    loader = TensorLoader(X, y, batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        before = loss_fn(model(X), y).item()
    losses = [train_epoch(model=model, loader=loader, loss_fn=loss_fn, optimizer=optimizer)["loss"]
              for _ in range(10)]
    with torch.no_grad():
        after = loss_fn(model(X), y).item()
    assert after < 0.05 * before
    assert losses[-1] < 0.1 * losses[0]
    assert all(b < a for a, b in zip(losses, losses[1:]))


def test_train_epoch_returns_example_weighted_means():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(3)
    X = torch.randn(10, 4, generator=g)
    y = torch.randint(0, 3, (10,), generator=g)
    X[8:] *= 20  # the last, smaller batch has a far larger loss: a plain mean of batch means is off
    model = nn.Linear(4, 3)
    loss_fn = nn.CrossEntropyLoss()
    loader = TensorLoader(X, y, batch_size=4)  # batches of 4, 4, 2
    assert [len(b[1]) for b in loader] == [4, 4, 2]
    weights_before = {k: v.clone() for k, v in model.state_dict().items()}

    stats = train_epoch(model=model, loader=loader, loss_fn=loss_fn, metric=accuracy,
                        optimizer=torch.optim.SGD(model.parameters(), lr=0.0))

    for k, v in model.state_dict().items():  # lr = 0: the weights did not move
        assert torch.equal(v, weights_before[k])
    with torch.no_grad():
        batch_losses = [(loss_fn(model(Xb), yb).item(), len(yb)) for Xb, yb in loader]
        whole_loss = loss_fn(model(X), y).item()
        whole_accuracy = accuracy(model(X), y).item()
    weighted = sum(loss * n for loss, n in batch_losses) / sum(n for _, n in batch_losses)
    unweighted = sum(loss for loss, _ in batch_losses) / len(batch_losses)
    assert stats["examples"] == 10
    assert stats["loss"] == pytest.approx(weighted, rel=1e-5)
    assert stats["loss"] == pytest.approx(whole_loss, rel=1e-5)
    assert abs(unweighted - weighted) > 0.1 * weighted  # the check above can tell the two apart
    assert stats["accuracy"] == pytest.approx(whole_accuracy, abs=1e-6)
    assert stats["seconds"] >= 0


def test_train_epoch_sets_train_mode():
    torch.manual_seed(0)
    X, y = separable_data(12, seed=0)
    model = ModeRecorder(2, 2)
    model.eval()
    train_epoch(model=model, loader=TensorLoader(X, y, batch_size=5), loss_fn=nn.CrossEntropyLoss(),
                optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    assert model.modes == [True, True, True]
    assert model.training and model.linear.training


def test_train_epoch_rejects_non_scalar_loss():
    torch.manual_seed(0)
    X, y = separable_data(8, seed=0)
    model = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="loss_fn must return a scalar"):
        train_epoch(model=model, loader=TensorLoader(X, y, batch_size=4),
                    loss_fn=nn.CrossEntropyLoss(reduction="none"),
                    optimizer=torch.optim.SGD(model.parameters(), lr=0.1))


def test_train_epoch_and_evaluate_reject_empty_loaders():
    model = nn.Linear(2, 2)
    empty = TensorLoader(torch.empty(0, 2), torch.empty(0, dtype=torch.long), batch_size=4)
    assert list(empty) == []
    with pytest.raises(ValueError, match="training loader yielded no examples"):
        train_epoch(model=model, loader=empty, loss_fn=nn.CrossEntropyLoss(),
                    optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    with pytest.raises(ValueError, match="evaluation loader yielded no examples"):
        evaluate(model=model, loader=empty, loss_fn=nn.CrossEntropyLoss())


# ---------------------------------------------------------------- evaluate


def dropout_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Dropout(p=0.5), nn.Linear(32, 3))


def test_evaluate_uses_eval_mode():
    model = dropout_model()
    g = torch.Generator().manual_seed(5)
    X, y = torch.randn(20, 4, generator=g), torch.randint(0, 3, (20,), generator=g)
    loader = TensorLoader(X, y, batch_size=6)
    model.train()
    with torch.no_grad():  # in train mode dropout makes two passes differ: the test below means something
        assert not torch.equal(model(X), model(X))

    first = evaluate(model=model, loader=loader, loss_fn=nn.CrossEntropyLoss(), metric=accuracy)
    second = evaluate(model=model, loader=loader, loss_fn=nn.CrossEntropyLoss(), metric=accuracy)

    assert first == second
    assert set(first) == {"examples", "loss", "accuracy"}
    assert first["examples"] == 20
    assert model.training is False
    assert not any(m.training for m in model.modules())
    with torch.no_grad():
        assert first["loss"] == pytest.approx(nn.CrossEntropyLoss()(model(X), y).item(), rel=1e-5)
        assert first["accuracy"] == pytest.approx(accuracy(model(X), y).item(), abs=1e-6)


def test_evaluate_changes_no_parameters_and_builds_no_graph():
    model = dropout_model()
    g = torch.Generator().manual_seed(6)
    X, y = torch.randn(20, 4, generator=g), torch.randint(0, 3, (20,), generator=g)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    seen_requires_grad = []

    def loss_fn(y_hat, y):
        seen_requires_grad.append(y_hat.requires_grad)
        return nn.functional.cross_entropy(y_hat, y)

    out = evaluate(model=model, loader=TensorLoader(X, y, batch_size=8), loss_fn=loss_fn)

    assert seen_requires_grad == [False, False, False]
    assert all(p.grad is None for p in model.parameters())
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    assert set(out) == {"examples", "loss"}


# ---------------------------------------------------------------- fit and History


def separable_loaders():
    X, y = separable_data(64, seed=0)
    train = TensorLoader(X[:48], y[:48], batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(1))
    test = TensorLoader(X[48:], y[48:], batch_size=8)
    return train, test


def test_fit_separates_a_separable_problem():
    torch.manual_seed(0)
    train, test = separable_loaders()
    model = nn.Linear(2, 2)
    history = fit(model=model, train_loader=train, test_loader=test, loss_fn=nn.CrossEntropyLoss(),
                  optimizer=torch.optim.SGD(model.parameters(), lr=0.5), num_epochs=5,
                  metric=accuracy, progress=False)

    assert list(history.metrics) == ["train_loss", "train_accuracy", "test_loss", "test_accuracy"]
    assert all(len(v) == 5 for v in history.metrics.values())
    assert history.num_epochs == 5
    assert history.examples == 5 * 48
    assert history.seconds > 0
    assert history.final("test_accuracy") == 1.0
    assert history.final("train_loss") == history["train_loss"][-1] < history["train_loss"][0]
    assert history["test_loss"][-1] < history["test_loss"][0]
    with pytest.raises(KeyError, match=re.escape(
            "no 'test_acc' in this history; it has train_loss, train_accuracy, test_loss, test_accuracy")):
        history["test_acc"]
    with pytest.raises(KeyError, match="no 'nope' in this history"):
        history.final("nope")


def test_fit_without_test_loader_or_metric_records_train_loss_only():
    torch.manual_seed(0)
    train, _ = separable_loaders()
    model = nn.Linear(2, 2)
    history = fit(model=model, train_loader=train, loss_fn=nn.CrossEntropyLoss(),
                  optimizer=torch.optim.SGD(model.parameters(), lr=0.5), num_epochs=3, progress=False)
    assert list(history.metrics) == ["train_loss"]
    assert len(history["train_loss"]) == 3


def test_fit_with_a_hand_written_optimizer():
    torch.manual_seed(0)
    train, test = separable_loaders()
    model = nn.Linear(2, 2)
    optimizer = SGDByHand(model.parameters(), lr=0.5)
    history = fit(model=model, train_loader=train, test_loader=test, loss_fn=nn.CrossEntropyLoss(),
                  optimizer=optimizer, num_epochs=5, metric=accuracy, progress=False)
    assert optimizer.steps == 5 * len(train)  # one step per batch
    assert history.final("test_accuracy") == 1.0
    assert history["train_loss"][-1] < history["train_loss"][0]


@pytest.mark.parametrize("num_epochs", [0, -1])
def test_fit_rejects_non_positive_epochs(num_epochs):
    train, _ = separable_loaders()
    model = nn.Linear(2, 2)
    with pytest.raises(ValueError, match=f"num_epochs must be at least 1, got {num_epochs}"):
        fit(model=model, train_loader=train, loss_fn=nn.CrossEntropyLoss(),
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1), num_epochs=num_epochs, progress=False)


def test_fit_rejects_non_scalar_loss():
    train, _ = separable_loaders()
    model = nn.Linear(2, 2)
    with pytest.raises(ValueError, match=r"loss_fn must return a scalar \(the batch mean\), got shape \(8,\)"):
        fit(model=model, train_loader=train, loss_fn=nn.CrossEntropyLoss(reduction="none"),
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1), num_epochs=1, progress=False)


def test_fit_rejects_empty_loaders():
    train, _ = separable_loaders()
    empty = TensorLoader(torch.empty(0, 2), torch.empty(0, dtype=torch.long), batch_size=4)
    model = nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="training loader yielded no examples"):
        fit(model=model, train_loader=empty, loss_fn=nn.CrossEntropyLoss(), optimizer=opt,
            num_epochs=1, progress=False)
    with pytest.raises(ValueError, match="evaluation loader yielded no examples"):
        fit(model=model, train_loader=train, test_loader=empty, loss_fn=nn.CrossEntropyLoss(),
            optimizer=opt, num_epochs=1, progress=False)


def test_fit_progress_prints_a_line_per_epoch_and_a_summary(capsys):
    torch.manual_seed(0)
    train, test = separable_loaders()
    model = nn.Linear(2, 2)
    history = fit(model=model, train_loader=train, test_loader=test, loss_fn=nn.CrossEntropyLoss(),
                  optimizer=torch.optim.SGD(model.parameters(), lr=0.5), num_epochs=3,
                  metric=accuracy, progress=True)
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert err == ""
    assert len(lines) == 3 + 1
    for epoch, line in enumerate(lines[:3], start=1):
        assert line.startswith(f"epoch {epoch}/3: train_loss ")
        assert "test_accuracy" in line and "examples/s" in line
    assert lines[-1] == history.summary()
    assert lines[-1].startswith("3 epochs: train_loss ")


def test_fit_without_progress_prints_nothing(capsys):
    torch.manual_seed(0)
    train, test = separable_loaders()
    model = nn.Linear(2, 2)
    fit(model=model, train_loader=train, test_loader=test, loss_fn=nn.CrossEntropyLoss(),
        optimizer=torch.optim.SGD(model.parameters(), lr=0.5), num_epochs=2, metric=accuracy,
        progress=False)
    assert capsys.readouterr() == ("", "")


def test_history_summary():
    history = History(metrics={"train_loss": [1.0, 0.25], "test_accuracy": [0.5, 0.875]},
                      seconds=2.0, examples=300)
    assert history.num_epochs == 2
    assert history.examples_per_second == 150.0
    assert history.summary() == "2 epochs: train_loss 0.25, test_accuracy 0.875; 150 examples/s, 2.0 s training"
    assert repr(history) == f"History({history.summary()})"
    empty = History()
    assert empty.num_epochs == 0
    assert math.isnan(empty.examples_per_second)
