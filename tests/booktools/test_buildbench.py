"""Tests of dlnotes.booktools.buildbench: the scratch copy, the dependents of a module, the saved run."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from dlnotes.booktools import benchreport, buildbench, chapters

ROOT = Path(__file__).resolve().parents[2]


def test_scratch_copy_takes_tracked_and_new_files_not_ignored_ones(tmp_path):
    src = tmp_path / "src"
    (src / "book").mkdir(parents=True)
    (src / "book" / "a.md").write_text("tracked")
    (src / ".gitignore").write_text("_build/\n")
    subprocess.run(["git", "init", "-q", str(src)], check=True)
    subprocess.run(["git", "-C", str(src), "add", "."], check=True)
    (src / "book" / "new.md").write_text("untracked")
    (src / "_build").mkdir()
    (src / "_build" / "big.bin").write_text("ignored")
    dest = buildbench.scratch_copy(src, tmp_path / "dest")
    copied = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert copied == [".gitignore", "book/a.md", "book/new.md"]


def test_scratch_copy_without_git_skips_builds(tmp_path):
    src = tmp_path / "src"
    for name in ("book/a.md", "_build/x.html", ".venv/bin/python", "code/m.py"):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(name)
    dest = buildbench.scratch_copy(src, tmp_path / "dest")
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()) == ["book/a.md", "code/m.py"]


@pytest.fixture(scope="module")
def book_copy(tmp_path_factory):
    return buildbench.Scratch(ROOT, tmp_path_factory.mktemp("scratch"), workers=1, log=lambda line: None)


def test_scratch_builds_import_the_copy(book_copy):
    out = subprocess.run([__import__("sys").executable, "-c", "import dlnotes; print(dlnotes.__file__)"],
                         env=book_copy.env, capture_output=True, text=True, check=True).stdout
    assert Path(out.strip()).is_relative_to(book_copy.dir)


def test_the_edited_module_has_some_dependents_in_both_languages(book_copy):
    found = book_copy.dependents(buildbench.MODULE)
    pages = [p for p in chapters.toc_files(book_copy.dir) if p.is_file()]
    assert 0 < len(found) < len(pages) / 2  # a few chapters, not the whole book
    assert {Path(f).parts[1] for f in found} == {"zh", "en"}
    assert sorted(chapters.twin(Path(f)).as_posix() for f in found) == found  # twins together
    # Python's own import machinery agrees: running the pages' import statements loads the module
    # for the dependents, and not for a page outside the list
    module = buildbench.dotted_name(buildbench.MODULE)
    for doc in (found[0], found[-1], "book/en/basics/linear-regression"):
        assert (module in loaded_modules(book_copy, doc)) == (doc in found), doc


def test_the_setting_edit_changes_only_the_settings_cell_of_one_chapter(tmp_path):
    """The edit changes the code of exactly one chapter (both twins alike), in its hparams cell."""
    book_copy = buildbench.Scratch(ROOT, tmp_path, workers=1, log=lambda line: None)
    before = {doc: chapters.code_cells(path) for doc, path in buildbench.read_pages(book_copy.dir).items()}
    pages = buildbench.edit_setting(book_copy.dir)
    after = {doc: chapters.code_cells(path) for doc, path in buildbench.read_pages(book_copy.dir).items()}
    changed = sorted(doc for doc in before if before[doc] != after[doc])
    assert changed == pages == sorted(f"book/{lang}/{buildbench.SETTING_CHAPTER}" for lang in ("zh", "en"))
    for doc in changed:
        diff = [(a, b) for a, b in zip(before[doc], after[doc]) if a != b]
        assert len(diff) == 1 and "hp = config.hparams(" in diff[0][1], doc
    assert after[pages[0]] == after[pages[1]]  # the twins still share one execution
    with pytest.raises(RuntimeError, match="SETTING_EDIT"):
        buildbench.edit_setting(book_copy.dir)  # the old value is gone now: a clear error, no silent no-op


def test_the_core_module_is_imported_by_a_large_share_of_the_chapters(book_copy):
    # Parts 1-4 train with it; Part 5's GANs, word vectors and graph networks bring their own loops, so the
    # share falls as the book grows (half at 42 of 84 pages). A third keeps the bench's core edit a wide one.
    found = book_copy.dependents(buildbench.CORE_MODULE)
    assert len(found) >= len(buildbench.read_pages(book_copy.dir)) / 3


def loaded_modules(scratch, doc: str) -> set[str]:
    """The dlnotes modules in sys.modules after running only the import statements of a page."""
    import ast
    import sys

    code = "\n".join(chapters.code_cells(scratch.dir / f"{doc}.md"))
    imports = [ast.unparse(n) for n in ast.parse(code).body if isinstance(n, (ast.Import, ast.ImportFrom))]
    probe = "\n".join(imports + ["import sys", "print(' '.join(m for m in sys.modules if m.startswith('dlnotes')))"])
    out = subprocess.run([sys.executable, "-c", probe], env=scratch.env, capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_saved_run_round_trips(tmp_path):
    results = {"profile": "default", "builds": {"cold": {"seconds": 1.5, "executed": ["a"]}}, "full": None,
               "checks": {"x": True}}
    buildbench.save(results, tmp_path / "r.py")
    assert buildbench.load(tmp_path / "r.py") == results
    (tmp_path / "bad.py").write_text("OTHER = 1\n")
    with pytest.raises(ValueError, match="no RESULTS"):
        buildbench.load(tmp_path / "bad.py")


def test_the_committed_run_has_what_the_appendix_shows():
    results = buildbench.load(ROOT / "code" / "dlnotes" / "booktools" / "bench_results.py")
    assert results["profile"] == "default"
    tables = benchreport.tables(results)
    assert set(tables["builds"].index) == {"cold", "no change", "prose edit", "module edit", "setting edit",
                                           "core module edit"}
    assert len(tables["chapters"]) == len({benchreport.chapter_of(p) for p in
                                           results["builds"]["cold"]["executed"]})
    assert {row["target"] for row in results["targets"]} == set(benchreport.TARGETS)


def test_full_profile_run_on_a_small_book(tmp_path, monkeypatch):
    # The full profile is meant for a GPU machine; here a two-page book stands in for the book,
    # with tiny speed runs, to check what the run records.
    from test_bookcache import notebook_page, write

    root = tmp_path / "book"
    write(root / "_toc.yml", "format: jb-book\nroot: index\nchapters:\n  - file: book/en/cnn/lenet\n"
          "  - file: book/en/basics/ml-basics\n")
    write(root / "index.md", "# Index\n")
    write(root / "_config.yml", "execute:\n  timeout: 60\n")
    write(root / "book/en/cnn/lenet.md", notebook_page(
        "LeNet", "Prose.", "import os\nfrom dlnotes import book\n"
        "book.glue('main_test_acc', 0.25 if os.environ['DLNOTES_PROFILE'] == 'full' else 0.75)"))
    write(root / "book/en/basics/ml-basics.md", notebook_page("Basics", "Prose.", "print('no headline here')"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setattr(buildbench, "SPEED_RUNS", (("lenet", 28, 64),))
    full = buildbench.run_full(root, tmp_path / "scratch", workers=1, log=lambda line: None)
    assert full["profile"] == "full" and full["failed"] == []
    assert [r["chapter"] for r in sorted(full["chapters"], key=lambda r: r["chapter"])] == ["basics/ml-basics", "cnn/lenet"]
    lenet = next(r for r in full["chapters"] if r["chapter"] == "cnn/lenet")
    assert (lenet["metric"], lenet["value"]) == ("test accuracy", 0.25) and lenet["seconds"] > 0  # ran as "full"
    other = next(r for r in full["chapters"] if r["chapter"] == "basics/ml-basics")
    assert other["value"] is None
    assert set(full["images_per_s"]) == {"lenet 28px"} and full["images_per_s"]["lenet 28px"] > 0
    assert full["machine"]["device"]


def test_every_headline_is_glued_by_its_chapter():
    import re

    for chapter, glue, _ in buildbench.HEADLINES:
        page = (ROOT / "book" / "en" / f"{chapter}.md").read_text(encoding="utf8")
        keys = re.findall(r'book\.glue\(f?"([^"]+)"', page)  # an f-string's {...} stands for any name
        patterns = [re.escape(key).replace(r"\{", "{").replace(r"\}", "}") for key in keys]
        patterns = [re.sub(r"\{[^}]*\}", "[a-z0-9_]+", p) for p in patterns]
        assert any(re.fullmatch(p, glue) for p in patterns), f"{chapter} glues no {glue!r}"
