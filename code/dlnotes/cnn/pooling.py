"""Padding, stride and pooling: max and average pooling from scratch, how windows cover the input,
and small tools to measure what pooling does to a shifted input.

The sizes come from ``conv.conv_output_size``; the tests compare ``pool2d_scratch`` with
``F.max_pool2d`` / ``F.avg_pool2d`` and ``conv2d_flops`` with PyTorch's own FLOP counter.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

from dlnotes.cnn import conv


def _pair(value: int | tuple[int, int], name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) for v in pair):
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    return pair


def pool2d_scratch(X: Tensor, *, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None,
                   padding: int | tuple[int, int] = 0, mode: str = "max", count_include_pad: bool = True) -> Tensor:
    """Max or average pooling over the last two axes of ``X`` (..., H, W), each channel on its own.

    Like ``F.max_pool2d`` / ``F.avg_pool2d``: ``stride`` defaults to the kernel size (windows that
    tile the input); max pooling pads with −inf, so padding can never win a maximum; average
    pooling pads with zeros and, with ``count_include_pad=True`` (PyTorch's default), divides by
    the full window size k_h·k_w even where part of the window is padding.
    """
    if mode not in ("max", "avg"):
        raise ValueError(f"mode must be 'max' or 'avg', got {mode!r}")
    if X.ndim < 2 or not X.is_floating_point():
        raise ValueError(f"need a floating-point tensor (..., H, W), got dtype {X.dtype} "
                         f"and shape {tuple(X.shape)}")
    kh, kw = _pair(kernel_size, "kernel_size")
    sh, sw = _pair(kernel_size if stride is None else stride, "stride")
    ph, pw = _pair(padding, "padding")
    if ph > kh // 2 or pw > kw // 2:  # PyTorch's rule: a window made only of padding has no maximum
        raise ValueError(f"padding {(ph, pw)} must be at most half the kernel size {(kh, kw)}")
    H, W = X.shape[-2:]
    h_out = conv.conv_output_size(H, kernel_size=kh, padding=ph, stride=sh)  # checks k, s >= 1 and the fit
    w_out = conv.conv_output_size(W, kernel_size=kw, padding=pw, stride=sw)
    fill = float("-inf") if mode == "max" else 0.0
    Xp = F.pad(X, (pw, pw, ph, ph), value=fill)  # (..., H + 2p_h, W + 2p_w)
    rows = Xp.unfold(-2, kh, sh)  # (..., h_out, W + 2p_w, k_h): unfold appends the window axis last
    windows = rows.unfold(-2, kw, sw)  # (..., h_out, w_out, k_h, k_w): a view, no copy
    assert windows.shape[-4:-2] == (h_out, w_out)
    if mode == "max":  # on ties amax splits the gradient; F.max_pool2d gives it all to one entry
        return windows.amax(dim=(-2, -1))  # (..., h_out, w_out)
    total = windows.sum(dim=(-2, -1))  # (..., h_out, w_out)
    if count_include_pad:
        return total / (kh * kw)
    ones = F.pad(torch.ones(H, W, dtype=X.dtype, device=X.device), (pw, pw, ph, ph))  # 1 on real pixels
    count = ones.unfold(0, kh, sh).unfold(1, kw, sw).sum(dim=(-2, -1))  # (h_out, w_out)
    return total / count


def window_counts(height: int, width: int, *, kernel_size: int, stride: int = 1, padding: int = 0) -> Tensor:
    """How many k × k windows of a convolution (or pooling) cover each input pixel, shape (H, W).

    The gradient of the sum of all outputs of a convolution with an all-ones kernel is exactly
    this count, so autograd does the bookkeeping. A 0 marks a pixel no window ever sees.
    """
    conv.conv_output_size(min(height, width), kernel_size=kernel_size, padding=padding, stride=stride)  # checks
    X = torch.zeros(1, 1, height, width, requires_grad=True)
    ones = torch.ones(1, 1, kernel_size, kernel_size)
    F.conv2d(X, ones, stride=stride, padding=padding).sum().backward()
    return X.grad[0, 0].round().long()  # (H, W)


def receptive_field_overlap(*, kernel_size: int, stride: int) -> int:
    """Columns shared by two neighbouring windows, k − s; a negative value is a gap of s − k columns."""
    if kernel_size < 1 or stride < 1:
        raise ValueError(f"kernel_size and stride must be >= 1, got {kernel_size} and {stride}")
    return kernel_size - stride


def whole_pattern_fraction(*, kernel_size: int, stride: int, pattern_size: int) -> float:
    """Fraction of positions at which a 1-D pattern of ``pattern_size`` lies whole inside some window.

    Measured, not derived: slide the pattern over every offset modulo the stride, correlate with
    a matched filter of ``kernel_size`` taps (the pattern, zero-padded), and ask whether some
    output reaches the full match. (Formula: min(s, k − w + 1)/s for w <= k, else 0.)
    """
    if pattern_size < 1:
        raise ValueError(f"pattern_size must be >= 1, got {pattern_size}")
    receptive_field_overlap(kernel_size=kernel_size, stride=stride)  # checks k, s
    if pattern_size > kernel_size:
        return 0.0
    pattern = torch.arange(1.0, pattern_size + 1)  # distinct positive values: only a whole match scores ||p||²
    length = 2 * (kernel_size + stride) + pattern_size
    signals = torch.zeros(stride, 1, length)  # one signal per alignment of the pattern to the window grid
    for offset in range(stride):
        start = kernel_size + stride + offset
        signals[offset, 0, start:start + pattern_size] = pattern
    num_places = kernel_size - pattern_size + 1  # the pattern may sit anywhere inside a window
    taps = torch.zeros(num_places, 1, kernel_size)  # one matched filter per place
    for place in range(num_places):
        taps[place, 0, place:place + pattern_size] = pattern
    scores = F.conv1d(signals, taps, stride=stride)  # (stride, num_places, L_out)
    caught = (scores.amax(dim=(1, 2)) - pattern @ pattern).abs() < 1e-6  # (stride,)
    return int(caught.sum()) / stride


def relative_change(before: Tensor, after: Tensor) -> float:
    """‖after − before‖ / ‖before‖: 0 means the shift left this output unchanged."""
    if before.shape != after.shape:
        raise ValueError(f"shapes differ: {tuple(before.shape)} and {tuple(after.shape)}")
    norm = before.norm()
    if norm == 0:
        raise ValueError("the reference output is all zeros; a relative change is undefined")
    return float((after - before).norm() / norm)


def conv2d_flops(*, in_channels: int, out_channels: int, kernel_size: int, out_height: int, out_width: int) -> int:
    """Floating-point operations of a 2-D convolution without bias: 2 · C_in·k² · C_out · H_out·W_out.

    Each output value is a dot product of length C_in·k² (one multiply and one add per term);
    the count is proportional to the output's area, which is what pooling before a layer shrinks.
    """
    if min(in_channels, out_channels, kernel_size, out_height, out_width) < 1:
        raise ValueError("channels, kernel size and output size must all be >= 1")
    return 2 * in_channels * kernel_size * kernel_size * out_channels * out_height * out_width
