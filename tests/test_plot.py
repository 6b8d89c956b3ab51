"""Tests of dlnotes.plot: what each function draws, the CJK font, reproducible SVG."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib import font_manager
from matplotlib.figure import Figure

from dlnotes import plot
from dlnotes.train import History

WHITE = (1.0, 1.0, 1.0, 1.0)


@pytest.fixture(autouse=True)
def restore_rcparams(monkeypatch, tmp_path_factory):
    """Each test starts from and leaves behind matplotlib's own defaults."""
    # use_book_style() may create an IPython shell outside Jupyter; keep its profile out of $HOME
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path_factory.getbasetemp() / "ipython"))
    with matplotlib.rc_context():
        matplotlib.rcdefaults()
        yield


def svg_bytes(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    return buf.getvalue()


def glyph_warnings(fig: Figure) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        svg_bytes(fig)
    return [str(w.message) for w in caught if "missing from font" in str(w.message)]


def chinese_figure() -> Figure:
    fig, ax = plot.figure()
    ax.plot([0, 1], [0, 1])
    ax.set_title("训练损失 train loss")
    ax.set_xlabel("迭代周期 epoch")
    return fig


def history(with_accuracy: bool) -> History:
    metrics = {"train_loss": [1.0, 0.6, 0.4], "test_loss": [1.1, 0.7, 0.5]}
    if with_accuracy:
        metrics |= {"train_accuracy": [0.5, 0.7, 0.8], "test_accuracy": [0.45, 0.65, 0.75]}
    return History(metrics=metrics, seconds=1.0, examples=300)


# ---------------------------------------------------------------- what is drawn


EN = lambda zh, en: en  # noqa: E731  (per_language's English labeller)


def test_plot_functions():
    x = torch.linspace(0, 1, 11)
    fig = plot.plot_functions(x, {"x": x, "x^2": x ** 2, "x^3": np.asarray(x) ** 3},
                              xlabel="x", ylabel="f(x)", title="powers", styles=["-", "--"], ylim=(0, 2))
    assert isinstance(fig, Figure)
    [ax] = fig.axes
    assert len(ax.lines) == 3
    assert [line.get_label() for line in ax.lines] == ["x", "x^2", "x^3"]
    assert [line.get_linestyle() for line in ax.lines] == ["-", "--", "-"]
    np.testing.assert_allclose(ax.lines[1].get_ydata(), np.linspace(0, 1, 11) ** 2, rtol=1e-6, atol=1e-7)
    assert ax.get_legend() is not None
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == ("x", "f(x)", "powers")
    assert ax.get_ylim() == (0, 2)


def test_plot_functions_single_curve_and_given_axes():
    fig, axes = plot.figure(ncols=2)
    out = plot.plot_functions([0, 1, 2], {"only": [0, 1, 4]}, ax=axes[1])
    assert out is fig
    assert len(fig.axes) == 2
    assert len(axes[0].lines) == 0 and len(axes[1].lines) == 1
    assert axes[1].get_legend() is None  # one curve: no legend


def test_scatter():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(50, generator=g), torch.randn(50, generator=g)
    fig = plot.scatter(x, y, xlabel="a", ylabel="b", title="t")
    assert isinstance(fig, Figure)
    [ax] = fig.axes
    assert len(ax.collections) == 1 and len(ax.lines) == 0
    np.testing.assert_allclose(ax.collections[0].get_offsets(), torch.stack([x, y], dim=1).numpy())
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == ("a", "b", "t")


def test_plot_history_with_accuracy():
    fig = plot.plot_history(history(with_accuracy=True), t=EN, title="run")
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2
    loss_ax, acc_ax = fig.axes
    assert [line.get_label() for line in loss_ax.lines] == ["train loss", "test loss"]
    assert [line.get_label() for line in acc_ax.lines] == ["train acc", "test acc"]
    np.testing.assert_array_equal(loss_ax.lines[0].get_xdata(), [1, 2, 3])
    np.testing.assert_array_equal(acc_ax.lines[1].get_ydata(), [0.45, 0.65, 0.75])
    assert [line.get_linestyle() for line in loss_ax.lines] == ["-", "--"]  # test curves dashed
    assert fig.get_suptitle() == "run"


def test_plot_history_without_accuracy():
    fig = plot.plot_history(history(with_accuracy=False), t=EN)
    assert isinstance(fig, Figure)
    [ax] = fig.axes
    assert len(ax.lines) == 2
    np.testing.assert_array_equal(ax.lines[1].get_ydata(), [1.1, 0.7, 0.5])


def test_plot_history_of_a_real_fit_history():
    h = History(metrics={"train_loss": [0.3], "train_accuracy": [0.9]}, seconds=1.0, examples=10)
    fig = plot.plot_history(h, t=EN)
    assert [len(ax.lines) for ax in fig.axes] == [1, 1]


def test_show_images_grey_nhw():
    images = torch.rand(5, 7, 6, generator=torch.Generator().manual_seed(0))
    fig = plot.show_images(images, titles=list("abcde"))
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 5  # fewer images than ncols: one row of five
    assert [len(ax.images) for ax in fig.axes] == [1] * 5
    assert fig.axes[0].images[0].get_array().shape == (7, 6)
    np.testing.assert_allclose(fig.axes[3].images[0].get_array(), images[3].numpy())
    assert [ax.get_title() for ax in fig.axes] == list("abcde")


def test_show_images_grey_n1hw_in_a_grid():
    images = np.random.default_rng(0).random((10, 1, 8, 8))
    fig = plot.show_images(images, ncols=4)
    assert len(fig.axes) == 12  # 3 rows of 4; the last two cells empty
    assert [len(ax.images) for ax in fig.axes] == [1] * 10 + [0] * 2
    assert fig.axes[0].images[0].get_array().shape == (8, 8)
    np.testing.assert_allclose(fig.axes[9].images[0].get_array(), images[9, 0])


def test_show_images_colour_n3hw():
    images = np.random.default_rng(1).random((3, 3, 5, 4))
    fig = plot.show_images(images)
    assert len(fig.axes) == 3
    assert [len(ax.images) for ax in fig.axes] == [1, 1, 1]
    shown = fig.axes[2].images[0].get_array()
    assert shown.shape == (5, 4, 3)
    np.testing.assert_allclose(shown, images[2].transpose(1, 2, 0))


def test_show_images_rejects_a_2d_array():
    with pytest.raises(ValueError, match=r"show_images expects \(N, H, W\) or \(N, C, H, W\), got shape \(8, 8\)"):
        plot.show_images(np.zeros((8, 8)))


# ---------------------------------------------------------------- the book style


def test_use_book_style_registers_the_cjk_font():
    path = plot.cjk_font_path()
    assert path is not None and path.is_file()  # mplfonts is a dependency of the book
    plot.use_book_style()
    assert "Noto Sans CJK SC" in {f.name for f in font_manager.fontManager.ttflist}
    found = font_manager.findfont(font_manager.FontProperties(family="Noto Sans CJK SC"),
                                  fallback_to_default=False)
    assert Path(found).resolve() == path.resolve()
    assert matplotlib.rcParams["font.family"] == ["DejaVu Sans", "Noto Sans CJK SC"]


def test_chinese_text_has_all_glyphs_after_use_book_style():
    plot.use_book_style()
    assert glyph_warnings(chinese_figure()) == []
    assert glyph_warnings(plot.plot_history(history(with_accuracy=True), t=EN, title="中文标题")) == []


def test_without_the_book_style_chinese_glyphs_are_missing():
    # The control for the test above: matplotlib's default font has no Chinese glyphs,
    # so the check really can see a missing glyph.
    assert glyph_warnings(chinese_figure())


def test_svg_is_reproducible():
    plot.use_book_style()
    first = svg_bytes(plot.plot_history(history(with_accuracy=True), t=EN, title="训练 training"))
    # an independently built identical figure gives the same bytes (stable ids, no date), as two builds
    # of the book do; a page renders each figure once (a second render of the same figure may differ,
    # since constrained layout runs again on the laid-out figure)
    assert svg_bytes(plot.plot_history(history(with_accuracy=True), t=EN, title="训练 training")) == first
    assert b"<dc:date>" not in first
    assert b"<path" in first  # glyphs drawn as paths, not as <text>
    assert b"<text" not in first


def test_figures_have_white_facecolor():
    matplotlib.rcParams["figure.facecolor"] = "0.5"  # not white: use_book_style() must set it
    matplotlib.rcParams["axes.facecolor"] = "0.5"
    plot.use_book_style()
    figures = [
        plot.figure()[0],
        plot.plot_functions([0, 1], {"a": [0, 1]}),
        plot.scatter([0, 1], [1, 0]),
        plot.plot_history(history(with_accuracy=True), t=EN),
        plot.show_images(np.zeros((2, 4, 4))),
    ]
    for fig in figures:
        assert fig.get_facecolor() == WHITE
        assert all(ax.get_facecolor() == WHITE for ax in fig.axes)
    assert matplotlib.rcParams["savefig.facecolor"] == "white"
    svg = svg_bytes(figures[1])
    assert b"fill: #ffffff" in svg


# ---------------------------------------------------------------- photos as JPEG, measured times


@pytest.fixture
def shell():
    """An IPython shell for the test only (other tests must not find one running)."""
    from IPython.core.interactiveshell import InteractiveShell

    yield InteractiveShell.instance()
    InteractiveShell.clear_instance()


def displayed(shell, fig) -> dict:
    plot.use_book_style()  # in a running shell: registers the figure formats
    data, _ = shell.display_formatter.format(fig)
    return data


def test_photos_display_as_jpeg_and_everything_else_as_svg(shell):
    import base64

    rng = np.random.default_rng(2)
    photos = plot.show_images(rng.random((4, 3, 32, 32)))
    digits = plot.show_images(rng.random((4, 1, 8, 8)))
    assert photos.dlnotes_jpeg and not digits.dlnotes_jpeg
    assert plot.show_images(rng.random((2, 8, 8)), photo=True).dlnotes_jpeg  # asked for
    assert not plot.show_images(rng.random((2, 3, 8, 8)), photo=False).dlnotes_jpeg
    data = displayed(shell, photos)
    assert set(data) == {"image/jpeg", "text/plain"}
    assert set(displayed(shell, digits)) == {"image/svg+xml", "text/plain"}
    assert set(displayed(shell, plot.plot_history(history(with_accuracy=True), t=EN))) == {"image/svg+xml", "text/plain"}
    assert base64.b64decode(data["image/jpeg"])[:3] == b"\xff\xd8\xff"  # a JPEG file
    assert displayed(shell, photos)["image/jpeg"] == data["image/jpeg"]  # reproducible bytes


def test_a_photo_grid_is_smaller_as_jpeg_than_as_svg():
    from IPython.core.pylabtools import print_figure

    rng = np.random.default_rng(3)
    smooth = np.stack([np.outer(np.linspace(0, 1, 64), np.linspace(1, 0, 64))] * 3)[None]  # (1, 3, 64, 64)
    photos = plot.show_images(np.clip(smooth + 0.05 * rng.random((8, 3, 64, 64)), 0, 1), ncols=4)
    assert len(print_figure(photos, "jpg", base64=True, pil_kwargs={"quality": plot.JPEG_QUALITY})) * 2 < \
        len(print_figure(photos, "svg"))


def test_measured_figures_carry_their_mark():
    plot.use_book_style()
    fig = plot.plot_history(history(with_accuracy=True), t=EN)
    assert plot.measured(fig) is fig
    assert f'id="{plot.MEASURED}"'.encode() in svg_bytes(fig)
    assert f'id="{plot.MEASURED}"'.encode() not in svg_bytes(plot.plot_history(history(with_accuracy=True), t=EN))


def test_per_language_draws_one_figure_per_language_with_its_own_labels():
    def draw(t):
        fig, ax = plot.figure()
        ax.set_xlabel(t("步数", "step"))
        return fig

    figures = plot.per_language(draw)
    assert set(figures) == {"zh", "en"} and figures["zh"] is not figures["en"]
    assert figures["zh"].axes[0].get_xlabel() == "步数" and figures["en"].axes[0].get_xlabel() == "step"


def test_canvas_is_an_empty_figure_for_subfigures():
    fig = plot.canvas(figsize=(4, 2))
    assert fig.axes == [] and tuple(fig.get_size_inches()) == (4, 2)
    left, right = fig.subfigures(1, 2)
    left.subplots(2, 2)
    assert len(fig.axes) == 4


def test_plot_history_labels_in_one_language_with_a_labeller():
    from dlnotes.train import History

    history = History(metrics={"train_loss": [1.0, 0.5], "test_accuracy": [0.5, 0.7]}, seconds=1.0, examples=10)
    zh = plot.plot_history(history, t=lambda zh, en: zh)
    en = plot.plot_history(history, t=lambda zh, en: en)
    assert zh.axes[0].get_xlabel() == "迭代周期" and en.axes[0].get_xlabel() == "epoch"
    assert [t.get_text() for t in en.axes[1].get_legend().get_texts()] == ["test acc"]
    with pytest.raises(TypeError, match="t"):
        plot.plot_history(history)  # a figure with words is drawn for one language at a time


def test_mosaic_lays_pictures_out_with_gaps_and_pads_short_rows():
    rows = [torch.zeros(3, 2, 2), torch.full((1, 2, 2), 0.5)]
    m = plot.mosaic(rows, gap=1, fill=1.0)
    assert m.shape == (2 * 2 + 1, 3 * 2 + 2)
    assert m[:2, :2].eq(0).all() and m[2].eq(1).all()  # first picture, then the gap row
    assert m[3:, :2].eq(0.5).all() and m[3:, 3:].eq(1).all()  # the short row is padded
    with pytest.raises(ValueError, match="equal-sized pictures"):
        plot.mosaic([torch.zeros(2, 2, 2), torch.zeros(1, 3, 3)])


def test_draw_boxes_adds_one_rectangle_per_box_with_its_label():
    fig = plot.canvas(figsize=(3, 3))
    ax = fig.subplots()
    ax.imshow(np.zeros((50, 80)))
    plot.draw_boxes(ax, torch.tensor([[10.0, 5.0, 30.0, 45.0], [40.0, 10.0, 70.0, 20.0]]),
                    labels=["dog", ""], color=["C0", "C1"])
    rects = [p for p in ax.patches]
    assert [(r.get_x(), r.get_y(), r.get_width(), r.get_height()) for r in rects] == [(10, 5, 20, 40), (40, 10, 30, 10)]
    assert [t.get_text() for t in ax.texts] == ["dog"]  # an empty label draws nothing
