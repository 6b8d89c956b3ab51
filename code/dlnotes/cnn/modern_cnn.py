"""Modern CNNs at d2l's sizes: AlexNet, VGG, NiN, GoogLeNet, and tools to measure them.

Every builder takes one input channel and 10 classes by default (d2l trains them on
Fashion-MNIST resized to 224 x 224). ``layer_shapes`` and ``count_macs`` work
on any device, including ``torch.device("meta")``, where tensors have shapes but no data: a
forward pass there costs nothing, so the full-size networks can be inspected on any laptop.
"""

from __future__ import annotations

import statistics
from typing import Callable, Sequence

import torch
from torch import Tensor, nn

from dlnotes.cnn import conv
from dlnotes.timing import time_in_turns
from dlnotes.training.essentials import count_parameters

VGG11_ARCH = ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))  # (convs, channels) per block


def _pooled(n: int, *, kernel_size: int = 3, stride: int = 2, padding: int = 0) -> int:
    return conv.conv_output_size(n, kernel_size=kernel_size, stride=stride, padding=padding)


def alexnet(*, in_channels: int = 1, num_classes: int = 10, image_size: int = 224,
            dropout: float = 0.5, width_divisor: int = 1, fc_width: int = 4096) -> nn.Sequential:
    """AlexNet as d2l builds it: five convolutions, three max-pools, two 4096-wide dense layers.

    ``width_divisor`` divides every convolution's channels (96, 256, 384, 384, 256) and
    ``fc_width`` sets the dense layers, for a narrow AlexNet that trains on a CPU.
    """
    c1, c2, c3, c4, c5 = (max(1, c // width_divisor) for c in (96, 256, 384, 384, 256))
    side = conv.conv_output_size(image_size, kernel_size=11, stride=4, padding=1)  # 224 -> 54
    for _ in range(3):  # three 3x3 stride-2 pools; the 5x5 and 3x3 convolutions keep the size: 54 -> 26 -> 12 -> 5
        side = _pooled(side) if side >= 3 else 0
    if side < 1:
        raise ValueError(f"AlexNet's stride-4 convolution and three 3x3 stride-2 pools need image_size >= 65, "
                         f"got {image_size}")
    return nn.Sequential(
        # a large window and stride 4: the input is big, and the first layer must shrink it fast
        nn.Conv2d(in_channels, c1, kernel_size=11, stride=4, padding=1), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(c1, c2, kernel_size=5, padding=2), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(c2, c3, kernel_size=3, padding=1), nn.ReLU(),
        nn.Conv2d(c3, c4, kernel_size=3, padding=1), nn.ReLU(),
        nn.Conv2d(c4, c5, kernel_size=3, padding=1), nn.ReLU(),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Flatten(),  # (B, 256, 5, 5) -> (B, 6400) at 224 x 224
        nn.Linear(c5 * side * side, fc_width), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(fc_width, fc_width), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(fc_width, num_classes),
    )


def vgg_block(num_convs: int, in_channels: int, out_channels: int, *, batch_norm: bool = False) -> nn.Sequential:
    """``num_convs`` 3x3 convolutions (padding 1 keeps the size), each with ReLU, then a 2x2 max-pool.

    ``batch_norm`` puts a BatchNorm2d between each convolution and its ReLU (SSD's down-sampling block).
    """
    if num_convs < 1:
        raise ValueError(f"a VGG block needs at least one convolution, got num_convs={num_convs}")
    layers: list[nn.Module] = []
    for _ in range(num_convs):
        norm = [nn.BatchNorm2d(out_channels)] if batch_norm else []
        layers += [nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1), *norm, nn.ReLU()]
        in_channels = out_channels
    layers.append(nn.MaxPool2d(kernel_size=2, stride=2))  # halves height and width
    return nn.Sequential(*layers)


def narrow_arch(arch: Sequence[tuple[int, int]], *, divisor: int) -> tuple[tuple[int, int], ...]:
    """The same VGG layout with every channel count divided by ``divisor`` (d2l's ``ratio``)."""
    if divisor < 1 or any(c // divisor < 1 for _, c in arch):
        raise ValueError(f"divisor {divisor} leaves a block of {tuple(arch)} without channels")
    return tuple((n, c // divisor) for n, c in arch)


def vgg(arch: Sequence[tuple[int, int]] = VGG11_ARCH, *, in_channels: int = 1, num_classes: int = 10,
        image_size: int = 224, fc_width: int = 4096, dropout: float = 0.5) -> nn.Sequential:
    """VGG: blocks of ``(num_convs, channels)`` from ``arch``, then three dense layers as in AlexNet."""
    blocks, side = [], image_size
    for num_convs, out_channels in arch:
        blocks.append(vgg_block(num_convs, in_channels, out_channels))
        in_channels = out_channels
        side = _pooled(side, kernel_size=2, stride=2)  # raises if the image is too small for the blocks
    return nn.Sequential(
        *blocks, nn.Flatten(),  # (B, C, 7, 7) -> (B, 49 C) at 224 x 224
        nn.Linear(in_channels * side * side, fc_width), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(fc_width, fc_width), nn.ReLU(), nn.Dropout(dropout),
        nn.Linear(fc_width, num_classes),
    )


def nin_block(in_channels: int, out_channels: int, *, kernel_size: int, stride: int = 1,
              padding: int = 0) -> nn.Sequential:
    """One convolution followed by two 1x1 convolutions: a small MLP applied at every pixel."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=kernel_size, stride=stride, padding=padding), nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, kernel_size=1), nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, kernel_size=1), nn.ReLU(),
    )


def nin(*, in_channels: int = 1, num_classes: int = 10, dropout: float = 0.5) -> nn.Sequential:
    """NiN: AlexNet's convolution sizes as NiN blocks; no dense layer at all.

    The last block has one channel per class, and global average pooling turns each channel's
    map into that class's score.
    """
    return nn.Sequential(
        nin_block(in_channels, 96, kernel_size=11, stride=4, padding=0),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nin_block(96, 256, kernel_size=5, padding=2),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nin_block(256, 384, kernel_size=3, padding=1),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Dropout(dropout),
        nin_block(384, num_classes, kernel_size=3, padding=1),
        nn.AdaptiveAvgPool2d((1, 1)),  # (B, classes, h, w) -> (B, classes, 1, 1)
        nn.Flatten(),  # (B, classes)
    )


class Inception(nn.Module):
    """Four parallel paths whose outputs are stacked along the channels.

    1x1 | 1x1 -> 3x3 | 1x1 -> 5x5 | 3x3 max-pool -> 1x1. Every path keeps height and width, so
    the outputs can be concatenated; the 1x1 convolutions in front of the 3x3 and 5x5 ones
    shrink the channels first, which is where most of the saving comes from.
    """

    def __init__(self, in_channels: int, c1: int, c2: tuple[int, int], c3: tuple[int, int], c4: int):
        super().__init__()
        self.p1 = nn.Sequential(nn.Conv2d(in_channels, c1, kernel_size=1), nn.ReLU())
        self.p2 = nn.Sequential(nn.Conv2d(in_channels, c2[0], kernel_size=1), nn.ReLU(),
                                nn.Conv2d(c2[0], c2[1], kernel_size=3, padding=1), nn.ReLU())
        self.p3 = nn.Sequential(nn.Conv2d(in_channels, c3[0], kernel_size=1), nn.ReLU(),
                                nn.Conv2d(c3[0], c3[1], kernel_size=5, padding=2), nn.ReLU())
        self.p4 = nn.Sequential(nn.MaxPool2d(kernel_size=3, stride=1, padding=1),
                                nn.Conv2d(in_channels, c4, kernel_size=1), nn.ReLU())
        self.out_channels = c1 + c2[1] + c3[1] + c4

    def forward(self, X: Tensor) -> Tensor:
        paths = [self.p1(X), self.p2(X), self.p3(X), self.p4(X)]  # each (B, c_i, H, W)
        return torch.cat(paths, dim=1)  # (B, c1 + c2[1] + c3[1] + c4, H, W)


def googlenet(*, in_channels: int = 1, num_classes: int = 10) -> nn.Sequential:
    """GoogLeNet (d2l's version): a stem, nine Inception blocks in three stages, global average pooling."""
    def pool() -> nn.MaxPool2d:
        return nn.MaxPool2d(kernel_size=3, stride=2, padding=1)  # halves height and width

    b1 = nn.Sequential(nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3), nn.ReLU(), pool())
    b2 = nn.Sequential(nn.Conv2d(64, 64, kernel_size=1), nn.ReLU(),
                       nn.Conv2d(64, 192, kernel_size=3, padding=1), nn.ReLU(), pool())
    b3 = nn.Sequential(Inception(192, 64, (96, 128), (16, 32), 32),
                       Inception(256, 128, (128, 192), (32, 96), 64), pool())
    b4 = nn.Sequential(Inception(480, 192, (96, 208), (16, 48), 64),
                       Inception(512, 160, (112, 224), (24, 64), 64),
                       Inception(512, 128, (128, 256), (24, 64), 64),
                       Inception(512, 112, (144, 288), (32, 64), 64),
                       Inception(528, 256, (160, 320), (32, 128), 128), pool())
    b5 = nn.Sequential(Inception(832, 256, (160, 320), (32, 128), 128),
                       Inception(832, 384, (192, 384), (48, 128), 128),
                       nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten())  # (B, 1024)
    return nn.Sequential(b1, b2, b3, b4, b5, nn.Linear(1024, num_classes))


def with_resize(net: nn.Module, *, image_size: int) -> nn.Sequential:
    """``net`` behind a bilinear resize to ``image_size`` x ``image_size``.

    Resizing each batch on the fly (on the GPU when there is one) instead of storing the resized
    data set: 60,000 Fashion-MNIST images at 224 x 224 would take 12 GB as float32.
    """
    return nn.Sequential(nn.Upsample(size=(image_size, image_size), mode="bilinear"), net)


def _input_like(net: nn.Module, input_shape: Sequence[int]) -> Tensor:
    param = next(net.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    return torch.zeros(*input_shape, device=device)


@torch.no_grad()
def layer_shapes(net: nn.Sequential, input_shape: Sequence[int]) -> list[tuple[str, tuple[int, ...], int]]:
    """(layer, output shape, parameters) after each top-level layer of ``net``, d2l's shape walk.

    The input is made on the device of ``net``'s parameters: build the net under
    ``with torch.device("meta"):`` to get the shapes of a big network without computing anything.
    """
    X = _input_like(net, input_shape)
    rows = []
    training = net.training
    net.eval()  # dropout does nothing to shapes; eval keeps the walk deterministic
    for name, layer in net.named_children():  # "0", "1", ... in a plain Sequential; "stem", ... if named
        X = layer(X)
        rows.append((f"{name} {type(layer).__name__}", tuple(X.shape), count_parameters(layer)))
    net.train(training)
    return rows



@torch.no_grad()
def count_macs(net: nn.Module, input_shape: Sequence[int]) -> int:
    """Multiply-adds (MACs) of every nn.Conv2d and nn.Linear in one forward pass on ``input_shape``.

    Each output element of a convolution costs (C_in / groups) * k_h * k_w MACs, each of a
    linear layer in_features; biases, activations and pooling are not counted. One MAC is two
    floating-point operations, so FLOPs = 2 * MACs. Hooks see every call, so a layer used twice
    counts twice, as it costs twice.
    """
    total = 0

    def hook(module: nn.Module, inputs, output: Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            fan_in = module.in_channels // module.groups * kh * kw
        else:
            fan_in = module.in_features
        total += output.numel() * fan_in  # (B, C_out, H_out, W_out) or (..., out_features) elements

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    training = net.training
    try:
        net.eval()
        net(_input_like(net, input_shape))
    finally:
        net.train(training)
        for h in handles:
            h.remove()
    return total


def conv_stack(*, kernel_size: int, num_layers: int, channels: int) -> nn.Sequential:
    """``num_layers`` same-size convolutions C -> C with ReLU after each: the unit VGG compares."""
    if kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd so that padding keeps the size, got {kernel_size}")
    layers: list[nn.Module] = []
    for _ in range(num_layers):
        layers += [nn.Conv2d(channels, channels, kernel_size=kernel_size, padding=kernel_size // 2), nn.ReLU()]
    return nn.Sequential(*layers)


def time_forward_backward(nets: Sequence[nn.Module], X: Tensor, *, repeats: int = 5,
                          warmup: int = 1) -> list[float]:
    """Median seconds of one forward and backward pass on ``X`` for each net (all on X's device).

    The nets take turns (:func:`dlnotes.timing.time_in_turns`) rather than running one after
    the other, so that a busy machine slows them alike and their ratio stays meaningful.
    """

    def step(net: nn.Module) -> Callable[[], None]:
        def run() -> None:
            net.zero_grad(set_to_none=True)
            net(X).sum().backward()
        return run

    times = time_in_turns({str(i): step(net) for i, net in enumerate(nets)}, repeats=repeats, warmup=warmup,
                          device=X.device)
    return [statistics.median(t) for t in times.values()]


def small_vs_large_kernels(*, channels: Sequence[int], image_sizes: Sequence[int], batch_size: int,
                           repeats: int, device: torch.device | str = "cpu") -> list[dict]:
    """Stacks of 3x3 convolutions against one large kernel with the same receptive field.

    Two 3x3 layers see 5x5 pixels, three see 7x7. For each (channels, image size) and each pair,
    one row per stack: receptive field, parameters, MACs per image and forward+backward seconds
    (the two stacks of a pair timed in turns on the same batch).
    """
    device = torch.device(device)
    rows = []
    for c in channels:
        for size in image_sizes:
            X = torch.randn(batch_size, c, size, size, device=device)
            for num_small, big in ((2, 5), (3, 7)):
                pair = [(3, num_small), (big, 1)]
                nets = [conv_stack(kernel_size=k, num_layers=n, channels=c).to(device) for k, n in pair]
                seconds = time_forward_backward(nets, X, repeats=repeats)
                for (k, n), net, sec in zip(pair, nets, seconds):
                    rows.append(dict(
                        channels=c, image_size=size, stack=f"{n}x {k}x{k}",
                        receptive_field=conv.receptive_field([(k, 1)] * n),
                        params=count_parameters(net), macs=count_macs(net, (1, c, size, size)), seconds=sec))
    return rows
