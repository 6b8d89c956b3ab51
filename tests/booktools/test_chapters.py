"""dlnotes.booktools.chapters: twins, the table of contents, reading and executing a chapter."""

from pathlib import Path

import pytest

from dlnotes.booktools import chapters

CHAPTER = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# A page

```{code-cell} python
x = 6 * 7
```

Some prose.

```{code-cell} python
print(x)
```
"""


def test_twin_swaps_the_language_folder():
    assert chapters.twin(Path("book/zh/basics/mlp.md")) == Path("book/en/basics/mlp.md")
    assert chapters.twin(Path("/r/book/en/preface.md")) == Path("/r/book/zh/preface.md")
    with pytest.raises(ValueError, match="not under book/zh/ or book/en/"):
        chapters.twin(Path("book/index.md"))


def test_toc_files_lists_root_and_nested_sections(tmp_path):
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: book/index\nparts:\n  - caption: A\n    chapters:\n"
        "      - file: book/zh/a\n        sections:\n          - file: book/zh/b\n", "utf8")
    assert chapters.toc_files(tmp_path) == [tmp_path / "book/index.md", tmp_path / "book/zh/a.md",
                                            tmp_path / "book/zh/b.md"]


def test_code_cells_and_execute(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(CHAPTER, "utf8")
    assert chapters.code_cells(page) == ["x = 6 * 7", "print(x)"]
    nb, seconds = chapters.execute(page, timeout=60)
    assert nb.cells[-1].outputs[0]["text"] == "42\n" and seconds > 0


def test_main_reports_a_failing_chapter(tmp_path, capsys):
    page = tmp_path / "bad.md"
    page.write_text(CHAPTER.replace("print(x)", "raise RuntimeError('boom')"), "utf8")
    assert chapters.main(["run", str(page)]) == 1
    assert "FAILED" in capsys.readouterr().err
