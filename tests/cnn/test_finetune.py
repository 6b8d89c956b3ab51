"""Fine-tuning: freezing, head replacement, two learning rates, the three set-ups, the offline fallback."""

import urllib.error

import pytest
import torch
from torch import nn

from dlnotes.cnn import augment, finetune
from dlnotes.training import essentials


def tiny_net():
    torch.manual_seed(0)
    return augment.small_cnn(num_classes=5, width=4)


def snapshot(module):
    return [p.detach().clone() for p in module.parameters()]


def changed(before, module):
    return [not torch.equal(a, b) for a, b in zip(before, module.parameters())]


def test_freeze_stops_updates_while_the_head_moves():
    net = tiny_net()
    finetune.freeze(net[:-1])
    assert all(not p.requires_grad for p in net[:-1].parameters())
    assert all(p.requires_grad for p in net[-1].parameters())
    body, head = snapshot(net[:-1]), snapshot(net[-1])
    # hand *all* parameters to an optimizer with weight decay: frozen ones must still not move
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=0.1)
    for _ in range(2):
        loss = nn.functional.cross_entropy(net(torch.rand(8, 1, 28, 28)), torch.arange(8) % 5)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert not any(changed(body, net[:-1]))
    assert all(changed(head, net[-1]))
    assert essentials.count_parameters(net, trainable_only=True) == sum(p.numel() for p in net[-1].parameters())


def test_replace_head_on_sequential_and_on_torchvision_resnet():
    from torchvision.models import resnet18

    net = tiny_net()
    old = net[-1]
    head = finetune.replace_head(net, num_classes=3)
    assert net[-1] is head and head is not old and head.in_features == old.in_features
    assert net(torch.rand(2, 1, 28, 28)).shape == (2, 3)
    resnet = resnet18(weights=None)  # the architecture only: no download
    finetune.freeze(resnet)
    head = finetune.replace_head(resnet, num_classes=2)
    assert resnet.fc is head and head.weight.requires_grad
    assert essentials.count_parameters(resnet, trainable_only=True) == 512 * 2 + 2
    assert resnet(torch.rand(2, 3, 32, 32)).shape == (2, 2)
    with pytest.raises(ValueError, match="linear head"):
        finetune.replace_head(nn.Sequential(nn.Linear(3, 3), nn.ReLU()), num_classes=2)


def test_param_groups_have_two_learning_rates_and_split_the_parameters():
    net = tiny_net()
    groups = finetune.param_groups(net, net[-1], lr=0.01, head_lr_mult=10)
    assert [g["lr"] for g in groups] == [0.01, pytest.approx(0.1)]
    body_ids = {id(p) for p in groups[0]["params"]}
    head_ids = {id(p) for p in groups[1]["params"]}
    assert head_ids == {id(p) for p in net[-1].parameters()}
    assert not body_ids & head_ids
    assert body_ids | head_ids == {id(p) for p in net.parameters()}
    opt = torch.optim.SGD(groups, lr=123.0)  # the groups' own rates win over the default
    assert [g["lr"] for g in opt.param_groups] == [0.01, pytest.approx(0.1)]
    finetune.freeze(net[:-1])
    assert len(finetune.param_groups(net, net[-1], lr=0.01)) == 1  # frozen parameters are left out


def test_prepare_changes_only_what_each_method_should():
    pretrained = tiny_net()
    original = snapshot(pretrained)
    X, y = torch.rand(16, 1, 28, 28), torch.arange(16) % 3
    results = {}
    for method in finetune.METHODS:
        torch.manual_seed(1)
        net, opt = finetune.model_and_optimizer(method, pretrained=pretrained, num_classes=3, lr=1e-3, head_lr_mult=10)
        start = snapshot(net[:-1])
        if method == "scratch":
            assert all(changed(original[:len(start)], net[:-1]))  # re-initialised, not pre-trained
        else:
            assert not any(changed(original[:len(start)], net[:-1]))
        for _ in range(3):
            loss = nn.functional.cross_entropy(net(X), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        results[method] = changed(start, net[:-1])
        assert net(X).shape == (16, 3)
    assert not any(results["linear probe"])  # the frozen backbone never moved
    assert all(results["fine-tune"]) and all(results["scratch"])
    assert not any(changed(original, pretrained))  # the pre-trained model itself is untouched
    with pytest.raises(ValueError, match="unknown method"):
        finetune.model_and_optimizer("distil", pretrained=pretrained, num_classes=3, lr=1e-3)


def test_fine_tuning_on_tiny_data_fits_it():
    torch.manual_seed(0)
    X, y = torch.rand(12, 1, 28, 28), torch.arange(12) % 4
    net, opt = finetune.model_and_optimizer("fine-tune", pretrained=tiny_net(), num_classes=4, lr=3e-3, head_lr_mult=10)
    for _ in range(25):
        loss = nn.functional.cross_entropy(net(X), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert (net(X).argmax(1) == y).float().mean() == 1.0


def test_split_by_classes_relabels_and_subsamples():
    X = torch.arange(30.0)[:, None]
    y = torch.arange(30) % 6  # five of each class
    Xs, ys = finetune.split_by_classes(X, y, classes=[4, 1])
    assert ys.tolist() == [0] * 5 + [1] * 5
    assert (y[Xs[:, 0].long()] == torch.tensor([4, 1]).repeat_interleave(5)).all()
    g = torch.Generator().manual_seed(0)
    Xk, yk = finetune.split_by_classes(X, y, classes=[2, 3, 5], per_class=2, generator=g)
    assert torch.bincount(yk).tolist() == [2, 2, 2]
    assert (y[Xk[:, 0].long()] == torch.tensor([2, 3, 5]).repeat_interleave(2)).all()
    with pytest.raises(ValueError, match="only 5 examples"):
        finetune.split_by_classes(X, y, classes=[0], per_class=6)
    with pytest.raises(ValueError, match="without repeats"):
        finetune.split_by_classes(X, y, classes=[1, 1])


def test_binary_accuracy_thresholds_logits_at_zero():
    logits = torch.tensor([2.0, -1.0, 0.5, -3.0])
    labels = torch.tensor([1.0, 0.0, 0.0, 1.0])
    assert finetune.binary_accuracy(logits, labels).item() == 0.5
    with pytest.raises(ValueError, match="one shape"):
        finetune.binary_accuracy(logits[:, None], labels)


def test_pretrained_loader_falls_back_without_network(monkeypatch, capsys):
    from torchvision.models import _api

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("no route to host (simulated)")

    monkeypatch.setattr(_api, "load_state_dict_from_url", no_network)
    assert finetune.load_pretrained_resnet18() is None
    out = capsys.readouterr().out
    assert "unavailable" in out and "simulated" in out and "offline" in out


def test_pretrained_loader_restores_the_socket_timeout(monkeypatch):
    import socket

    from torchvision.models import _api

    seen = []

    def no_network(*args, **kwargs):
        seen.append(socket.getdefaulttimeout())
        raise OSError("network is unreachable (simulated)")

    monkeypatch.setattr(_api, "load_state_dict_from_url", no_network)
    before = socket.getdefaulttimeout()
    assert finetune.load_pretrained_resnet18(timeout=3.0) is None
    assert seen == [3.0] and socket.getdefaulttimeout() == before
