"""Activations by hooks, receptive fields by formula and by gradient, top patches, class purity."""

import pytest
import torch
from torch import nn

from dlnotes.cnn import features, lenet


def test_activations_equal_running_the_layers_by_hand_and_restore_the_mode():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Dropout(0.5), nn.Linear(2 * 4 * 4, 3))
    net.train()
    X = torch.randn(7, 1, 6, 6)
    after_relu, logits = features.activations(net, X, layers=[net[1], net[4]], batch_size=3)
    with torch.no_grad():
        torch.testing.assert_close(after_relu, torch.relu(net[0](X)))
        torch.testing.assert_close(logits, net[4](net[2](after_relu)))  # dropout was off
    assert net.training


def test_receptive_field_of_lenet_matches_the_gradient_footprint():
    """Which input pixels can change one output pixel: the nonzero gradient marks the field."""
    net = lenet.lenet()
    for upto, (size, jump, offset) in ((2, (5, 1, -2)), (5, (14, 2, -2))):
        assert features.receptive_field(list(net)[:upto]) == (size, jump, offset)
        X = torch.rand(1, 1, 28, 28, requires_grad=True)
        out = net[:upto](X)
        i, j = 5, 7
        out[0, 0, i, j].backward()
        rows, cols = (X.grad[0, 0].abs() > 0).nonzero(as_tuple=True)
        top, left = offset + i * jump, offset + j * jump
        assert rows.min() >= max(top, 0) and rows.max() <= top + size - 1
        assert cols.min() >= max(left, 0) and cols.max() <= left + size - 1
        assert rows.max() - rows.min() + 1 == size  # the field inside the image is fully used


def test_top_patches_find_a_planted_pattern():
    conv = nn.Conv2d(1, 1, 3, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[[[0.0, 1.0, 0.0], [1.0, 1.0, 1.0], [0.0, 1.0, 0.0]]]]))  # a plus sign
    X = torch.zeros(4, 1, 8, 8)
    X[2, 0, 4, 2:5] = 1
    X[2, 0, 3:6, 3] = 1  # a plus centred at (4, 3) in image 2
    X[1, 0, 0, 0] = 0.5  # a weak dot in image 1
    maps = conv(X).detach()
    patches = features.top_patches(X, maps, channel=0, k=2, field=features.receptive_field([conv]))
    torch.testing.assert_close(patches[0, 0], conv.weight.detach()[0, 0])  # the plus, exactly in its field
    assert patches.shape == (2, 1, 3, 3)


def test_channel_purity_and_bad_k():
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    maps = torch.tensor([[9.0, 1.0], [8.0, 1.0], [1.0, 9.0], [1.0, 1.0], [1.0, 8.0], [1.0, 1.0]])  # (N, 2)
    torch.testing.assert_close(features.channel_purity(maps, labels, k=2), torch.tensor([1.0, 0.5], dtype=torch.float64))
    with pytest.raises(ValueError, match="larger than the number of inputs"):
        features.channel_purity(maps, labels, k=7)


def test_top_inputs_breaks_ties_by_index():
    strength = torch.tensor([1.0, 3.0, 3.0, 2.0, 3.0])
    assert features.top_inputs(strength, k=4).tolist() == [1, 2, 4, 3]
    assert features.top_inputs(strength, k=10).tolist() == [1, 2, 4, 3, 0]
