"""Sphinx extension: serve MathJax from the site itself, and give each page its own language.

The pages then typeset formulas with no network (a downloaded copy of the site, a reader behind a
firewall that blocks public CDNs, this project's offline build machines). MathJax 3 comes from
the PyPI package ``django-static-mathjax`` (import name ``mathjax``), which ships its ``es5``
build; only the parts the pages use are copied, into ``_static/mathjax``.

Every page under ``book/zh/`` declares ``<html lang="zh-CN">``, every other page the configured
language (``en``): screen readers then read each page in its own language, and browsers pick
Chinese glyph shapes for Chinese text instead of falling back to Japanese ones.

Enable with ``extensions = ["dlnotes.bookassets"]`` and ``mathjax_path =
"mathjax/tex-mml-chtml.js"`` (a path relative to ``_static``).
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

# The combined TeX + MathML input / CommonHTML output component, plus what it loads on demand:
# TeX extensions (e.g. \boldsymbol), the CHTML fonts, the menu and the accessibility code.
MATHJAX_PARTS = ("tex-mml-chtml.js", "input", "output/chtml.js", "output/chtml", "a11y", "ui", "adaptors", "sre")


def mathjax_es5_dir() -> Path:
    spec = importlib.util.find_spec("mathjax")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("MathJax is not installed: pip install django-static-mathjax (see requirements.txt)")
    es5 = Path(list(spec.submodule_search_locations)[0]) / "static" / "mathjax" / "es5"
    if not (es5 / "tex-mml-chtml.js").is_file():
        raise RuntimeError(f"no MathJax es5 build at {es5}")
    return es5


def copy_mathjax(destination: Path) -> int:
    """Copy the MathJax parts into ``destination``; return the number of files copied."""
    es5, copied = mathjax_es5_dir(), 0
    for part in MATHJAX_PARTS:
        source = es5 / part
        files = [source] if source.is_file() else sorted(p for p in source.rglob("*") if p.is_file())
        for file in files:
            target = destination / file.relative_to(es5)
            if target.is_file() and target.stat().st_size == file.stat().st_size:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(file, target)
            copied += 1
    return copied


def _check_config(app, config) -> None:
    path = config.mathjax_path or ""
    if "://" in path or not path.startswith("mathjax/"):
        raise RuntimeError(f"dlnotes.bookassets expects mathjax_path = 'mathjax/tex-mml-chtml.js', got {path!r}")


def _copy(app, exception) -> None:
    if exception is None and app.builder.format == "html":
        copy_mathjax(Path(app.outdir) / "_static" / "mathjax")


PAGE_LANGUAGES = {"book/zh/": "zh-CN", "book/en/": "en"}  # folder prefix -> <html lang>


def page_language(pagename: str, *, default: str | None) -> str | None:
    """The ``<html lang>`` of a page: by its language folder, else the site's ``default``."""
    return next((lang for prefix, lang in PAGE_LANGUAGES.items() if pagename.startswith(prefix)), default)


def _set_page_language(app, pagename, templatename, context, doctree) -> None:
    context["language"] = page_language(pagename, default=app.config.language)


def setup(app) -> dict:
    app.connect("config-inited", _check_config)
    app.connect("html-page-context", _set_page_language)
    app.connect("build-finished", _copy)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
