"""Fine-tuning and transfer learning: freeze a backbone, replace the head, give the two different learning rates.

The recipe of d2l's hot-dog chapter, written for any model whose last layer is a linear head
(``model.fc`` in torchvision's ResNets, ``model[-1]`` in an ``nn.Sequential``), plus the data
split the offline experiment needs (pre-train on some classes, fine-tune on others) and a
guarded loader for torchvision's ImageNet weights, which needs the network.
"""

from __future__ import annotations

import copy
import socket
from typing import Sequence

import torch
from torch import Tensor, nn


def freeze(module: nn.Module) -> nn.Module:
    """Stop gradients for every parameter of ``module`` (it still runs forward); return it.

    An optimizer skips parameters whose ``.grad`` stays ``None``, so frozen weights never move,
    even when they were handed to the optimizer.
    """
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def replace_head(model: nn.Module, *, num_classes: int) -> nn.Linear:
    """Swap the model's last linear layer for a fresh one with ``num_classes`` outputs; return the new head.

    Works for torchvision's ResNets (``model.fc``) and for an ``nn.Sequential`` ending in
    ``nn.Linear``. The new layer has PyTorch's default random initialisation and is trainable
    even if the rest of the model was frozen.
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be positive, got {num_classes}")
    if isinstance(getattr(model, "fc", None), nn.Linear):
        old = model.fc
        model.fc = head = nn.Linear(old.in_features, num_classes, device=old.weight.device)
    elif isinstance(model, nn.Sequential) and len(model) and isinstance(model[-1], nn.Linear):
        old = model[-1]
        model[-1] = head = nn.Linear(old.in_features, num_classes, device=old.weight.device)
    else:
        raise ValueError(f"cannot find a linear head in {type(model).__name__}: "
                         "expected a .fc nn.Linear or an nn.Sequential ending in nn.Linear")
    return head


def param_groups(backbone: nn.Module, head: nn.Module, *, lr: float, head_lr_mult: float = 10.0) -> list[dict]:
    """Two optimizer groups: the backbone at ``lr``, the head at ``lr * head_lr_mult``.

    The pre-trained backbone already holds good features, so it only needs small nudges; the
    head starts from random weights and must move far. Frozen parameters are left out.
    """
    if lr < 0 or head_lr_mult <= 0:
        raise ValueError(f"need lr >= 0 and head_lr_mult > 0, got lr={lr}, head_lr_mult={head_lr_mult}")
    head_params = [p for p in head.parameters() if p.requires_grad]
    head_ids = {id(p) for p in head.parameters()}
    body_params = [p for p in backbone.parameters() if p.requires_grad and id(p) not in head_ids]
    if not head_params:
        raise ValueError("the head has no trainable parameters")
    groups = [{"params": body_params, "lr": lr}] if body_params else []
    return groups + [{"params": head_params, "lr": lr * head_lr_mult}]


METHODS = ("scratch", "linear probe", "fine-tune")


def model_and_optimizer(method: str, *, pretrained: nn.Module, num_classes: int, lr: float,
                        head_lr_mult: float = 10.0, optimizer: type[torch.optim.Optimizer] = torch.optim.Adam,
                        ) -> tuple[nn.Module, torch.optim.Optimizer]:
    """A copy of ``pretrained`` with a new head, and its optimizer, set up for one of :data:`METHODS`.

    - ``scratch``: the same architecture, every weight re-initialised, all at ``lr * head_lr_mult``.
    - ``linear probe``: the pre-trained backbone frozen; only the new head learns.
    - ``fine-tune``: everything learns; the backbone at ``lr``, the new head at ``lr * head_lr_mult``.
    ``pretrained`` itself is never modified.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    model = copy.deepcopy(pretrained)
    if method == "scratch":
        for m in model.modules():
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()  # PyTorch's default initialisation, as for a freshly built model
    if method == "linear probe":
        freeze(model)  # first freeze everything, then the new head arrives trainable
    head = replace_head(model, num_classes=num_classes)
    if method == "scratch":
        groups = param_groups(model, head, lr=lr * head_lr_mult, head_lr_mult=1.0)
    else:
        groups = param_groups(model, head, lr=lr, head_lr_mult=head_lr_mult)
    return model, optimizer(groups)


def split_by_classes(X: Tensor, y: Tensor, *, classes: Sequence[int], per_class: int | None = None,
                     generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """The examples whose label is in ``classes``, relabelled 0, 1, ... in the order of ``classes``.

    ``per_class`` keeps a random ``per_class`` examples of each class (few labels); None keeps all.
    """
    classes = list(classes)
    if not classes or len(set(classes)) != len(classes):
        raise ValueError(f"classes must be a non-empty list without repeats, got {classes}")
    keep_X, keep_y = [], []
    for new_label, c in enumerate(classes):
        idx = torch.nonzero(y == c).flatten()  # (n_c,)
        if per_class is not None:
            if per_class > len(idx):
                raise ValueError(f"class {c} has only {len(idx)} examples, asked for {per_class}")
            idx = idx[torch.randperm(len(idx), generator=generator)[:per_class]]
        keep_X.append(X[idx])
        keep_y.append(torch.full((len(idx),), new_label, dtype=torch.int64))
    X_out, y_out = torch.cat(keep_X), torch.cat(keep_y)
    if len(y_out) == 0:
        raise ValueError(f"no examples with labels {classes}")
    return X_out, y_out


def binary_accuracy(y_hat: Tensor, y: Tensor) -> Tensor:
    """Accuracy of one logit per example (B,): predict 1 where the logit is positive (p > 0.5)."""
    if y_hat.shape != y.shape:
        raise ValueError(f"binary_accuracy expects logits and labels of one shape, got "
                         f"{tuple(y_hat.shape)} and {tuple(y.shape)}")
    return ((y_hat > 0) == (y > 0.5)).float().mean()


def load_pretrained_resnet18(*, timeout: float = 20.0) -> nn.Module | None:
    """torchvision's ResNet-18 with ImageNet weights, or None (with the reason printed) when they cannot be had.

    The weights (about 45 MB) come from download.pytorch.org on first use and are cached by
    torch.hub; without a network connection this prints why and returns None, so that a
    chapter can fall back to its offline experiment instead of failing. ``timeout`` bounds each
    network operation, so a network that silently drops packets cannot stall the build.
    """
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)  # torch.hub's urlopen has no timeout of its own
    try:
        from torchvision.models import ResNet18_Weights, resnet18

        return resnet18(weights=ResNet18_Weights.DEFAULT)
    except Exception as error:  # no network, a proxy, a corrupt cache: any failure means "offline"
        print(f"pretrained ResNet-18 weights unavailable ({type(error).__name__}: {error}); "
              "using the offline experiment instead")
        return None
    finally:
        socket.setdefaulttimeout(previous)
