"""Graph convolutional networks from scratch: the normalised adjacency, a GCN layer, semi-supervised training.

A graph of n nodes is its adjacency matrix A (n, n) and a feature matrix X (n, d). A GCN layer
(Kipf and Welling, 2017) mixes every node's features with its neighbours', weighted by
1 / sqrt(deg_i deg_j) with a self-loop on every node, and then applies one shared linear map:
H' = D^-1/2 (A + I) D^-1/2 H W. The data set is Zachary's karate club, which ships with networkx:
34 members of a club that split in two after a quarrel, and who met whom outside the club.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class Graph:
    """An undirected graph: adjacency (n, n) of 0/1, node labels (n,), class names, node positions for drawing."""

    adjacency: Tensor
    labels: Tensor
    classes: tuple[str, ...]
    positions: Tensor  # (n, 2)

    @property
    def num_nodes(self) -> int:
        return len(self.labels)


def karate_club(*, seed: int = 0) -> Graph:
    """Zachary's karate club: 34 members, 78 friendships, and which club each joined after the split."""
    import networkx as nx

    g = nx.karate_club_graph()
    n = g.number_of_nodes()
    adjacency = torch.zeros(n, n)
    for i, j in g.edges():
        adjacency[i, j] = adjacency[j, i] = 1.0
    classes = ("Mr. Hi", "Officer")
    labels = torch.tensor([classes.index(g.nodes[i]["club"]) for i in range(n)])
    layout = nx.spring_layout(g, seed=seed)
    positions = torch.from_numpy(np.array([layout[i] for i in range(n)], dtype=np.float32))  # (n, 2)
    return Graph(adjacency, labels, classes, positions)


def normalized_adjacency(adjacency: Tensor, *, self_loops: bool = True) -> Tensor:
    """D^-1/2 (A + I) D^-1/2 for a symmetric adjacency (n, n); without self-loops D^-1/2 A D^-1/2."""
    if adjacency.ndim != 2 or adjacency.shape[0] != adjacency.shape[1]:
        raise ValueError(f"adjacency must be square (n, n), got {tuple(adjacency.shape)}")
    if not torch.equal(adjacency, adjacency.T):
        raise ValueError("adjacency must be symmetric (an undirected graph)")
    A = adjacency + torch.eye(len(adjacency)) if self_loops else adjacency
    degree = A.sum(dim=1)  # (n,)
    scale = torch.where(degree > 0, degree.rsqrt(), torch.zeros_like(degree))  # isolated nodes stay 0
    return scale[:, None] * A * scale[None, :]


class GCNLayer(nn.Module):
    """H (n, d_in) -> Â H W + b (n, d_out), for a normalised adjacency Â given at each call."""

    def __init__(self, in_features: int, out_features: int, *, bias: bool = True):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features, bias=False)
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None

    def forward(self, H: Tensor, A_hat: Tensor) -> Tensor:
        out = A_hat @ self.linear(H)  # (n, d_out): transform each node, then mix it with its neighbours
        return out + self.bias if self.bias is not None else out


class GCN(nn.Module):
    """GCN layers with ReLU (and dropout) between them; ``embed`` returns the last hidden layer."""

    def __init__(self, *, in_features: int, hidden: list[int], num_classes: int, dropout: float = 0.0):
        super().__init__()
        sizes = [in_features, *hidden, num_classes]
        self.layers = nn.ModuleList(GCNLayer(a, b) for a, b in zip(sizes, sizes[1:]))
        self.dropout = nn.Dropout(dropout)

    def embed(self, X: Tensor, A_hat: Tensor) -> Tensor:
        """The nodes' representations before the output layer: (n, hidden[-1])."""
        H = X
        for layer in self.layers[:-1]:
            H = F.relu(layer(self.dropout(H), A_hat))
        return H

    def forward(self, X: Tensor, A_hat: Tensor) -> Tensor:
        return self.layers[-1](self.dropout(self.embed(X, A_hat)), A_hat)  # (n, num_classes) logits


def train_nodes(model: nn.Module, X: Tensor, A_hat: Tensor, labels: Tensor, *, train_mask: Tensor,
                num_epochs: int, lr: float, weight_decay: float = 5e-4) -> list[float]:
    """Full-batch training on the labelled nodes only; the others still pass messages. Returns the losses."""
    if train_mask.dtype != torch.bool or train_mask.shape != labels.shape:
        raise ValueError("train_mask must be a boolean tensor shaped like labels")
    if not train_mask.any():
        raise ValueError("train_mask selects no node: nothing to learn from")
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    losses = []
    model.train()
    for _ in range(num_epochs):
        loss = F.cross_entropy(model(X, A_hat)[train_mask], labels[train_mask])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    return losses


@torch.no_grad()
def node_accuracy(model: nn.Module, X: Tensor, A_hat: Tensor, labels: Tensor, *, mask: Tensor) -> float:
    """Share of the nodes in ``mask`` whose predicted class is right."""
    was_training = model.training
    model.eval()
    predicted = model(X, A_hat).argmax(dim=1)
    model.train(was_training)
    return (predicted[mask] == labels[mask]).float().mean().item()


def smoothing(A_hat: Tensor, X: Tensor, *, depths: list[int]) -> list[float]:
    """How alike the nodes become after k rounds of averaging, Â^k X: the mean distance of rows to their mean.

    Normalised by the rows' norm, so that only the spread counts; it falls towards 0 as k grows,
    which is why deep GCNs without remedies lose the differences between nodes (over-smoothing).
    """
    if list(depths) != sorted(set(depths)) or min(depths) < 0:
        raise ValueError(f"depths must be distinct, increasing and >= 0, got {depths}")
    out = []
    H, done = X, 0
    for k in depths:
        for _ in range(k - done):
            H = A_hat @ H
        done = k
        rows = H / H.norm(dim=1, keepdim=True).clamp(min=1e-12)
        out.append((rows - rows.mean(dim=0)).norm(dim=1).mean().item())
    return out
