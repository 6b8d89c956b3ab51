"""ResNet and DenseNet: the residual block, the dense block, and the nets built from them.

Also the tools of the degradation experiment: a deep CNN that is plain or residual with exactly
the same layers (so the same seed gives the same weights), and what to measure in it.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from typing import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

# --- The residual block -------------------------------------------------------------------------


class Residual(nn.Module):
    """d2l's residual block: conv-BN-ReLU-conv-BN, plus the input, then ReLU.

    The input goes through a 1x1 convolution (with the same stride) when ``use_1x1conv``, which
    is needed whenever the block changes the number of channels or the resolution.
    ``shortcut=False`` drops the addition: the same layers as a plain block, so a plain net and its
    residual twin built from the same seed hold identical weights.
    """

    def __init__(self, in_channels: int, out_channels: int, *, use_1x1conv: bool = False, stride: int = 1,
                 shortcut: bool = True):
        super().__init__()
        if in_channels < 1 or out_channels < 1 or stride < 1:
            raise ValueError(f"need positive channels and stride, got in_channels={in_channels}, "
                             f"out_channels={out_channels}, stride={stride}")
        if use_1x1conv and not shortcut:
            raise ValueError("use_1x1conv=True needs shortcut=True: the 1x1 conv lives on the shortcut")
        if shortcut and not use_1x1conv and (in_channels != out_channels or stride != 1):
            raise ValueError(f"x + f(x) needs equal shapes: {in_channels} -> {out_channels} channels with "
                             f"stride {stride} changes them, so pass use_1x1conv=True")
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, stride=stride)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1)
        self.conv3 = nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride) if use_1x1conv else None
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = shortcut

    def branch(self, x: Tensor) -> Tensor:
        """f(x): the residual the block learns."""
        return self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))  # (B, out, H / s, W / s)

    def skip(self, x: Tensor) -> Tensor:
        """The shortcut: x itself, or its 1x1 projection when the shapes change."""
        return self.conv3(x) if self.conv3 is not None else x

    def forward(self, x: Tensor) -> Tensor:
        y = self.branch(x)
        if self.shortcut:
            y = y + self.skip(x)
        return F.relu(y)  # after the sum, as in d2l: the block outputs relu(x + f(x))


def zero_init_residual_(block: Residual) -> Residual:
    """Set the last BN's γ and β to 0, so that f(x) = 0 and the block computes relu(x)."""
    if not block.shortcut:
        raise ValueError("a block without shortcut outputs relu(0) = 0 once f is zeroed, not its input")
    with torch.no_grad():
        block.bn2.weight.zero_()
        block.bn2.bias.zero_()
    return block


def jacobian_product_norms(*, num_layers: int, size: int, std: float, residual: bool,
                           generator: torch.Generator | None = None) -> Tensor:
    """‖J_k ... J_1‖_F / √size for k = 1 .. num_layers, in float64.

    J_l = A_l for a plain stack and I + A_l for a residual one; A_l has iid N(0, std² / size) entries,
    a stand-in for ∂f_l/∂x. The identity has norm 1 on this scale.
    """
    if num_layers < 1 or size < 1 or std < 0:
        raise ValueError(f"need num_layers, size >= 1 and std >= 0, got {num_layers}, {size}, {std}")
    A = torch.randn(num_layers, size, size, generator=generator, dtype=torch.float64) * std / size**0.5
    eye = torch.eye(size, dtype=torch.float64)
    product, norms = eye, []
    for J in (eye + A if residual else A):  # each J is (size, size)
        product = J @ product  # the chain rule multiplies the layers' Jacobians
        norms.append(torch.linalg.matrix_norm(product) / size**0.5)
    return torch.stack(norms)  # (num_layers,)


# --- ResNet -------------------------------------------------------------------------------------


def resnet_stage(in_channels: int, out_channels: int, num_residuals: int, *,
                 first_stage: bool = False) -> nn.Sequential:
    """``num_residuals`` blocks; all but the first stage halve H and W and change the channels first."""
    if num_residuals < 1:
        raise ValueError(f"num_residuals must be >= 1, got {num_residuals}")
    if first_stage and in_channels != out_channels:
        raise ValueError(f"the first stage keeps the channels, got {in_channels} -> {out_channels}")
    blocks = []
    for i in range(num_residuals):
        if i == 0 and not first_stage:
            blocks.append(Residual(in_channels, out_channels, use_1x1conv=True, stride=2))
        else:
            blocks.append(Residual(out_channels, out_channels))
    return nn.Sequential(*blocks)


def resnet(num_classes: int, *, in_channels: int = 1, channels: Sequence[int] = (64, 128, 256, 512),
           num_residuals: Sequence[int] = (2, 2, 2, 2)) -> nn.Sequential:
    """d2l's ResNet: a 7x7 stem (stride 2) and 3x3 max-pool, residual stages, global average pooling."""
    if len(channels) != len(num_residuals) or not channels:
        raise ValueError(f"need one channel count per stage, got {len(channels)} and {len(num_residuals)}")
    stem = nn.Sequential(nn.Conv2d(in_channels, channels[0], kernel_size=7, stride=2, padding=3),
                         nn.BatchNorm2d(channels[0]), nn.ReLU(),
                         nn.MaxPool2d(kernel_size=3, stride=2, padding=1))  # H / 4
    stages = [resnet_stage(c_in, c_out, n, first_stage=(i == 0))
              for i, (c_in, c_out, n) in enumerate(zip([channels[0], *channels[:-1]], channels, num_residuals))]
    head = nn.Sequential(nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(channels[-1], num_classes))
    return nn.Sequential(OrderedDict([("stem", stem), *((f"stage{i + 1}", s) for i, s in enumerate(stages)),
                                      ("head", head)]))


def resnet18(num_classes: int, *, in_channels: int = 1) -> nn.Sequential:
    """ResNet-18: 1 stem conv + 4 stages x 2 blocks x 2 convs + 1 linear layer = 18 weight layers."""
    return resnet(num_classes, in_channels=in_channels)


# --- DenseNet -----------------------------------------------------------------------------------


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """DenseNet's pre-activation unit: BN-ReLU-conv 3x3."""
    return nn.Sequential(nn.BatchNorm2d(in_channels), nn.ReLU(),
                         nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1))


class DenseBlock(nn.Module):
    """x -> [x, f1(x), f2([x, f1(x)]), ...]: each unit sees everything before it and adds
    ``growth_rate`` channels, so the block outputs in_channels + num_convs * growth_rate."""

    def __init__(self, num_convs: int, in_channels: int, growth_rate: int):
        super().__init__()
        if num_convs < 1 or in_channels < 1 or growth_rate < 1:
            raise ValueError(f"need num_convs, in_channels, growth_rate >= 1, got {num_convs}, "
                             f"{in_channels}, {growth_rate}")
        self.net = nn.ModuleList(conv_block(in_channels + i * growth_rate, growth_rate) for i in range(num_convs))
        self.out_channels = in_channels + num_convs * growth_rate

    def forward(self, x: Tensor) -> Tensor:
        for unit in self.net:
            x = torch.cat((x, unit(x)), dim=1)  # (B, C + growth_rate, H, W): concatenate, not add
        return x


def transition_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """BN-ReLU-1x1 conv (sets the channels, usually halving them) then 2x2 average pooling (halves H, W)."""
    if in_channels < 1 or out_channels < 1:
        raise ValueError(f"need positive channels, got {in_channels} -> {out_channels}")
    return nn.Sequential(nn.BatchNorm2d(in_channels), nn.ReLU(),
                         nn.Conv2d(in_channels, out_channels, kernel_size=1),
                         nn.AvgPool2d(kernel_size=2, stride=2))


def densenet(num_classes: int, *, in_channels: int = 1, num_channels: int = 64, growth_rate: int = 32,
             convs_per_block: Sequence[int] = (4, 4, 4, 4)) -> nn.Sequential:
    """d2l's DenseNet: ResNet's stem, dense blocks with a channel-halving transition between them."""
    stem = nn.Sequential(nn.Conv2d(in_channels, num_channels, kernel_size=7, stride=2, padding=3),
                         nn.BatchNorm2d(num_channels), nn.ReLU(),
                         nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
    layers: list[tuple[str, nn.Module]] = [("stem", stem)]
    for i, num_convs in enumerate(convs_per_block):
        block = DenseBlock(num_convs, num_channels, growth_rate)
        layers.append((f"dense{i + 1}", block))
        num_channels = block.out_channels
        if i != len(convs_per_block) - 1:
            layers.append((f"transition{i + 1}", transition_block(num_channels, num_channels // 2)))
            num_channels //= 2
    head = nn.Sequential(nn.BatchNorm2d(num_channels), nn.ReLU(), nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(),
                         nn.Linear(num_channels, num_classes))
    return nn.Sequential(OrderedDict([*layers, ("head", head)]))


# --- Looking inside -----------------------------------------------------------------------------


def deepen_with_identity(net: nn.Sequential, *, num_extra: int) -> nn.Sequential:
    """A deeper copy of ``net`` with ``num_extra`` zero-initialised residual blocks after its last
    top-level residual block. They compute relu(x) = x on that block's (non-negative) output, so
    the deeper net computes exactly the same function as ``net``."""
    if num_extra < 0:
        raise ValueError(f"num_extra must be >= 0, got {num_extra}")
    where = [i for i, layer in enumerate(net) if isinstance(layer, Residual)]
    if not where:
        raise ValueError("net has no top-level Residual block to append identity blocks to")
    width = net[where[-1]].bn2.num_features
    extra = [zero_init_residual_(Residual(width, width)) for _ in range(num_extra)]
    layers = [copy.deepcopy(layer) for layer in net]
    deeper = nn.Sequential(*layers[:where[-1] + 1], *extra, *layers[where[-1] + 1:])
    return deeper.train(net.training)




def resized(model: nn.Module, *, size: int | None) -> nn.Module:
    """``model`` preceded by bilinear resizing to size x size (on the model's device), or unchanged if None."""
    if size is None:
        return model
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    return nn.Sequential(nn.Upsample(size=(size, size), mode="bilinear", align_corners=False), model)


@torch.no_grad()
def branch_ratios(model: nn.Module, x: Tensor) -> Tensor:
    """‖f(x)‖ / ‖shortcut(x)‖ for every residual block of ``model``, input side first.

    A small ratio means the block passes its input on nearly unchanged and adds a small correction.
    """
    ratios: list[Tensor] = []

    def hook(block: Residual, inputs: tuple[Tensor], _output: Tensor) -> None:
        ratios.append(block.branch(inputs[0]).norm() / block.skip(inputs[0]).norm())

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, Residual) and m.shortcut]
    if not handles:
        raise ValueError("the model has no residual blocks with a shortcut")
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    return torch.stack(ratios)  # (num_blocks,)


# --- The degradation experiment ------------------------------------------------------------------


def deep_cnn(*, num_blocks: int, width: int, residual: bool, in_channels: int = 1,
             num_classes: int = 10) -> nn.Sequential:
    """A stem (conv with stride 2, then 2x2 max-pool: 28 -> 7) then ``num_blocks`` blocks, plain or residual.

    It has 1 + 2 * num_blocks conv layers and one linear layer. Built from the same seed, the plain
    net and its residual twin hold exactly the same weights: only the additions differ.
    """
    if num_blocks < 1 or width < 1:
        raise ValueError(f"need num_blocks >= 1 and width >= 1, got {num_blocks} and {width}")
    stem = [nn.Conv2d(in_channels, width, kernel_size=3, stride=2, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.MaxPool2d(kernel_size=2)]  # H / 4: the blocks run on 7 x 7 maps, cheap enough for a CPU
    blocks = [Residual(width, width, shortcut=residual) for _ in range(num_blocks)]
    head = [nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(width, num_classes)]
    return nn.Sequential(*stem, *blocks, *head)


def biases_before_batch_norm(net: nn.Module, X: Tensor) -> list[nn.Parameter]:
    """The biases of the convolutions whose output goes straight into a batch norm, on input ``X``.

    Batch norm subtracts each channel's batch mean, so such a bias (the same number added to every
    value of its channel) cancels exactly: its gradient is zero and it never moves. The forward
    pass on ``X`` (run in eval mode, without gradients) finds the pairs, whatever the architecture.
    """
    conv_outputs: dict[int, nn.Conv2d] = {}
    found: dict[int, nn.Parameter] = {}

    def after_conv(module: nn.Module, inputs, output: Tensor) -> None:
        conv_outputs[id(output)] = module

    def before_bn(module: nn.Module, inputs) -> None:
        conv = conv_outputs.get(id(inputs[0]))
        if conv is not None and conv.bias is not None:
            found[id(conv.bias)] = conv.bias

    handles = [m.register_forward_hook(after_conv) for m in net.modules() if isinstance(m, nn.Conv2d)]
    handles += [m.register_forward_pre_hook(before_bn) for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    training = net.training
    try:
        with torch.no_grad():
            net.eval()(X)
    finally:
        net.train(training)
        for h in handles:
            h.remove()
    return list(found.values())
