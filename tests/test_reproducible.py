"""Two runs of the same chapter give the same numbers and the same figures, byte for byte.

The chapter runs twice, each time in a fresh kernel, as the build runs it: seeded, SVG figures
with fixed ids and no date. Figures and glued values must be identical; printed text too, except
the training loop's measured speed ("75,852 examples/s, 0.0 s training"), which is a timing.
"""

import re
from pathlib import Path

import pytest

from dlnotes import book
from dlnotes.booktools import chapters

ROOT = Path(__file__).resolve().parents[1]


SPEED = re.compile(r"[\d,.]+ examples/s, [\d.]+ s training")


def outputs(notebook) -> list:
    """Every output of every code cell, without what may differ (execution counts, measured speed)."""
    found = []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        kept = []
        for output in cell.outputs:
            output = {key: value for key, value in output.items() if key != "execution_count"}
            if "text/plain" in output.get("data", {}):
                output["data"] = {**output["data"], "text/plain": SPEED.sub("<speed>", output["data"]["text/plain"])}
            kept.append(output)
        found.append(kept)
    return found


@pytest.mark.timeout(300)
def test_a_chapter_run_twice_gives_identical_outputs(monkeypatch):
    # run as a reader's Jupyter does, which displays the figures (the build only glues them); the
    # Sphinx extension sets the build flag for this process when a test builds a book in-process
    monkeypatch.delenv(book.BUILD_ENV, raising=False)
    page = ROOT / "book/en/basics/linear-regression.md"
    first, _ = chapters.execute(page)
    second, _ = chapters.execute(page)
    a, b = outputs(first), outputs(second)
    assert sum(len(cell) for cell in a) >= 10
    svgs = [o["data"]["image/svg+xml"] for cell in a for o in cell if "image/svg+xml" in o.get("data", {})]
    assert len(svgs) >= 2  # the figures are part of the comparison
    glued = [o for cell in a for o in cell if "scrapbook" in o.get("metadata", {})]
    assert len(glued) >= 5  # and so are the glued numbers
    for index, (x, y) in enumerate(zip(a, b)):
        assert x == y, f"code cell {index} differs between two runs"
