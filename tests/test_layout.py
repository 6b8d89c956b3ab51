"""The package's layout: a small core, teaching code grouped by part, book tooling apart.

Parts 4-6 copy this shape, so it is checked, not described: a part imports only the core and
earlier parts, chapters never import the tooling, and the tests mirror the package.
"""

import ast
from pathlib import Path

import pytest

from dlnotes.booktools import chapters

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "code" / "dlnotes"
CORE = {"config", "data", "download", "train", "plot", "book", "timing"}
PARTS = ["basics", "training", "cnn", "sequences", "applications", "scale"]  # in book order
TOOLING = "booktools"
# the one page that reports on the build itself: it reads the saved benchmark run
TOOLING_READERS = {"book/zh/appendix/build.md", "book/en/appendix/build.md"}


def imported_dlnotes_modules(source: str) -> set[str]:
    """Dotted dlnotes names that ``source`` imports ("dlnotes.cnn.conv", "dlnotes.train", ...)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return {n for n in names if n.startswith("dlnotes.")}


def group_of(dotted: str) -> str:
    """ "dlnotes.cnn.conv" -> "cnn"; a core module ("dlnotes.train", "dlnotes.data.TensorData") -> "core"."""
    first = dotted.split(".")[1]
    return "core" if first in CORE else first


def test_the_top_holds_only_the_core_the_parts_and_the_tooling():
    top_modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert top_modules <= CORE, f"not core, move into a part or {TOOLING}/: {sorted(top_modules - CORE)}"
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders <= set(PARTS) | {TOOLING}, f"unknown subpackages: {sorted(folders - set(PARTS) - {TOOLING})}"
    for folder in folders:
        assert (PACKAGE / folder / "__init__.py").read_text("utf8").startswith('"""'), f"{folder}/ needs a docstring"


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_modules_import_only_the_core_and_earlier_parts(path):
    rel = path.relative_to(PACKAGE)
    own = "core" if len(rel.parts) == 1 else rel.parts[0]
    allowed = {"core"}
    if own in PARTS:
        allowed |= set(PARTS[: PARTS.index(own) + 1])
    elif own == TOOLING:
        allowed |= set(PARTS) | {TOOLING}  # the loop bench times a part's model
    for name in imported_dlnotes_modules(path.read_text("utf8")):
        assert group_of(name) in allowed, f"dlnotes/{rel.as_posix()} ({own}) imports {name}"


def test_the_import_rule_can_fail():
    assert imported_dlnotes_modules("from dlnotes.cnn import conv\nimport dlnotes.training.house") == {
        "dlnotes.cnn", "dlnotes.cnn.conv", "dlnotes.training.house"}
    assert group_of("dlnotes.cnn.conv") == "cnn" and group_of("dlnotes.data.TensorData") == "core"
    # "from dlnotes import x" names a top-level module: only core ones exist there
    assert group_of("dlnotes.train") == "core"


@pytest.mark.parametrize("page", chapters.toc_files(ROOT), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_chapters_never_import_the_book_tooling(page):
    rel = page.relative_to(ROOT).as_posix()
    if page.suffix != ".md" or rel in TOOLING_READERS:
        return
    for cell in chapters.code_cells(page):
        try:
            names = imported_dlnotes_modules(cell)
        except SyntaxError:  # IPython magics
            continue
        tooling = {n for n in names if group_of(n) == TOOLING}
        assert not tooling, f"{rel} imports the book's tooling {sorted(tooling)}"


def test_the_build_appendix_is_the_page_that_reads_the_tooling():
    for rel in TOOLING_READERS:
        cells = "\n".join(chapters.code_cells(ROOT / rel))
        assert "dlnotes.booktools" in cells, f"{rel} no longer reads the benchmark: drop it from TOOLING_READERS"


def test_the_tests_mirror_the_package():
    missing = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        if path.name == "__init__.py" or path.stem == "bench_results":  # data written by make bench
            continue
        test = ROOT / "tests" / rel.parent / f"test_{path.stem}.py"
        if not test.exists():
            missing.append(f"dlnotes/{rel.as_posix()} -> tests/{test.relative_to(ROOT / 'tests').as_posix()}")
    assert not missing, "modules without a test file in the mirrored place:\n" + "\n".join(missing)
