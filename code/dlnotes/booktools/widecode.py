"""Sphinx extension: code wider than the article column may use the right margin.

The package's code and the chapters' cells are written to at most ``MAX_SHOWN_COLUMNS`` columns; at
1366 px the article column holds about 86 characters of 14 px code (8.4 px each), at 1280 px about
80, so a reader would scroll sideways through most listings. On a wide screen the theme
(sphinx-book-theme) keeps a margin right of the article for the page's table of contents and lets
elements with the class ``full-width`` extend into it, folding the table of contents away while
such an element is in view. This extension gives that class to every code block (a
``{literalinclude}`` or a cell's input) with a line longer than ``WIDE_COLUMNS``; the CSS below
sizes such a block to its longest line, at least the column and at most the column plus the margin
(136 %), on screens wide enough to have that margin (1200 px and up); below 1400 px a widened
block's code is set at 90 % size so that ``MAX_SHOWN_COLUMNS`` characters fit at 1280 px as well.
Narrower screens keep the theme's sideways scrolling. The row labels of output tables stay on one
line, and on phones the column headers too (the table scrolls sideways instead of stacking a
header over five lines).
"""

from __future__ import annotations

import unicodedata

from docutils import nodes

WIDE_COLUMNS = 72  # lines up to this many characters fit the article column from 1200 px on
MAX_SHOWN_COLUMNS = 116  # what a widened block holds at 1280 px and wider: the limit for code the book shows
WIDE_CLASS = "full-width"  # the theme's class: its script folds the page's table of contents away
WIDE_CSS = """\
/* Code blocks with long lines (dlnotes.booktools.widecode) reach into the right margin. */
div.full-width[class*="highlight-"] { width: 100%; max-width: 100%; }
@media (min-width: 1200px) {
  div.full-width[class*="highlight-"] { width: max-content; min-width: 100%; max-width: 136%; }
}
@media (min-width: 1200px) and (max-width: 1399px) {
  div.full-width[class*="highlight-"] pre { font-size: 0.7875rem; }  /* 90 % of the theme's 14 px */
}
.cell_output table tbody th { white-space: nowrap; }  /* a row's label on one line */
@media (max-width: 720px) {
  .cell_output table th { white-space: nowrap; }
}
"""


def display_width(line: str) -> int:
    """Columns a line takes in a monospace font: CJK characters take two, a tab four."""
    line = line.expandtabs(4)
    return len(line) + sum(unicodedata.east_asian_width(c) in "WF" for c in line)


def longest_line(text: str) -> int:
    """The display width of the longest line of ``text``."""
    return max((display_width(line) for line in text.splitlines()), default=0)


def mark_wide_code(doctree: nodes.document, *, columns: int = WIDE_COLUMNS) -> int:
    """Give every literal block of ``doctree`` with a line longer than ``columns`` the wide class.

    Returns the number of blocks marked. Output blocks of cells (``output`` class) are left alone:
    they are printed by code and keep the column's width.
    """
    if columns < 1:
        raise ValueError(f"columns must be positive, got {columns}")
    marked = 0
    for block in doctree.findall(nodes.literal_block):
        if "output" in block["classes"] or longest_line(block.astext()) <= columns:
            continue
        if WIDE_CLASS not in block["classes"]:
            block["classes"].append(WIDE_CLASS)
            marked += 1
    return marked


def _mark(app, doctree, docname) -> None:
    mark_wide_code(doctree)


def setup(app) -> dict:
    app.connect("doctree-resolved", _mark)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
