"""Convolution: cross-correlation from scratch, and the arithmetic of sizes, receptive fields, parameters.

Everything is checked against ``F.conv2d`` / ``nn.Conv2d`` in the tests; the chapters on dense
layers to convolutions, convolution, padding and stride, and pooling call it.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor, nn


def conv_output_size(n: int, *, kernel_size: int, padding: int = 0, stride: int = 1, dilation: int = 1) -> int:
    """Output length ⌊(n − d·(k − 1) − 1 + 2p) / s⌋ + 1 of a convolution or pooling along one axis.

    With dilation d = 1 this is the familiar ⌊(n − k + 2p) / s⌋ + 1; ``padding`` is the padding
    on each side (a total of 2p).
    """
    if n < 1 or kernel_size < 1 or stride < 1 or dilation < 1 or padding < 0:
        raise ValueError(f"need n, kernel_size, stride, dilation >= 1 and padding >= 0, got "
                         f"n={n}, kernel_size={kernel_size}, stride={stride}, dilation={dilation}, "
                         f"padding={padding}")
    span = dilation * (kernel_size - 1) + 1  # how many input positions one kernel placement covers
    if n + 2 * padding < span:
        raise ValueError(f"the kernel spans {span} positions but the padded input has only {n + 2 * padding}")
    return (n + 2 * padding - span) // stride + 1


def receptive_field(layers: Sequence[tuple[int, int]]) -> int:
    """Receptive field, in input pixels, of one output unit after ``layers`` = [(kernel, stride), ...].

    Walks back from the last layer with r_in = (r_out − 1)·s + k, starting from r = 1 (one unit).
    """
    r = 1
    for kernel_size, stride in reversed(list(layers)):
        if kernel_size < 1 or stride < 1:
            raise ValueError(f"kernel_size and stride must be >= 1, got ({kernel_size}, {stride})")
        r = (r - 1) * stride + kernel_size
    return r


def conv_num_params(*, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True) -> int:
    """Parameters of a 2-D convolution: C_out · (k·k·C_in + 1) with a bias, C_out·k·k·C_in without."""
    for name, value in (("in_channels", in_channels), ("out_channels", out_channels), ("kernel_size", kernel_size)):
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    return out_channels * (kernel_size * kernel_size * in_channels + (1 if bias else 0))


# --- Cross-correlation from scratch (the operation nn.Conv2d computes) ---

def _check_kernel(X: Tensor, K: Tensor, *, kernel_dims: int, input_dims: int) -> None:
    if K.ndim != kernel_dims:
        raise ValueError(f"expected a kernel with {kernel_dims} dimensions, got shape {tuple(K.shape)}")
    if X.ndim < input_dims:
        raise ValueError(f"the input needs at least {input_dims} dimensions, got shape {tuple(X.shape)}")
    if K.shape[-2] == 0 or K.shape[-1] == 0:
        raise ValueError(f"the kernel is empty, shape {tuple(K.shape)}: every output would be 0")
    if X.shape[-2] < K.shape[-2] or X.shape[-1] < K.shape[-1]:
        raise ValueError(f"kernel {tuple(K.shape[-2:])} is larger than the input {tuple(X.shape[-2:])}")


def corr2d(X: Tensor, K: Tensor) -> Tensor:
    """2-D cross-correlation Y[i, j] = Σ_a Σ_b X[i + a, j + b] · K[a, b] (no padding, stride 1).

    ``X`` is (..., H, W), any leading dimensions; ``K`` is (h, w). Returns (..., H − h + 1, W − w + 1).
    The loop runs over the h·w kernel entries, not over the output pixels: each step adds one
    shifted copy of the input, which is fast and differentiable.
    """
    _check_kernel(X, K, kernel_dims=2, input_dims=2)
    h, w = K.shape
    out_h, out_w = X.shape[-2] - h + 1, X.shape[-1] - w + 1
    Y = X.new_zeros(*X.shape[:-2], out_h, out_w)  # (..., out_h, out_w)
    for a in range(h):
        for b in range(w):
            Y = Y + K[a, b] * X[..., a:a + out_h, b:b + out_w]
    return Y


def corr2d_multi_in(X: Tensor, K: Tensor) -> Tensor:
    """One output channel from C_in input channels: Σ_c corr2d(X[c], K[c]).

    ``X`` is (..., C_in, H, W), ``K`` is (C_in, h, w): one 2-D slice per input channel, and the
    slice results are summed, so C_in channels in give ONE channel out, (..., H', W').
    """
    _check_kernel(X, K, kernel_dims=3, input_dims=3)
    if X.shape[-3] != K.shape[0]:
        raise ValueError(f"input has {X.shape[-3]} channels but the kernel has {K.shape[0]} slices")
    return sum(corr2d(X[..., c, :, :], K[c]) for c in range(K.shape[0]))


def corr2d_multi_in_out(X: Tensor, K: Tensor) -> Tensor:
    """C_out output channels: output channel o is corr2d_multi_in(X, K[o]).

    ``X`` is (..., C_in, H, W), ``K`` is (C_out, C_in, h, w), the layout of ``nn.Conv2d.weight``.
    Returns (..., C_out, H', W').
    """
    _check_kernel(X, K, kernel_dims=4, input_dims=3)
    return torch.stack([corr2d_multi_in(X, k) for k in K], dim=-3)  # (..., C_out, H', W')


def corr2d_depthwise(X: Tensor, K: Tensor) -> Tensor:
    """Each input channel with its own 2-D kernel and NO sum: C_in channels in, C_in out.

    ``X`` is (..., C, H, W), ``K`` is (C, h, w). This is ``nn.Conv2d(C, C, k, groups=C)``, not the
    ordinary convolution, which mixes the channels.
    """
    _check_kernel(X, K, kernel_dims=3, input_dims=3)
    if X.shape[-3] != K.shape[0]:
        raise ValueError(f"input has {X.shape[-3]} channels but the kernel has {K.shape[0]} slices")
    return torch.stack([corr2d(X[..., c, :, :], K[c]) for c in range(K.shape[0])], dim=-3)


class Conv2DScratch(nn.Module):
    """A convolutional layer built on :func:`corr2d_multi_in_out`: weight (C_out, C_in, h, w), bias (C_out,).

    Same parameter layout and initialisation as ``nn.Conv2d`` (no padding, stride 1), so weights
    copy across in either direction.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int], *,
                 bias: bool = True):
        super().__init__()
        h, w = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        if min(in_channels, out_channels, h, w) < 1:
            raise ValueError(f"channels and kernel size must be >= 1, got {in_channels}, {out_channels}, {(h, w)}")
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, h, w))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        bound = 1 / math.sqrt(in_channels * h * w)  # nn.Conv2d's default: U(−1/√fan_in, 1/√fan_in)
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, X: Tensor) -> Tensor:
        if X.ndim != 4 or X.shape[1] != self.weight.shape[1]:
            raise ValueError(f"expected (B, {self.weight.shape[1]}, H, W), got {tuple(X.shape)}")
        Y = corr2d_multi_in_out(X, self.weight)  # (B, C_out, H', W')
        if self.bias is not None:
            Y = Y + self.bias.reshape(-1, 1, 1)  # one bias per output channel, not per input slice
        return Y


def per_pixel_linear(X: Tensor, linear: nn.Linear) -> Tensor:
    """Apply a dense layer to the channel vector of every pixel: what a 1 × 1 convolution does.

    ``X`` is (B, C_in, H, W); ``linear`` maps C_in → C_out. Returns (B, C_out, H, W).
    """
    if X.ndim != 4 or X.shape[1] != linear.in_features:
        raise ValueError(f"expected (B, {linear.in_features}, H, W), got {tuple(X.shape)}")
    Y = linear(X.permute(0, 2, 3, 1))  # (B, H, W, C_out): every pixel is one row
    return Y.permute(0, 3, 1, 2)  # (B, C_out, H, W)


# --- Convolution as a constrained dense layer ---

def conv_as_dense_weight(K: Tensor, *, height: int, width: int) -> Tensor:
    """The dense weight matrix W with W @ X.flatten() == corr2d(X, K).flatten() for (height, width) inputs.

    Column p of W is the response to the one-hot image with a 1 at pixel p, so W has
    (H − h + 1)(W − w + 1) rows and H·W columns; most entries are zero (locality) and the
    non-zero ones repeat the h·w kernel values (sharing).
    """
    basis = torch.eye(height * width, dtype=K.dtype).reshape(-1, height, width)  # (H·W, H, W)
    responses = corr2d(basis, K)  # (H·W, H', W')
    return responses.reshape(height * width, -1).T  # (H'·W', H·W)


def shift2d(X: Tensor, *, dy: int = 0, dx: int = 0) -> Tensor:
    """Shift the last two dimensions (..., H, W) by (dy, dx) pixels (down, right), filling with zeros."""
    H, W = X.shape[-2:]
    if abs(dy) >= H or abs(dx) >= W:
        raise ValueError(f"shift ({dy}, {dx}) moves everything out of an {H} x {W} image")
    Y = torch.zeros_like(X)
    Y[..., max(dy, 0):H + min(dy, 0), max(dx, 0):W + min(dx, 0)] = \
        X[..., max(-dy, 0):H + min(-dy, 0), max(-dx, 0):W + min(-dx, 0)]
    return Y


def random_translate(X: Tensor, *, max_shift: int, generator: torch.Generator | None = None) -> Tensor:
    """Shift each image of (N, ..., H, W) by its own random (dy, dx) in [−max_shift, max_shift]²."""
    shifts = torch.randint(-max_shift, max_shift + 1, (len(X), 2), generator=generator)  # (N, 2)
    return torch.stack([shift2d(x, dy=int(dy), dx=int(dx)) for x, (dy, dx) in zip(X, shifts)])
