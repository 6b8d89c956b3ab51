"""Transposed convolution (upsampling) and dilated convolution (a wider receptive field).

Transposed convolution: written from scratch as "every input element scatters a scaled copy of
the kernel", its output size, and the matrix view that gives it its name (convolution is
y = C x, transposed convolution is Cᵀ y). Dilated convolution: which input pixels one output
unit of a stack of dilated layers depends on, the gridding problem, and the HDC rule for
choosing rates. Everything is checked against ``F.conv_transpose2d`` / ``nn.Conv2d`` in the
tests; the chapter "Transposed and dilated convolutions" calls it.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import Tensor, nn

from dlnotes import plot
from dlnotes.cnn import conv


def trans_conv_output_size(n: int, *, kernel_size: int, stride: int = 1, padding: int = 0,
                           output_padding: int = 0, dilation: int = 1) -> int:
    """Output length (n − 1)·s − 2p + d·(k − 1) + 1 + output_padding of a transposed convolution.

    With d = 1 this is (n − 1)·s − 2p + k (+ output_padding). Padding *removes* p rows from each
    side of the output; output_padding adds rows at the bottom/right only, which is how one picks
    among the several input sizes that a strided convolution maps to the same output size.
    """
    if n < 1 or kernel_size < 1 or stride < 1 or dilation < 1 or padding < 0:
        raise ValueError(f"need n, kernel_size, stride, dilation >= 1 and padding >= 0, got n={n}, "
                         f"kernel_size={kernel_size}, stride={stride}, dilation={dilation}, padding={padding}")
    if not 0 <= output_padding < max(stride, dilation):
        raise ValueError(f"output_padding must be in [0, max(stride, dilation)) = [0, {max(stride, dilation)}), "
                         f"got {output_padding}")
    size = (n - 1) * stride - 2 * padding + dilation * (kernel_size - 1) + 1 + output_padding
    if size < 1:
        raise ValueError(f"padding={padding} removes the whole output (it would have size {size})")
    return size


def trans_conv_scratch(X: Tensor, K: Tensor, *, stride: int = 1, padding: int = 0,
                       output_padding: int = 0) -> Tensor:
    """Transposed convolution by scattering: input element (i, j) adds X[i, j]·K at (i·s, j·s).

    X (H, W) with K (kh, kw), or X (B, C_in, H, W) with K (C_in, C_out, kh, kw), the layout of
    ``nn.ConvTranspose2d.weight``. Returns (H', W') or (B, C_out, H', W'), H' from
    :func:`trans_conv_output_size`.
    """
    plain = X.dim() == 2
    if plain:
        if K.dim() != 2:
            raise ValueError(f"a 2-D input needs a 2-D kernel, got K of shape {tuple(K.shape)}")
        X, K = X[None, None], K[None, None]  # (1, 1, H, W), (1, 1, kh, kw)
    elif X.dim() != 4 or K.dim() != 4 or X.shape[1] != K.shape[0]:
        raise ValueError(f"need X (H, W) and K (kh, kw), or X (B, C_in, H, W) and K (C_in, C_out, kh, kw); "
                         f"got X {tuple(X.shape)} and K {tuple(K.shape)}")
    B, _, H, W = X.shape
    _, C_out, kh, kw = K.shape
    H_out = trans_conv_output_size(H, kernel_size=kh, stride=stride, padding=padding, output_padding=output_padding)
    W_out = trans_conv_output_size(W, kernel_size=kw, stride=stride, padding=padding, output_padding=output_padding)
    # the full canvas every copy lands on; output_padding adds zero rows/columns at the bottom/right
    Y = X.new_zeros(B, C_out, (H - 1) * stride + kh + output_padding, (W - 1) * stride + kw + output_padding)
    for i in range(H):
        for j in range(W):
            copy = torch.einsum("bc,cokl->bokl", X[:, :, i, j], K)  # (B, C_out, kh, kw): sum over C_in
            Y[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw] += copy
    Y = Y[:, :, padding:padding + H_out, padding:padding + W_out]  # padding crops the canvas
    return Y[0, 0] if plain else Y


def conv_matrix(K: Tensor, input_shape: tuple[int, int], *, stride: int = 1, padding: int = 0) -> Tensor:
    """The matrix C with conv2d(x, K).flatten() = C @ x.flatten() for one channel.

    K (kh, kw), x of shape ``input_shape`` (h, w); C has shape (oh·ow, h·w). Row r of C holds the
    kernel's weights at the input pixels that output pixel r reads; taps that fall on the
    zero padding have nothing to multiply and are dropped.
    """
    if K.dim() != 2 or len(input_shape) != 2:
        raise ValueError(f"need a 2-D kernel and a 2-D input shape, got K {tuple(K.shape)}, shape {input_shape}")
    h, w = input_shape
    kh, kw = K.shape
    oh = conv.conv_output_size(h, kernel_size=kh, padding=padding, stride=stride)
    ow = conv.conv_output_size(w, kernel_size=kw, padding=padding, stride=stride)
    C = K.new_zeros(oh * ow, h * w)  # (outputs, inputs)
    for i in range(oh):
        for j in range(ow):
            for a in range(kh):
                for b in range(kw):
                    r, c = i * stride + a - padding, j * stride + b - padding
                    if 0 <= r < h and 0 <= c < w:
                        C[i * ow + j, r * w + c] = K[a, b]
    return C


def _check_rates(rates: Sequence[int], kernel_size: int, *, min_kernel: int = 1) -> list[int]:
    rates = [int(r) for r in rates]
    if not rates or any(r < 1 for r in rates):
        raise ValueError(f"rates must be a non-empty sequence of dilation rates >= 1, got {tuple(rates)}")
    if kernel_size < min_kernel:
        raise ValueError(f"kernel_size must be >= {min_kernel}, got {kernel_size}")
    return rates


def dilated_receptive_field(rates: Sequence[int], *, kernel_size: int) -> int:
    """Receptive field (side, in pixels) of stride-1 convolutions with dilation ``rates``.

    A layer of rate r spans r·(k − 1) + 1 pixels, so the stack spans 1 + (k − 1)·Σr.
    """
    rates = _check_rates(rates, kernel_size)
    return conv.receptive_field([(r * (kernel_size - 1) + 1, 1) for r in rates])


def receptive_field_paths(rates: Sequence[int], *, kernel_size: int) -> Tensor:
    """How many paths lead from each input pixel to one output unit of a dilated stack: (R, R).

    Walks back from the output unit: each layer spreads every marked pixel over its k×k taps r
    apart, which is a transposed convolution with an all-ones kernel and dilation r (done along one
    axis, since that kernel is separable). Pixels with 0 paths are holes: the output cannot depend
    on them. R is :func:`dilated_receptive_field`.
    """
    rates = _check_rates(rates, kernel_size)
    paths = torch.ones(1, 1, 1, dtype=torch.float64)  # (B, C, W): the output unit itself
    ones = torch.ones(1, 1, kernel_size, dtype=torch.float64)
    for r in reversed(rates):
        paths = F.conv_transpose1d(paths, ones, dilation=r)  # grows by r·(k − 1)
    paths = paths[0, 0].round().long()  # (R,); counts are integers, float64 keeps them exact
    # a k×k kernel of ones is separable: a 2-D path is a row path times a column path
    return torch.outer(paths, paths)  # (R, R)


def has_holes(rates: Sequence[int], *, kernel_size: int) -> bool:
    """Whether some pixel inside the receptive field's square cannot reach the output unit."""
    return bool((receptive_field_paths(rates, kernel_size=kernel_size) == 0).any())


def hdc_ok(rates: Sequence[int], *, kernel_size: int) -> bool:
    """The hybrid dilated convolution rule of Wang et al. (2018) for a group of rates r_1..r_n.

    (1) the rates share no common factor > 1, and (2) with M_n = r_n and
    M_i = max[M_{i+1} − 2r_i, M_{i+1} − 2(M_{i+1} − r_i), r_i], the largest gap M_2 ≤ k.
    This is the rule as the paper states it: it never looks at r_1 (its examples start with
    r_1 = 1) and depends on the order of the rates; the chapter compares it with :func:`has_holes`.
    """
    rates = _check_rates(rates, kernel_size, min_kernel=2)
    if math.gcd(*rates) > 1:
        return False
    M = rates[-1]  # M_n
    for r in reversed(rates[1:-1]):  # M_{n-1}, ..., M_2
        M = max(M - 2 * r, M - 2 * (M - r), r)
    return len(rates) == 1 or M <= kernel_size


def dilated_stack(rates: Sequence[int], *, kernel_size: int, channels: int = 1) -> nn.Sequential:
    """Stride-1 ``nn.Conv2d`` layers with the given dilations, no padding and no nonlinearity."""
    rates = _check_rates(rates, kernel_size)
    return nn.Sequential(*[nn.Conv2d(channels, channels, kernel_size, dilation=r, bias=False) for r in rates])


def input_gradient(net: nn.Module, *, size: int, channels: int = 1) -> Tensor:
    """|∂y/∂x| for y the centre output unit (channel 0) of ``net``, summed over input channels: (size, size)."""
    x = torch.randn(1, channels, size, size, requires_grad=True)  # (B, C, H, W)
    y = net(x)  # (1, C_out, H', W')
    y[0, 0, y.shape[-2] // 2, y.shape[-1] // 2].backward()
    return x.grad[0].abs().sum(dim=0)  # (H, W)


def show_grids(grids: Sequence, *, titles: Sequence[str], annotate: bool = False, cmap: str = "Blues",
               scale: float = 2.6, figsize: tuple[float, float] | None = None) -> Figure:
    """Integer grids side by side as heat maps (0 is white), optionally with each cell's value written in."""
    if len(grids) != len(titles):
        raise ValueError(f"got {len(grids)} grids but {len(titles)} titles")
    fig, axes = plot.figure(ncols=len(grids), figsize=figsize or (scale * len(grids), scale))
    for ax, grid, title in zip(np.atleast_1d(axes), grids, titles):
        grid = grid.detach().cpu().numpy() if isinstance(grid, Tensor) else np.asarray(grid)
        ax.imshow(grid, cmap=cmap, vmin=0, vmax=max(grid.max(), 1))
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        if annotate:
            for (i, j), v in np.ndenumerate(grid):
                ax.text(j, i, f"{v:g}", ha="center", va="center", fontsize=7,
                        color="white" if v > 0.6 * grid.max() else "black")
    return fig
