"""Figures in one style: SVG on white, Chinese labels drawn with a CJK font, no pyplot state.

Every function builds a ``matplotlib.figure.Figure`` and returns it. In Jupyter the returned
figure is the cell's value and shows once; in a script, call ``fig.savefig(...)``.
Call :func:`use_book_style` once per kernel (the book's chapters do it in a hidden cell).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Callable, Mapping, Sequence

import matplotlib
import numpy as np
import torch
from matplotlib import font_manager
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from dlnotes import config

# The quantities fit() records, in both languages: (zh, en).
NAMES = {
    "train_loss": ("训练损失", "train loss"),
    "test_loss": ("测试损失", "test loss"),
    "train_accuracy": ("训练准确率", "train acc"),
    "test_accuracy": ("测试准确率", "test acc"),
    "loss": ("损失", "loss"),
    "epoch": ("迭代周期", "epoch"),
}

_CJK_FONT = "Noto Sans CJK SC"


def cjk_font_path() -> Path | None:
    """The Noto Sans CJK SC font shipped by the ``mplfonts`` package, if it is installed."""
    spec = importlib.util.find_spec("mplfonts")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "fonts" / "NotoSansCJKsc-Regular.otf"
    return path if path.is_file() else None


def use_book_style() -> None:
    """Set the book's look: white background, SVG output, a CJK fallback font, stable SVG ids."""
    font = cjk_font_path()
    families = ["DejaVu Sans"]
    if font is not None:
        font_manager.fontManager.addfont(str(font))
        families.append(_CJK_FONT)  # matplotlib falls back glyph by glyph
    matplotlib.rcParams.update({
        "font.family": families,
        "figure.figsize": (5.0, 3.2),
        "figure.dpi": 100,
        "figure.facecolor": "white",
        "savefig.facecolor": "white",
        "axes.facecolor": "white",
        "axes.grid": True,
        "grid.alpha": 0.3,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "legend.frameon": False,
        "svg.hashsalt": "dlnotes",  # the same ids in every build: reproducible SVG
        "svg.fonttype": "path",  # glyphs as paths: readers need no CJK font installed
    })
    try:
        from IPython import get_ipython
        from matplotlib_inline.backend_inline import set_matplotlib_formats
    except ImportError:  # no IPython: nothing displays figures inline
        return
    shell = get_ipython()
    if shell is not None:  # only in a running IPython/Jupyter; never start one
        set_matplotlib_formats("svg", metadata={"Date": None})  # no timestamp in the SVG
        _photos_as_jpeg(shell)


def _photos_as_jpeg(shell) -> None:
    """Figures marked by :func:`show_images` as photos display as JPEG, all others as SVG.

    An SVG keeps each image of a grid as a base64 PNG: for photographs that is several times the
    bytes of a JPEG of the same pixels (a page of augmented photos weighed 2 MB).
    """
    from IPython.core.pylabtools import print_figure

    formatters = shell.display_formatter.formatters
    svg = formatters["image/svg+xml"].lookup_by_type(Figure)

    def is_jpeg(fig) -> bool:  # marked by show_images: a photo, not a line drawing
        return getattr(fig, "dlnotes_jpeg", False)

    formatters["image/svg+xml"].for_type(Figure, lambda fig: None if is_jpeg(fig) else svg(fig))
    formatters["image/jpeg"].for_type(Figure, lambda fig: print_figure(
        fig, "jpg", base64=True, pil_kwargs={"quality": JPEG_QUALITY}) if is_jpeg(fig) else None)


JPEG_QUALITY = 85
MEASURED = "dlnotes-measured"  # the SVG group id of figures that plot measured times


def measured(fig: Figure) -> Figure:
    """Mark ``fig`` as showing measured times, which differ from run to run; returns it.

    The mark is the id of the figure's SVG group; the build's reproducibility check
    (:mod:`dlnotes.booktools.benchreport`) expects such figures to differ between two builds.
    """
    fig.set_gid(MEASURED)
    return fig


def _numpy(a) -> np.ndarray:
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def canvas(*, figsize: tuple[float, float]) -> Figure:
    """An empty figure (constrained layout), for layouts built from ``fig.subfigures``."""
    return Figure(figsize=figsize, layout="constrained")


def figure(*, ncols: int = 1, nrows: int = 1, figsize: tuple[float, float] | None = None):
    """A new figure and its axes (an array of axes when there are several)."""
    fig = Figure(figsize=figsize or matplotlib.rcParams["figure.figsize"], layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=True)
    return fig, axes


def per_language(draw: Callable[[Callable[[str, str], str]], Figure]) -> dict[str, Figure]:
    """One figure per language: ``draw(t)`` writes each label as ``t("中文", "English")``.

    Returns ``{"zh": figure, "en": figure}`` for ``book.glue_by_language``.
    """
    def labeller(lang: str) -> Callable[[str, str], str]:
        return lambda zh, en: zh if lang == "zh" else en

    return {lang: draw(labeller(lang)) for lang in config.LANGUAGES}


def plot_functions(x, ys: Mapping[str, object], *, xlabel: str = "", ylabel: str = "",
                   title: str | None = None, styles: Sequence[str] | None = None, ax=None,
                   ylim: tuple[float, float] | None = None) -> Figure:
    """Curves ``ys[label]`` over the common ``x`` (1-D), one line each, with a legend."""
    fig, ax = (ax.figure, ax) if ax is not None else figure()
    x = _numpy(x)
    for i, (label, y) in enumerate(ys.items()):
        style = styles[i % len(styles)] if styles else "-"
        ax.plot(x, _numpy(y), style, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if ylim is not None:
        ax.set_ylim(*ylim)
    if title:
        ax.set_title(title)
    if len(ys) > 1:
        ax.legend()
    return fig


def scatter(x, y, *, xlabel: str = "", ylabel: str = "", title: str | None = None,
            size: float = 4.0, ax=None) -> Figure:
    """A scatter plot of two 1-D arrays."""
    fig, ax = (ax.figure, ax) if ax is not None else figure()
    ax.scatter(_numpy(x), _numpy(y), s=size, alpha=0.6)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return fig


def plot_history(history, *, t: Callable[[str, str], str], title: str | None = None) -> Figure:
    """Loss per epoch on the left; every other recorded metric (e.g. accuracy) on the right.

    ``t`` is ``per_language``'s labeller: ``plot.per_language(lambda t: plot.plot_history(h, t=t))``.
    """
    name = lambda key: t(*NAMES[key])  # noqa: E731
    losses = {k: v for k, v in history.metrics.items() if k.endswith("loss")}
    others = {k: v for k, v in history.metrics.items() if not k.endswith("loss")}
    fig, axes = figure(ncols=2 if others else 1, figsize=(8.0, 3.0) if others else None)
    axes = np.atleast_1d(axes)
    epochs = np.arange(1, history.num_epochs + 1)
    for ax, group, ylabel in ((axes[0], losses, name("loss")), (axes[-1], others, "")):
        if not group:
            continue
        for key, values in group.items():
            ax.plot(epochs, values, "--" if key.startswith("test") else "-", marker=".",
                    label=name(key) if key in NAMES else key)
        ax.set_xlabel(name("epoch"))
        ax.set_ylabel(ylabel)
        ax.legend()
    if title:
        fig.suptitle(title)
    return fig


def mosaic(rows: Sequence, *, gap: int = 1, fill: float = 1.0) -> torch.Tensor:
    """Grey pictures laid out in one image: rows[i] is (n_i, H, W); a gap of ``fill`` between them.

    One ``imshow`` of a mosaic draws much faster than one axes per picture (a grid of 72
    patches took seconds). Short rows are padded with ``fill``.
    """
    rows = [torch.as_tensor(_numpy(r)) for r in rows]
    if not rows or any(r.ndim != 3 for r in rows) or len({tuple(r.shape[1:]) for r in rows}) != 1:
        raise ValueError(f"mosaic needs rows of equal-sized pictures (n, H, W), "
                         f"got {[tuple(r.shape) for r in rows]}")
    h, w = rows[0].shape[1:]
    n = max(len(r) for r in rows)
    out = torch.full((len(rows) * (h + gap) - gap, n * (w + gap) - gap), fill, dtype=torch.float32)
    for i, row in enumerate(rows):
        for j, picture in enumerate(row):
            out[i * (h + gap):i * (h + gap) + h, j * (w + gap):j * (w + gap) + w] = picture
    return out


def show_images(images, *, titles: Sequence[str] | None = None, ncols: int = 8,
                scale: float = 1.1, cmap: str = "gray", photo: bool | None = None) -> Figure:
    """A grid of images: (N, H, W), (N, 1, H, W) grey or (N, 3, H, W) colour, values in [0, 1].

    ``photo`` figures display as JPEG in the book (see :func:`use_book_style`); by default
    colour images are photos and grey ones (digits, feature maps) are not.
    """
    images = _numpy(images)
    if images.ndim == 4:
        images = images[:, 0] if images.shape[1] == 1 else images.transpose(0, 2, 3, 1)  # (N, H, W, 3)
    if images.ndim not in (3, 4):
        raise ValueError(f"show_images expects (N, H, W) or (N, C, H, W), got shape {images.shape}")
    colour = images.ndim == 4
    n = len(images)
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    fig = Figure(figsize=(ncols * scale, nrows * scale * (1.25 if titles else 1.0)), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for i, ax in enumerate(axes):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i], cmap=cmap if images.ndim == 3 else None, vmin=0, vmax=1)
            if titles is not None:
                ax.set_title(str(titles[i]), fontsize=8)
    fig.dlnotes_jpeg = colour if photo is None else photo
    return fig


def draw_boxes(ax, boxes, *, labels: Sequence[str] | None = None, color: str | Sequence[str] = "C0",
               linewidth: float = 1.5, fontsize: float = 8) -> None:
    """Corner boxes (N, 4) x1, y1, x2, y2, in the pixels of the image shown on ``ax``, with optional labels."""
    boxes = _numpy(boxes).reshape(-1, 4)
    colors = [color] * len(boxes) if isinstance(color, str) else list(color)
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        c = colors[i % len(colors)]
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=c, linewidth=linewidth))
        if labels is not None and labels[i]:
            ax.text(x1, y1, str(labels[i]), fontsize=fontsize, color="white", va="bottom",
                    bbox=dict(facecolor=c, edgecolor="none", pad=1))
