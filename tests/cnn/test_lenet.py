"""LeNet: shapes, parameter count by hand, failure-mode helpers, a tiny overfit, bad arguments."""

import pytest
import torch
from torch import nn

from dlnotes import train
from dlnotes.cnn import conv, lenet
from dlnotes.data import TensorData, TensorLoader


@pytest.mark.parametrize("activation,pool", [("sigmoid", "avg"), ("relu", "max")])
def test_output_and_layer_shapes(activation, pool):
    torch.manual_seed(0)
    net = lenet.lenet(activation=activation, pool=pool)
    X = torch.rand(3, 1, 28, 28)
    assert net(X).shape == (3, 10)
    rows = lenet.layer_table(net, X)
    shapes = [r["output shape"] for r in rows if r["layer"] in ("Conv2d", "AvgPool2d", "MaxPool2d", "Flatten", "Linear")]
    assert shapes == [(3, 6, 28, 28), (3, 6, 14, 14), (3, 16, 10, 10), (3, 16, 5, 5), (3, 400),
                      (3, 120), (3, 84), (3, 10)]
    # the same sizes from the output-size formula
    n = conv.conv_output_size(28, kernel_size=5, padding=2)
    n = conv.conv_output_size(n, kernel_size=2, stride=2)
    n = conv.conv_output_size(n, kernel_size=5)
    assert conv.conv_output_size(n, kernel_size=2, stride=2) == 5


def test_parameter_count_matches_the_hand_formula():
    net = lenet.lenet()
    by_hand = (6 * (5 * 5 * 1 + 1) + 16 * (5 * 5 * 6 + 1) + 120 * (400 + 1) + 84 * (120 + 1) + 10 * (84 + 1))
    assert lenet.lenet_num_params() == by_hand == 61_706
    assert sum(p.numel() for p in net.parameters()) == by_hand
    assert sum(r["parameters"] for r in lenet.layer_table(net, torch.zeros(1, 1, 28, 28))) == by_hand
    assert lenet.lenet_num_params(in_channels=3, num_classes=5) == by_hand + 6 * 25 * 2 - 5 * 85


def test_dropout_layers_only_when_asked_and_only_active_in_train_mode():
    assert not any(isinstance(m, nn.Dropout) for m in lenet.lenet())
    torch.manual_seed(0)
    net = lenet.lenet(activation="relu", dropout=0.5)
    assert sum(isinstance(m, nn.Dropout) for m in net) == 2
    X = torch.rand(8, 1, 28, 28)
    net.eval()
    assert torch.equal(net(X), net(X))  # eval: deterministic
    net.train()
    assert not torch.equal(net(X), net(X))  # train: fresh masks each call


def test_forgot_eval_keeps_dropout_on_during_evaluate():
    torch.manual_seed(0)
    net = lenet.lenet(activation="relu", dropout=0.5)
    wrapped = lenet.ForgotEval(net)
    wrapped.eval()
    assert net.training and all(m.training for m in net.modules())
    X, y = torch.rand(64, 1, 28, 28), torch.randint(0, 10, (64,))
    loader = TensorLoader(X, y, batch_size=64)
    a = train.evaluate(model=wrapped, loader=loader, loss_fn=nn.CrossEntropyLoss())["loss"]
    b = train.evaluate(model=wrapped, loader=loader, loss_fn=nn.CrossEntropyLoss())["loss"]
    c = train.evaluate(model=net, loader=loader, loss_fn=nn.CrossEntropyLoss())["loss"]
    d = train.evaluate(model=net, loader=loader, loss_fn=nn.CrossEntropyLoss())["loss"]
    assert a != b and c == d  # train-mode evaluation is random, eval-mode is not


def test_label_mismatches_score_a_perfect_predictor_as_specified():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 10, (5000,), generator=g)
    perfect = nn.functional.one_hot(y, 10).float()  # logits that always pick the true class
    acc = lambda labels: train.accuracy(perfect, labels).item()  # noqa: E731
    assert acc(y) == 1.0
    assert acc(lenet.shift_classes(y, num_classes=10)) == 0.0  # every label one class off
    assert acc(lenet.permute_classes(y, permutation=lenet.random_derangement(10, generator=g))) == 0.0
    assert abs(acc(lenet.shift_rows(y)) - 0.1) < 0.02  # rows off by one: chance, not below
    assert abs(acc(lenet.shuffle_labels(y, generator=g)) - 0.1) < 0.02
    sorted_y = torch.sort(y).values  # a file sorted by class: a one-row shift barely hurts
    assert train.accuracy(nn.functional.one_hot(sorted_y, 10).float(), lenet.shift_rows(sorted_y)).item() > 0.99
    assert torch.equal(torch.sort(lenet.shuffle_labels(y, generator=g)).values, sorted_y)  # same labels


def test_derangement_has_no_fixed_point():
    g = torch.Generator().manual_seed(1)
    for k in (2, 3, 10, 176):
        p = lenet.random_derangement(k, generator=g)
        assert torch.equal(torch.sort(p).values, torch.arange(k))
        assert not (p == torch.arange(k)).any()


def test_failure_setups_change_exactly_one_thing():
    g = torch.Generator().manual_seed(0)
    X, y = torch.rand(50, 1, 28, 28), torch.arange(50) % 10
    data = TensorData("tiny", X, y, X[:10], y[:10], tuple("0123456789"))
    base = lenet.failure_setup("correct", data, optimizer="sgd", lr=0.1)
    assert base.X_train is X and base.lr == 0.1 and base.dropout == 0 and not base.forgot_eval
    assert torch.equal(lenet.failure_setup("pixels 0-255", data, optimizer="sgd", lr=0.1).X_test, X[:10] * 255)
    assert lenet.failure_setup("lr too large", data, optimizer="sgd", lr=0.1, lr_factor=10).lr == pytest.approx(1.0)
    assert lenet.failure_setup("lr too small", data, optimizer="sgd", lr=0.1, lr_factor=10).lr == pytest.approx(0.01)
    shuffled = lenet.failure_setup("labels shuffled", data, optimizer="sgd", lr=0.1, generator=g)
    assert not torch.equal(shuffled.y_train, y) and torch.equal(shuffled.y_test, y[:10])
    shifted = lenet.failure_setup("classes shifted", data, optimizer="sgd", lr=0.1)
    assert torch.equal(shifted.y_train, (y + 1) % 10) and torch.equal(shifted.y_test, y[:10])
    forgot = lenet.failure_setup("eval forgotten", data, optimizer="sgd", lr=0.1, dropout=0.3)
    assert forgot.dropout == 0.3 and forgot.forgot_eval
    assert set(lenet.CAUSES) == {"correct", "pixels 0-255", "lr too large", "lr too small", "labels shuffled",
                                 "classes shifted", "eval forgotten"} == set(lenet.CAUSE_NAMES)


def test_unscaled_pixels_saturate_the_first_sigmoid_layer():
    torch.manual_seed(0)
    net = lenet.lenet()
    X = torch.rand(16, 1, 28, 28)
    scaled, raw = lenet.saturated_fraction(net, X), lenet.saturated_fraction(net, X * 255)
    assert len(scaled) == 4
    assert scaled[0] < 0.05 < 0.5 < raw[0]


def test_lenet_overfits_64_images():
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    X, y = torch.rand(64, 1, 28, 28, generator=g), torch.randint(0, 10, (64,), generator=g)
    net = lenet.lenet(activation="relu", pool="max")
    opt = lenet.make_optimizer(net.parameters(), name="adam", lr=0.01)
    loader = TensorLoader(X, y, batch_size=64)  # one full batch per step: 40 steps (it needs about 20)
    hist = train.fit(model=net, train_loader=loader, loss_fn=nn.CrossEntropyLoss(), optimizer=opt,
                     num_epochs=40, metric=train.accuracy, progress=False)
    assert hist["train_accuracy"][0] < 0.3
    assert train.evaluate(model=net, loader=loader, metric=train.accuracy)["accuracy"] == 1.0


def test_class_order_of_a_set_depends_on_the_hash_seed():
    names = [f"species_{i}" for i in range(20)]
    a = lenet.class_order_in_fresh_process(names, hash_seed=1)
    b = lenet.class_order_in_fresh_process(names, hash_seed=2)
    assert sorted(a) == sorted(b) == sorted(names)
    assert a != b
    assert a == lenet.class_order_in_fresh_process(names, hash_seed=1)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="activation"):
        lenet.lenet(activation="tanh")
    with pytest.raises(ValueError, match="pool"):
        lenet.lenet(pool="min")
    with pytest.raises(ValueError, match="dropout"):
        lenet.lenet(dropout=1.0)
    with pytest.raises(ValueError, match="optimizer"):
        lenet.make_optimizer(lenet.lenet().parameters(), name="rmsprop", lr=0.1)
    with pytest.raises(ValueError, match="lr"):
        lenet.make_optimizer(lenet.lenet().parameters(), name="sgd", lr=0.0)
    with pytest.raises(ValueError, match="permutation"):
        lenet.permute_classes(torch.tensor([0, 1]), permutation=torch.tensor([0, 0, 1]))
    with pytest.raises(ValueError, match="labels"):
        lenet.shift_classes(torch.tensor([0, 10]), num_classes=10)
    with pytest.raises(ValueError, match="cause"):
        data = TensorData("t", torch.zeros(2, 1, 28, 28), torch.zeros(2, dtype=torch.long),
                          torch.zeros(2, 1, 28, 28), torch.zeros(2, dtype=torch.long), ("a", "b"))
        lenet.failure_setup("typo", data, optimizer="sgd", lr=0.1)
    with pytest.raises(ValueError, match="derangement"):
        lenet.random_derangement(1)
    with pytest.raises(ValueError, match="eps"):
        lenet.saturated_fraction(lenet.lenet(), torch.zeros(1, 1, 28, 28), eps=0.5)
