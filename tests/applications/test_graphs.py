"""dlnotes.applications.graphs: the karate club, the normalised adjacency, GCN layers as message passing,
semi-supervised learning from two labels, over-smoothing."""

from __future__ import annotations

import pytest
import torch

from dlnotes.applications import graphs as G


def test_the_karate_club_is_zacharys_graph():
    g = G.karate_club()
    assert g.num_nodes == 34 and int(g.adjacency.sum()) == 2 * 78
    assert torch.equal(g.adjacency, g.adjacency.T) and g.adjacency.diagonal().sum() == 0
    assert g.labels.bincount().tolist() == [17, 17] and g.labels[0] == 0 and g.labels[33] == 1  # the two leaders
    assert g.positions.shape == (34, 2)


def test_the_normalised_adjacency_by_its_formula_and_spectrum():
    A = G.karate_club().adjacency
    A_hat = G.normalized_adjacency(A)
    degree = A.sum(1) + 1
    i, j = 0, 1  # neighbours
    assert A_hat[i, j] == pytest.approx(1 / (degree[i] * degree[j]).sqrt().item())
    assert A_hat[i, i] == pytest.approx(1 / degree[i].item())
    eigenvalues = torch.linalg.eigvalsh(A_hat)
    assert eigenvalues.max() == pytest.approx(1.0, abs=1e-5) and eigenvalues.min() > -1
    plain = G.normalized_adjacency(A, self_loops=False)
    assert plain.diagonal().abs().max() == 0
    with pytest.raises(ValueError, match="symmetric"):
        G.normalized_adjacency(torch.triu(A))
    with pytest.raises(ValueError, match="square"):
        G.normalized_adjacency(A[:3])


def test_a_gcn_layer_is_message_passing_and_permutation_equivariant():
    torch.manual_seed(0)
    A = G.karate_club().adjacency
    A_hat = G.normalized_adjacency(A)
    layer = G.GCNLayer(5, 3)
    torch.nn.init.normal_(layer.bias)
    H = torch.randn(34, 5)
    out = layer(H, A_hat)
    degree = A.sum(1) + 1
    for i in (0, 11, 33):  # node i sums its neighbours' and its own transformed features
        neighbours = [j for j in range(34) if A[i, j] or j == i]
        expected = sum(layer.linear(H[j]) / (degree[i] * degree[j]).sqrt() for j in neighbours) + layer.bias
        assert torch.allclose(out[i], expected, atol=1e-5)
    perm = torch.randperm(34)
    assert torch.allclose(layer(H[perm], A_hat[perm][:, perm]), out[perm], atol=1e-5)


def test_two_labels_teach_a_gcn_the_whole_club_but_not_a_graph_blind_model():
    g = G.karate_club()
    X, A_hat = torch.eye(34), G.normalized_adjacency(g.adjacency)
    labelled = torch.zeros(34, dtype=torch.bool)
    labelled[[0, 33]] = True
    torch.manual_seed(0)
    gcn = G.GCN(in_features=34, hidden=[16], num_classes=2)
    losses = G.train_nodes(gcn, X, A_hat, g.labels, train_mask=labelled, num_epochs=200, lr=0.01)
    assert losses[-1] < 0.1 * losses[0]
    gcn_acc = G.node_accuracy(gcn, X, A_hat, g.labels, mask=~labelled)
    torch.manual_seed(0)
    blind = G.GCN(in_features=34, hidden=[16], num_classes=2)  # the identity as graph: no neighbours
    G.train_nodes(blind, X, torch.eye(34), g.labels, train_mask=labelled, num_epochs=200, lr=0.01)
    blind_acc = G.node_accuracy(blind, X, torch.eye(34), g.labels, mask=~labelled)
    assert gcn_acc > 0.9 and blind_acc < 0.7  # 0.97 and 0.5 here
    with pytest.raises(ValueError, match="selects no node"):
        G.train_nodes(gcn, X, A_hat, g.labels, train_mask=torch.zeros(34, dtype=torch.bool), num_epochs=1, lr=0.1)


def test_repeated_averaging_makes_the_nodes_alike():
    A_hat = G.normalized_adjacency(G.karate_club().adjacency)
    spread = G.smoothing(A_hat, torch.randn(34, 8, generator=torch.Generator().manual_seed(0)),
                         depths=[0, 1, 4, 16, 64])
    assert all(a > b for a, b in zip(spread, spread[1:])) and spread[-1] < 0.01 * spread[0]
    with pytest.raises(ValueError, match="increasing"):
        G.smoothing(A_hat, torch.randn(34, 2), depths=[4, 1])
