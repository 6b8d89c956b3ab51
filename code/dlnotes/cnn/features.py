"""What a trained CNN's layers respond to: activations, receptive fields, top patches, class purity.

The concept notes say lower layers find simple local features (edges) and higher layers more
complex ones (parts of objects). These tools turn that into pictures and a number: the input
patches that excite a channel most, and how much the inputs that excite a channel share a class.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn


@torch.no_grad()
def activations(net: nn.Module, X: Tensor, *, layers: Sequence[nn.Module], batch_size: int = 500) -> list[Tensor]:
    """The outputs of ``layers`` (modules inside ``net``) for the inputs X, in eval mode, batch by batch."""
    outputs: list[list[Tensor]] = [[] for _ in layers]
    hooks = [layer.register_forward_hook(lambda m, i, o, k=k: outputs[k].append(o.detach().cpu()))
             for k, layer in enumerate(layers)]
    was_training = net.training
    net.eval()
    try:
        device = next(net.parameters()).device
        for start in range(0, len(X), batch_size):
            net(X[start:start + batch_size].to(device))
    finally:
        for hook in hooks:
            hook.remove()
        net.train(was_training)
    return [torch.cat(out) for out in outputs]


def receptive_field(layers: Sequence[nn.Module]) -> tuple[int, int, int]:
    """(size, jump, offset) of one output pixel after ``layers`` (convolutions, pools, elementwise).

    The output pixel (i, j) sees the input square with top-left corner (offset + i jump,
    offset + j jump) and side ``size``. Layers without a kernel (activations) change nothing.
    """
    size, jump, offset = 1, 1, 0
    for layer in layers:
        if not isinstance(layer, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            continue
        k, s, p = (_first(getattr(layer, name)) for name in ("kernel_size", "stride", "padding"))
        d = _first(getattr(layer, "dilation", 1))
        size += (d * (k - 1)) * jump
        offset -= p * jump
        jump *= s
    return size, jump, offset


def _first(value) -> int:
    return value[0] if isinstance(value, tuple) else int(value)


def top_inputs(strength: Tensor, *, k: int) -> Tensor:
    """Indices of the k largest values of strength (N,), ties in index order: the same answer on every run.

    ``topk`` may order equal values differently from run to run (saturated sigmoids give many).
    """
    return torch.sort(strength, descending=True, stable=True).indices[:k]


def top_patches(X: Tensor, maps: Tensor, *, channel: int, k: int, field: tuple[int, int, int]) -> Tensor:
    """The k input patches (k, C_in, size, size) where ``maps[:, channel]`` has its k largest values.

    X (N, C_in, H, W) are the inputs, maps (N, C, h, w) a layer's outputs for them, ``field`` that
    layer's ``receptive_field``. At most one patch per input image; the image is zero-padded
    where the receptive field reaches past its border.
    """
    size, jump, offset = field
    values = maps[:, channel].flatten(1)  # (N, h * w)
    best, where = values.max(dim=1)  # each image's strongest response and its position
    images = top_inputs(best, k=k)
    w = maps.shape[-1]
    padded = nn.functional.pad(X, (size, size, size, size))  # room for fields past the border
    patches = []
    for n in images.tolist():
        i, j = divmod(where[n].item(), w)
        top, left = offset + i * jump + size, offset + j * jump + size
        patches.append(padded[n, :, top:top + size, left:left + size])
    return torch.stack(patches)


def channel_purity(maps: Tensor, labels: Tensor, *, k: int) -> Tensor:
    """Per channel of maps (N, C, ...) or (N, C): the share of its k most excited inputs that carry
    the channel's most common label among them.

    An input excites a channel by the channel's largest value on it. Purity near 1 / (number
    of classes) means the channel fires for every class alike; near 1, for one class only.
    """
    if k > len(labels):
        raise ValueError(f"k = {k} is larger than the number of inputs, {len(labels)}")
    strength = maps.flatten(2).amax(dim=2) if maps.ndim > 2 else maps  # (N, C)
    top = torch.stack([top_inputs(strength[:, c], k=k) for c in range(strength.shape[1])], dim=1)  # (k, C)
    counts = torch.stack([torch.bincount(labels[top[:, c]], minlength=int(labels.max()) + 1)
                          for c in range(strength.shape[1])])  # (C, num_classes)
    return counts.amax(dim=1).double() / k
