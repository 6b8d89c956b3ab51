"""dlnotes.booktools.widecode: code blocks with long lines get the theme's full-width class."""

from __future__ import annotations

import pytest
from docutils import nodes
from docutils.frontend import get_default_settings
from docutils.parsers.rst import Parser
from docutils.utils import new_document

from dlnotes.booktools import widecode


def doctree(*blocks: tuple[str, list[str]]) -> nodes.document:
    document = new_document("test", get_default_settings(Parser))
    for text, classes in blocks:
        document += nodes.literal_block(text, text, classes=list(classes))
    return document


def test_only_code_with_a_line_longer_than_the_column_is_marked():
    short = "x = 1\n" + "y" * widecode.WIDE_COLUMNS
    long_ = short + "y"
    tree = doctree((short, []), (long_, []), (long_, ["output", "stream"]))
    assert widecode.mark_wide_code(tree) == 1
    classes = [block["classes"] for block in tree.findall(nodes.literal_block)]
    assert classes == [[], [widecode.WIDE_CLASS], ["output", "stream"]]  # outputs keep the column


def test_marking_twice_adds_the_class_once():
    tree = doctree(("z" * 120, []))
    assert widecode.mark_wide_code(tree) == 1
    assert widecode.mark_wide_code(tree) == 0
    assert next(iter(tree.findall(nodes.literal_block)))["classes"] == [widecode.WIDE_CLASS]


def test_tabs_count_as_four_columns_cjk_as_two_and_empty_text_as_zero():
    assert widecode.longest_line("\tab\nabc") == 6
    assert widecode.longest_line('t("中文", "English")') == 20  # 18 characters, 2 of them wide
    assert widecode.longest_line("") == 0


def test_a_column_width_below_one_is_an_error():
    with pytest.raises(ValueError, match="columns must be positive"):
        widecode.mark_wide_code(doctree(), columns=0)


def test_the_site_css_widens_only_on_screens_with_a_margin():
    css = widecode.WIDE_CSS
    wide = css[css.index("@media (min-width: 1200px)"):]
    assert "max-width: 136%" in wide and "max-content" in wide
    assert "max-width: 100%" in css[:css.index("@media")]  # below 1200 px: the column, scrolling
    assert "white-space: nowrap" in css[css.index("@media (max-width: 720px)"):]  # phones: one-line headers
