"""Tests of dlnotes.booktools.bookcache: the import scan, the dependency digest, and a real Sphinx build."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from dlnotes.booktools.bookcache import (STATE_FILE, dependency_closure, dependency_digest, imported_modules,
                               package_modules)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), "utf8")
    return path


# A fake package:
#   pkg/__init__.py
#   pkg/a.py        imports pkg.b (relatively), which imports pkg.c
#   pkg/b.py
#   pkg/c.py
#   pkg/d.py        imported only inside a function of pkg.sub.m
#   pkg/lonely.py   imported by nothing
#   pkg/sub/__init__.py   imports .m
#   pkg/sub/m.py    imports ..c at the top and pkg.d inside a function
FAKE_PACKAGE = {
    "__init__.py": 'VERSION = "1"\n',
    "a.py": """
        import os
        from . import b
        from .b import f

        VALUE = 1
        """,
    "b.py": """
        import numpy as np
        from pkg.c import g

        def f():
            return g()
        """,
    "c.py": """
        def g():
            return 3
        """,
    "d.py": "D = 4\n",
    "lonely.py": "L = 5\n",
    "sub/__init__.py": "from .m import h\n",
    "sub/m.py": """
        from ..c import g

        def h():
            from pkg import d
            return d.D + g()
        """,
}


@pytest.fixture
def pkg_dir(tmp_path) -> Path:
    root = tmp_path / "pkg"
    for name, text in FAKE_PACKAGE.items():
        write(root / name, text)
    return root


# ---------------------------------------------------------------- package_modules


def test_package_modules(pkg_dir):
    modules = package_modules(pkg_dir, "pkg")
    assert modules == {
        "pkg": pkg_dir / "__init__.py",
        "pkg.a": pkg_dir / "a.py",
        "pkg.b": pkg_dir / "b.py",
        "pkg.c": pkg_dir / "c.py",
        "pkg.d": pkg_dir / "d.py",
        "pkg.lonely": pkg_dir / "lonely.py",
        "pkg.sub": pkg_dir / "sub" / "__init__.py",
        "pkg.sub.m": pkg_dir / "sub" / "m.py",
    }


# ---------------------------------------------------------------- imported_modules


@pytest.mark.parametrize("source, expected", [
    ("import pkg", {"pkg"}),
    ("import pkg.a", {"pkg.a"}),
    ("import pkg.a as x", {"pkg.a"}),
    ("import pkg.a, pkg.sub.m", {"pkg.a", "pkg.sub.m"}),
    ("from pkg import a, b", {"pkg", "pkg.a", "pkg.b"}),
    ("from pkg.b import f as ff", {"pkg.b", "pkg.b.f"}),
    ("from pkg.sub import m", {"pkg.sub", "pkg.sub.m"}),
    # imports anywhere in the code count: in functions, classes, try blocks
    ("def f():\n    import pkg.d\n    return pkg.d.D", {"pkg.d"}),
    ("class C:\n    def m(self):\n        from pkg import c\n", {"pkg", "pkg.c"}),
    ("try:\n    from pkg.a import VALUE\nexcept ImportError:\n    pass", {"pkg.a", "pkg.a.VALUE"}),
    # other packages are ignored, including ones whose name merely starts with the package's
    ("import os, sys\nfrom collections import OrderedDict\nimport numpy as np", set()),
    ("import pkgother\nimport pkg_extra.a\nfrom pkgx import a", set()),
    ("x = 1\nprint('import pkg')", set()),
])
def test_imported_modules_absolute(source, expected):
    assert imported_modules(source, package="pkg") == expected


@pytest.mark.parametrize("source, parent, expected", [
    ("from . import b", "pkg", {"pkg", "pkg.b"}),
    ("from .b import f", "pkg", {"pkg.b", "pkg.b.f"}),
    ("from . import a, b", "pkg", {"pkg", "pkg.a", "pkg.b"}),
    ("from ..c import g", "pkg.sub", {"pkg.c", "pkg.c.g"}),
    ("from .. import d", "pkg.sub", {"pkg", "pkg.d"}),
    ("from . import m", "pkg.sub", {"pkg.sub", "pkg.sub.m"}),
    ("from .m import h", "pkg.sub", {"pkg.sub.m", "pkg.sub.m.h"}),
    ("def f():\n    from .b import f\n", "pkg", {"pkg.b", "pkg.b.f"}),
])
def test_imported_modules_relative(source, parent, expected):
    assert imported_modules(source, package="pkg", parent=parent) == expected


def test_relative_imports_without_a_parent_are_ignored():
    # notebook code has no package to be relative to
    assert imported_modules("from . import b\nfrom .b import f", package="pkg") == set()


# ---------------------------------------------------------------- dependency_closure


def test_dependency_closure_is_transitive(pkg_dir):
    modules = package_modules(pkg_dir, "pkg")
    # a -> b (relative import) -> c (absolute import); pkg's __init__ always runs first
    assert dependency_closure({"pkg.a"}, modules, package="pkg") == {"pkg", "pkg.a", "pkg.b", "pkg.c"}
    assert dependency_closure({"pkg.c"}, modules, package="pkg") == {"pkg", "pkg.c"}


def test_dependency_closure_includes_parent_packages(pkg_dir):
    modules = package_modules(pkg_dir, "pkg")
    expected = {"pkg", "pkg.sub", "pkg.sub.m", "pkg.c", "pkg.d"}  # pkg.d: imported inside a function
    assert dependency_closure({"pkg.sub.m"}, modules, package="pkg") == expected
    # importing the subpackage runs its __init__, which imports .m (relative to pkg.sub itself)
    assert dependency_closure({"pkg.sub"}, modules, package="pkg") == expected


def test_dependency_closure_drops_names_that_are_not_modules(pkg_dir):
    modules = package_modules(pkg_dir, "pkg")
    roots = imported_modules("from pkg.b import f\nfrom pkg.a import VALUE", package="pkg")
    assert roots == {"pkg.b", "pkg.b.f", "pkg.a", "pkg.a.VALUE"}
    assert dependency_closure(roots, modules, package="pkg") == {"pkg", "pkg.a", "pkg.b", "pkg.c"}
    assert dependency_closure({"pkg.missing", "pkg.b.f"}, modules, package="pkg") == set()


def test_dependency_closure_survives_import_cycles(tmp_path):
    root = tmp_path / "cyc"
    write(root / "__init__.py", "from . import x\n")
    write(root / "x.py", "from cyc import y\n")
    write(root / "y.py", "from . import x\n")
    write(root / "z.py", "")
    modules = package_modules(root, "cyc")
    assert dependency_closure({"cyc.y"}, modules, package="cyc") == {"cyc", "cyc.x", "cyc.y"}


# ---------------------------------------------------------------- dependency_digest


def digest(code: str, pkg_dir: Path) -> str:
    return dependency_digest(code, package_dir=pkg_dir, package="pkg")


def test_digest_is_empty_without_package_imports(pkg_dir):
    assert digest("import numpy as np\nx = np.zeros(3)", pkg_dir) == ""
    assert digest("", pkg_dir) == ""
    assert digest("import pkg.missing", pkg_dir) == ""  # no such module: nothing to depend on


def test_digest_is_stable_and_depends_on_the_modules_not_the_code(pkg_dir):
    d = digest("from pkg import a", pkg_dir)
    assert len(d) == 64 and int(d, 16) >= 0
    assert digest("from pkg import a", pkg_dir) == d
    # the same modules reached by other code: the same digest
    assert digest("import pkg.a as A\nprint(A.VALUE * 2)", pkg_dir) == d
    assert digest("import pkg.c", pkg_dir) != d


@pytest.mark.parametrize("changed", ["a.py", "b.py", "c.py", "__init__.py"])
def test_digest_changes_when_a_dependency_changes(pkg_dir, changed):
    code = "from pkg.a import VALUE"
    before = digest(code, pkg_dir)
    path = pkg_dir / changed
    path.write_text(path.read_text("utf8") + "\n# edited\n", "utf8")
    assert digest(code, pkg_dir) != before


@pytest.mark.parametrize("changed", ["d.py", "lonely.py", "sub/m.py", "sub/__init__.py"])
def test_digest_ignores_unrelated_modules(pkg_dir, changed):
    code = "from pkg.a import VALUE"
    before = digest(code, pkg_dir)
    path = pkg_dir / changed
    path.write_text(path.read_text("utf8") + "\n# edited\n", "utf8")
    write(pkg_dir / "new_module.py", "NEW = 1\n")
    assert digest(code, pkg_dir) == before


def test_digest_follows_imports_inside_functions(pkg_dir):
    code = "from pkg.sub.m import h"
    before = digest(code, pkg_dir)
    write(pkg_dir / "d.py", "D = 40\n")  # pkg.d is imported only inside h()
    assert digest(code, pkg_dir) != before


# ---------------------------------------------------------------- a real Sphinx build

FRONT_MATTER = """\
---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---
"""


def notebook_page(title: str, prose: str, code: str, options: str = "") -> str:
    return f"{FRONT_MATTER}\n# {title}\n\n{prose}\n\n```{{code-cell}} python\n{options}{code}\n```\n"


class Book:
    """A Sphinx project in ``tmp_path`` that executes MyST notebooks importing ``fakepkg``."""

    def __init__(self, tmp_path: Path, monkeypatch, pages: dict[str, str], extra_conf: str = ""):
        self.pkg = tmp_path / "fakepkg"
        write(self.pkg / "__init__.py", "")
        write(self.pkg / "a.py", 'VALUE = "first_alpha_value"\n')
        write(self.pkg / "b.py", 'VALUE = "first_beta_value"\n')
        self.cache_path = tmp_path / ".jupyter_cache"
        self.src = tmp_path / "book"
        self.out = self.src / "_build" / "html"
        write(self.src / "conf.py", f"""
            project = "bookcache test"
            extensions = ["myst_nb", "dlnotes.booktools.bookcache"]
            exclude_patterns = ["_build"]
            nb_execution_mode = "cache"
            nb_execution_cache_path = {str(self.cache_path)!r}
            nb_execution_raise_on_error = True
            nb_execution_timeout = 60
            dlnotes_cache_package = "fakepkg"
            dlnotes_cache_package_dir = {str(self.pkg)!r}
            """)
        if extra_conf:
            with open(self.src / "conf.py", "a", encoding="utf8") as f:
                f.write(textwrap.dedent(extra_conf))
        write(self.src / "index.md", "# Index\n\n```{toctree}\n" + "\n".join(pages) + "\n```\n")
        for name, text in pages.items():
            write(self.src / f"{name}.md", text)
        monkeypatch.setenv("PYTHONPATH", str(tmp_path))  # the kernel imports fakepkg from here
        monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")  # no stale .pyc of an edited module
        monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
        monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "jupyter-runtime"))

    def build(self) -> int:
        from sphinx.cmd.build import build_main

        return build_main(["-b", "html", "-q", str(self.src), str(self.out)])

    def html(self, page: str) -> str:
        return (self.out / f"{page}.html").read_text("utf8")

    def records(self) -> dict[str, tuple]:
        """{page file name: (pk, created, hashkey)} of the jupyter-cache records."""
        from jupyter_cache import get_cache

        records = get_cache(str(self.cache_path)).list_cache_records()
        out = {Path(r.uri).name: (r.pk, r.created, r.hashkey) for r in records}
        assert len(out) == len(records)  # one record per page
        return out

    def state(self) -> dict[str, str]:
        return json.loads((self.cache_path / STATE_FILE).read_text("utf8"))


def test_sphinx_build_reexecutes_only_pages_whose_package_code_changed(tmp_path, monkeypatch):
    page2_code = "from fakepkg import b\nprint(b.VALUE)"
    book = Book(tmp_path, monkeypatch, {
        "page1": notebook_page("Page one", "Prose of page one.", "import fakepkg.a\nprint(fakepkg.a.VALUE)"),
        "page2": notebook_page("Page two", "Prose of page two.", page2_code),
    })

    # Build 1: both pages execute.
    assert book.build() == 0
    first = book.records()
    assert set(first) == {"page1.md", "page2.md"}
    assert "first_alpha_value" in book.html("page1") and "first_beta_value" in book.html("page2")
    state = book.state()
    assert set(state) == {"page1", "page2"}  # index.md is not a notebook
    assert state["page1"] and state["page2"] and state["page1"] != state["page2"]

    # Build 2: fakepkg/a.py changed. Page 1 executes again and shows the new value;
    # page 2 (which imports only fakepkg.b) keeps its cache record.
    write(book.pkg / "a.py", 'VALUE = "second_alpha_value_after_the_edit"\n')
    assert book.build() == 0
    second = book.records()
    assert set(second) == {"page1.md", "page2.md"}
    assert second["page2.md"] == first["page2.md"]
    assert second["page1.md"][1] > first["page1.md"][1]  # a new record, created later
    assert second["page1.md"][2] == first["page1.md"][2]  # for the same code cells
    assert "second_alpha_value_after_the_edit" in book.html("page1")
    assert "first_alpha_value" not in book.html("page1")
    assert book.state()["page2"] == state["page2"]

    # Build 3: a prose-only edit of page 2 rebuilds its HTML from the cache; nothing executes.
    write(book.src / "page2.md", notebook_page("Page two", "Edited prose of page two.", page2_code))
    assert book.build() == 0
    assert book.records() == second
    assert "Edited prose of page two." in book.html("page2")
    assert "first_beta_value" in book.html("page2")
    assert "second_alpha_value_after_the_edit" in book.html("page1")


def test_sphinx_build_after_an_interrupted_build_publishes_no_stale_output(tmp_path, monkeypatch):
    # Ctrl-C (or a killed process) while Sphinx reads page2: Sphinx keeps the environment of the
    # last complete build, so the next build must still re-read both pages.
    flag = tmp_path / "interrupt-while-reading-page2"
    book = Book(tmp_path, monkeypatch, {
        "page1": notebook_page("Page one", "Prose.", "import fakepkg.a\nprint('one', fakepkg.a.VALUE)"),
        "page2": notebook_page("Page two", "Prose.", "import fakepkg.a\nprint('two', fakepkg.a.VALUE)"),
    }, extra_conf=f"""
        import os

        def _interrupt(app, docname, source):
            if docname == "page2" and os.path.exists({str(flag)!r}):
                raise KeyboardInterrupt

        def setup(app):
            app.connect("source-read", _interrupt)
        """)
    assert book.build() == 0
    first = book.records()

    write(book.pkg / "a.py", 'VALUE = "second_alpha_value_after_the_edit"\n')
    flag.touch()
    assert book.build() == 2  # sphinx-build's exit status for KeyboardInterrupt
    interrupted = book.records()
    assert set(interrupted) == {"page1.md"}  # page1 executed with the new code, page2 not yet
    assert interrupted["page1.md"][1] > first["page1.md"][1]

    flag.unlink()
    assert book.build() == 0
    assert "one second_alpha_value_after_the_edit" in book.html("page1")
    assert "two second_alpha_value_after_the_edit" in book.html("page2")
    final = book.records()
    assert final["page1.md"] == interrupted["page1.md"]  # its record was already up to date: reused
    assert final["page2.md"][1] > first["page2.md"][1]


def test_sphinx_build_with_code_loaded_from_a_file(tmp_path, monkeypatch):
    # myst-nb reads ``:load:`` cells relative to the page; the extension must read them the same
    # way (and follow the loaded code's imports).
    book = Book(tmp_path, monkeypatch, {
        "page1": notebook_page("Page one", "Prose.", "", options=":load: snippet.py\n"),
    })
    write(book.src / "snippet.py", "import fakepkg.b\nprint('loaded', fakepkg.b.VALUE)\n")
    assert book.build() == 0
    first = book.records()
    assert "loaded first_beta_value" in book.html("page1")
    assert book.state()["page1"] != ""

    write(book.pkg / "b.py", 'VALUE = "second_beta_value_after_the_edit"\n')
    assert book.build() == 0
    assert "loaded second_beta_value_after_the_edit" in book.html("page1")
    assert book.records()["page1.md"][1] > first["page1.md"][1]
