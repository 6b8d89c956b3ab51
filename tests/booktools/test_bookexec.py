"""Tests of dlnotes.booktools.bookexec: pages executed in parallel into the cache, then rendered from it."""

from __future__ import annotations

import json
import os
import re

import pytest
from test_bookcache import Book, notebook_page, write

from dlnotes.booktools import bookexec


def toc(book: Book, pages: list[str]) -> None:
    lines = ["format: jb-book", "root: index", "chapters:", *[f"  - file: {p}" for p in pages]]
    write(book.src / "_toc.yml", "\n".join(lines) + "\n")


def run(book: Book, **kwargs) -> bookexec.Report:
    return bookexec.run(book.src, cache_path=book.cache_path, package="fakepkg", package_dir=book.pkg,
                        log=lambda line: None, **kwargs)


def outputs(book: Book) -> dict[str, str]:
    """{page file name: the text of all its outputs} of the cache records."""
    from jupyter_cache import get_cache

    cache = get_cache(str(book.cache_path))
    out = {}
    for record in cache.list_cache_records():
        nb = cache.get_cache_bundle(record.pk).nb
        out[os.path.basename(record.uri)] = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    return out


TIMED = "import os, time\nstart = time.time()\ntime.sleep(2)\nprint(os.environ['OMP_NUM_THREADS'], start, time.time())"


def test_pages_run_in_parallel_then_the_build_executes_nothing(tmp_path, monkeypatch):
    book = Book(tmp_path, monkeypatch, {
        "zh_page": notebook_page("中文页", "中文。", "import fakepkg.a\nprint(fakepkg.a.VALUE)\n" + TIMED),
        "en_page": notebook_page("English page", "English.", "import fakepkg.a\nprint(fakepkg.a.VALUE)\n" + TIMED),
        "other": notebook_page("Other", "Prose.", "from fakepkg import b\nprint(b.VALUE)\n" + TIMED),
    })
    toc(book, ["zh_page", "en_page", "other"])
    report = run(book, workers=2)
    assert (report.pages, report.cached, report.workers) == (3, 0, 2)
    assert report.threads == max(1, (os.cpu_count() or 1) // 2)
    # twins (same code cells) are one notebook, run once
    assert sorted(sorted(job.pages) for job in report.jobs) == [["en_page", "zh_page"], ["other"]]
    assert not report.failed and all(job.seconds >= 2 for job in report.jobs)
    cached = outputs(book)
    assert len(cached) == 2
    # both ran at once: each started before the other ended; each kernel had cores // workers threads
    spans = []
    for text in cached.values():
        threads, start, end = text.split()[-3:]
        assert int(threads) == report.threads
        spans.append((float(start), float(end)))
    (s1, e1), (s2, e2) = spans
    assert s1 < e2 and s2 < e1

    # Sphinx renders from the cache: no record replaced, the outputs on the pages
    before = book.records()
    assert book.build() == 0
    assert book.records() == before
    assert "first_alpha_value" in book.html("zh_page") and "first_alpha_value" in book.html("en_page")
    assert "first_beta_value" in book.html("other")

    # a second run finds everything cached
    again = run(book, workers=2)
    assert (again.cached, again.jobs) == (3, [])


def test_a_module_edit_runs_exactly_the_pages_that_import_it(tmp_path, monkeypatch):
    book = Book(tmp_path, monkeypatch, {
        "p1": notebook_page("One", "Prose.", "import fakepkg.a\nprint('one', fakepkg.a.VALUE)"),
        "p2": notebook_page("Two", "Prose.", "from fakepkg import b\nprint('two', b.VALUE)"),
    })
    toc(book, ["p1", "p2"])
    assert len(run(book, workers=1).jobs) == 2
    assert book.build() == 0
    before = book.records()

    write(book.pkg / "a.py", 'VALUE = "second_alpha_value_after_the_edit"\n')
    report = run(book, workers=1)
    assert [job.pages for job in report.jobs] == [["p1"]] and report.cached == 1
    after = book.records()
    assert after["p2.md"] == before["p2.md"] and after["p1.md"][1] > before["p1.md"][1]
    assert book.build() == 0  # re-reads p1 (its digest changed) and takes the new record
    assert book.records() == after
    assert "one second_alpha_value_after_the_edit" in book.html("p1")
    assert json.loads((book.cache_path / "dlnotes-deps.json").read_text("utf8")).keys() == {"p1", "p2"}


def test_a_failing_page_is_reported_and_left_to_the_build(tmp_path, monkeypatch):
    book = Book(tmp_path, monkeypatch, {
        "good": notebook_page("Good", "Prose.", "import fakepkg.a\nprint('fine', fakepkg.a.VALUE)"),
        "bad": notebook_page("Bad", "Prose.", "import fakepkg.b\nraise RuntimeError('broken on purpose')"),
    })
    toc(book, ["good", "bad"])
    lines: list[str] = []
    report = bookexec.run(book.src, cache_path=book.cache_path, package="fakepkg", package_dir=book.pkg,
                          workers=2, log=lines.append)
    assert [job.pages for job in report.failed] == [["bad"]]
    assert "RuntimeError: broken on purpose" in report.failed[0].error
    assert any(line.startswith("[") and "FAILED" in line and "bad.md" in line for line in lines)
    assert "1 failed" in lines[-1]
    assert set(book.records()) == {"good.md"}  # nothing cached for the failing page
    data = json.loads(report.to_json())
    assert data["failed"] == [report.failed[0].path] and data["cached"] == 0
    # the build runs the failing page itself and fails (this book raises on errors)
    assert book.build() != 0


def test_cli_writes_the_report_next_to_the_cache(tmp_path, monkeypatch):
    book = Book(tmp_path, monkeypatch, {"p1": notebook_page("One", "Prose.", "print('no package here')")})
    toc(book, ["p1"])
    monkeypatch.setenv("DLNOTES_WORKERS", "1")
    write(book.src / "_config.yml", "execute:\n  timeout: 30\n")
    assert bookexec.main(["--root", str(book.src), "--cache", str(book.cache_path)]) == 0
    data = json.loads((book.cache_path.parent / "dlnotes-exec.json").read_text("utf8"))
    assert data["workers"] == 1 and data["pages"] == 1 and len(data["jobs"]) == 1
    assert re.fullmatch(r".*p1\.md", data["jobs"][0]["path"])


def test_an_uninstalled_package_is_a_clear_error(tmp_path):
    write(tmp_path / "_toc.yml", "format: jb-book\nroot: index\n")
    with pytest.raises(RuntimeError, match="not importable"):
        bookexec.run(tmp_path, cache_path=tmp_path / "cache", package="no_such_package_xyz")


def test_the_cli_needs_a_jupyter_book(tmp_path):
    with pytest.raises(SystemExit, match="no _config.yml"):
        bookexec.main(["--root", str(tmp_path)])
