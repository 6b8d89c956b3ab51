"""A chapter whose cell raises fails the build, which names the chapter and keeps the traceback.

A real Jupyter Book build of a two-page book with the book's own ``_config.yml`` (strict mode,
execution cache, the dlnotes extensions): one page is fine, the other raises.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FRONT = """---
jupytext:
  text_representation: {extension: .md, format_name: myst}
kernelspec: {display_name: Python 3, language: python, name: python3}
---
"""


def test_a_failing_cell_fails_the_build_naming_the_chapter_with_its_traceback(tmp_path):
    book = tmp_path / "book"
    (book / "book/_static").mkdir(parents=True)
    shutil.copy(ROOT / "_config.yml", book / "_config.yml")
    shutil.copy(ROOT / "book/_static/favicon.svg", book / "book/_static/favicon.svg")
    shutil.copy(ROOT / "book/terms.yml", book / "book/terms.yml")  # the Chinese search terms
    (book / "_toc.yml").write_text("format: jb-book\nroot: book/index\nchapters:\n  - file: book/en/broken\n", "utf8")
    (book / "book/en").mkdir(parents=True)
    (book / "book/index.md").write_text(FRONT + "# Fine\n\n```{code-cell} python\n1 + 1\n```\n", "utf8")
    (book / "book/en/broken.md").write_text(
        FRONT + "# Broken\n\n```{code-cell} python\ndef step():\n    raise ValueError('broken on purpose')\n\nstep()\n```\n",
        "utf8")
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    result = subprocess.run([jupyter_book, "build", str(book), "-W", "-n", "--keep-going"],
                            capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert "book/en/broken" in output and "Executing notebook failed" in output
    report = book / "_build/html/reports/book/en/broken.err.log"
    assert report.is_file(), output[-3000:]
    traceback = re.sub(r"\x1b\[[0-9;]*m", "", report.read_text("utf8"))  # the kernel colours its tracebacks
    assert "ValueError: broken on purpose" in traceback and "step()" in traceback
    assert not (book / "_build/html/reports/book/index.err.log").exists()  # the fine page has no report
