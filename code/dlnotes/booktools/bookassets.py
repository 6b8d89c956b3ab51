"""Sphinx extension: serve MathJax and a CJK font from the site itself; give each page its language.

The pages then typeset formulas with no network (a downloaded copy of the site, a reader behind a
firewall that blocks public CDNs, this project's offline build machines). MathJax 3 comes from
the PyPI package ``django-static-mathjax`` (import name ``mathjax``), which ships its ``es5``
build; only the parts the pages use are copied, into ``_static/mathjax``.

Chinese text needs a CJK font. Readers' systems nearly always have one, and the pages ask for the
usual ones first; where none is installed (a bare Linux, some e-readers) the browser falls back to a
web font served with the site: Noto Sans CJK SC (from the PyPI package ``mplfonts``, which also
draws the figures' Chinese labels) cut down to exactly the CJK characters the built pages contain.

Every page under ``book/zh/`` declares ``<html lang="zh-CN">``, every other page the configured
language (``en``): screen readers then read each page in its own language, and browsers pick
Chinese glyph shapes for Chinese text instead of falling back to Japanese ones.

Enable with ``extensions = ["dlnotes.booktools.bookassets"]`` and ``mathjax_path =
"mathjax/tex-mml-chtml.js"`` (a path relative to ``_static``).
"""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path

from dlnotes.booktools.widecode import WIDE_CSS

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
        raise RuntimeError(f"dlnotes.booktools.bookassets expects mathjax_path = 'mathjax/tex-mml-chtml.js', got {path!r}")


CJK_FONT_FAMILY = "DLNotes CJK"
CJK_FONT_FILE = "fonts/dlnotes-cjk.woff2"  # under _static
SITE_CSS = "dlnotes.css"  # under _static: the web font, and long formulas on phones
SITE_JS = "dlnotes.js"  # under _static: the sidebar buttons (below)
# pydata-sphinx-theme 0.17.1 binds only the FIRST .primary-toggle and .secondary-toggle of a page
# to its sidebar dialogs, and with sphinx-book-theme that first one is a hidden button of the
# header; the buttons a reader sees (the hamburger, "On this page") then open nothing. Each
# visible button passes its click on to the bound one.
TOGGLE_JS = """\
function dlnotesForwardToggles() {
  for (const kind of ["primary", "secondary"]) {
    const [bound, ...others] = document.querySelectorAll(`.${kind}-toggle`);
    for (const button of others) {
      button.addEventListener("click", (event) => {
        event.preventDefault();
        event.stopPropagation();
        bound.click();
      });
    }
  }
}
if (document.readyState === "loading") {
  document.addEventListener("DOMContentLoaded", dlnotesForwardToggles);
} else {
  dlnotesForwardToggles();
}
"""
# The sidebar lists the book twice, 中文 then English (_toc.yml's two parts): a page shows only its
# own language's tree (<html lang> comes from page_language; the landing page shows both). The
# theme's top bar holds nothing but a second search box on a desktop: there it is dropped.
LAYOUT_CSS = """\
html[lang="en"] .bd-docs-nav .bd-toc-item > p.caption:first-of-type,
html[lang="en"] .bd-docs-nav .bd-toc-item > ul.bd-sidenav:nth-of-type(2),
html[lang="zh-CN"] .bd-docs-nav .bd-toc-item > p.caption:last-of-type,
html[lang="zh-CN"] .bd-docs-nav .bd-toc-item > ul.bd-sidenav:nth-of-type(3) { display: none; }
@media (min-width: 960px) { .bd-header { display: none; } }
"""
# CJK ideographs, their punctuation and full-width forms: what the web font must cover
_CJK = re.compile(r"[\u2e80-\u2fdf\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef]")
# System CJK fonts first (macOS, Windows, Linux, Android): the web font only loads where all are missing.
_SYSTEM_CJK = '"PingFang SC", "Hiragino Sans GB", "Microsoft YaHei", "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Micro Hei"'


def cjk_characters(html_dir: Path) -> str:
    """Every CJK character in the built pages (and the search index), sorted: the font's subset."""
    found: set[str] = set()
    for path in sorted(Path(html_dir).rglob("*.html")) + sorted(Path(html_dir).glob("searchindex.js")):
        found.update(_CJK.findall(path.read_text("utf8", errors="replace")))
    return "".join(sorted(found))


def write_cjk_font(static: Path, characters: str) -> Path:
    """Subset Noto Sans CJK SC to ``characters`` as WOFF2 at ``static/CJK_FONT_FILE``; write the CSS.

    MathJax 3 cannot break a formula across lines, so on a narrow screen a long inline formula
    becomes its own box that scrolls sideways instead of running off the page; display formulas
    already scroll (the theme's rule).
    """
    from fontTools import subset
    from fontTools.ttLib import TTFont

    from dlnotes.plot import cjk_font_path

    source = cjk_font_path()
    if source is None:
        raise RuntimeError("the CJK web font comes from the package mplfonts: pip install mplfonts (requirements.txt)")
    target = Path(static) / CJK_FONT_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    options = subset.Options()
    options.flavor, options.hinting, options.desubroutinize = "woff2", False, True
    font = TTFont(source, recalcTimestamp=False)  # no build date inside: the same pages give the same bytes
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=[ord(c) for c in characters or "中"])
    subsetter.subset(font)
    font.flavor = "woff2"
    font.save(target)
    stack = f'{_SYSTEM_CJK}, "{CJK_FONT_FAMILY}"'
    (Path(static) / SITE_CSS).write_text(
        f"/* CJK text: the system's fonts first, else the subset web font shipped with the site. */\n"
        f'@font-face {{ font-family: "{CJK_FONT_FAMILY}"; src: url("{CJK_FONT_FILE}") format("woff2"); '
        f"font-display: swap; unicode-range: U+2E80-2FDF, U+3000-30FF, U+3400-4DBF, U+4E00-9FFF, "
        f"U+F900-FAFF, U+FE30-FE4F, U+FF00-FFEF; }}\n"
        f"html {{ --pst-font-family-base: var(--pst-font-family-base-system), {stack}, sans-serif;\n"
        f"       --pst-font-family-heading: var(--pst-font-family-base-system), {stack}, sans-serif; }}\n"
        "@media (max-width: 720px) {\n"
        '  mjx-container[jax="CHTML"]:not([display="true"]) { display: inline-block; max-width: 100%;\n'
        "    overflow-x: auto; overflow-y: hidden; vertical-align: middle; }\n"
        "}\n" + LAYOUT_CSS + WIDE_CSS,
        "utf8")
    return target


FONTAWESOME_JS = re.compile(r'[ \t]*<script defer src="[^"]*_static/scripts/fontawesome\.js[^"]*"></script>\n?')


def drop_fontawesome_js(html_dir: Path) -> int:
    """Remove pydata-sphinx-theme's 1.5 MB ``fontawesome.js`` from every page; return how many had it.

    The script turns each ``<i class="fa-...">`` icon into an inline SVG. The theme's CSS already
    draws the same icons with Font Awesome's web fonts (``_static/vendor/fontawesome``), which a
    browser loads only for the icons a page shows, so the script only costs weight and time.
    """
    html_dir = Path(html_dir)
    count = 0
    for path in html_dir.rglob("*.html"):
        text = path.read_text("utf8")
        new, n = FONTAWESOME_JS.subn("", text)
        if n:
            path.write_text(new, "utf8")
            count += 1
    for leftover in (html_dir / "_static" / "scripts").glob("fontawesome.js*"):
        leftover.unlink()
    return count


def _copy(app, exception) -> None:
    if exception is None and app.builder.format == "html":
        static = Path(app.outdir) / "_static"
        copy_mathjax(static / "mathjax")
        translate_theme_strings(Path(app.outdir))  # before the font subset: it adds Chinese characters
        write_cjk_font(static, cjk_characters(Path(app.outdir)))
        (static / SITE_JS).write_text(TOGGLE_JS, "utf8")
        drop_fontawesome_js(Path(app.outdir))


PAGE_LANGUAGES = {"book/zh/": "zh-CN", "book/en/": "en"}  # folder prefix -> <html lang>

# The theme's own words on a page (buttons, tooltips, links), which Sphinx renders in the site's one
# language (en). Chinese pages get them in Chinese.
THEME_STRINGS_ZH = {
    "Search": "搜索", "Search this book...": "搜索本书……", "Contents": "目录", "On this page": "本页内容",
    "Skip to main content": "跳到正文", "Back to top": "回到顶部", "previous": "上一页", "next": "下一页",
    "previous page": "上一页", "next page": "下一页", "Color mode": "颜色模式", "Light": "浅色",
    "Dark": "深色", "System Settings": "跟随系统", "Site navigation": "网站导航", "Main": "主菜单",
    "Toggle primary sidebar": "展开或收起目录", "Toggle secondary sidebar": "展开或收起本页内容",
    "Launch interactive content": "在线运行", "Launch on Binder": "在 Binder 中运行",
    "Launch on Colab": "在 Colab 中运行", "Download this page": "下载本页", "Download notebook file": "下载笔记本文件",
    "Download source file": "下载源文件", "Print to PDF": "打印为 PDF", "Fullscreen mode": "全屏模式",
    "Index": "索引", "Version warning": "版本提示", "Click to show": "点击显示", "Click to hide": "点击隐藏",
}
_THEME_TEXT = re.compile(r">(\s*)(" + "|".join(map(re.escape, sorted(THEME_STRINGS_ZH, key=len, reverse=True))) + r")(\s*)<")
_THEME_ATTR = re.compile(r'((?:title|aria-label|placeholder|data-bs-title)=")(' +
                         "|".join(map(re.escape, THEME_STRINGS_ZH)) + r')"')
_THEME_HINT = re.compile(r"(let toggleHint(?:Show|Hide) = ')(Click to show|Click to hide)(';)")


def translate_theme_strings_zh(html: str) -> str:
    """One Chinese page with the theme's English words (outside the article) in Chinese."""
    start, end = html.find("<article"), html.rfind("</article>")
    if start < 0 or end < 0:
        start = end = len(html)

    def outside(part: str) -> str:
        part = _THEME_TEXT.sub(lambda m: f">{m[1]}{THEME_STRINGS_ZH[m[2]]}{m[3]}<", part)
        part = _THEME_ATTR.sub(lambda m: f'{m[1]}{THEME_STRINGS_ZH[m[2]]}"', part)
        return _THEME_HINT.sub(lambda m: f"{m[1]}{THEME_STRINGS_ZH[m[2]]}{m[3]}", part)

    return outside(html[:start]) + html[start:end] + outside(html[end:])


def translate_theme_strings(html_dir: Path) -> int:
    """Translate the theme's words on every Chinese page (book/zh/); return how many pages changed."""
    changed = 0
    for path in sorted((Path(html_dir) / "book" / "zh").rglob("*.html")):
        text = path.read_text("utf8")
        new = translate_theme_strings_zh(text)
        if new != text:
            path.write_text(new, "utf8")
            changed += 1
    return changed


def page_language(pagename: str, *, default: str | None) -> str | None:
    """The ``<html lang>`` of a page: by its language folder, else the site's ``default``."""
    return next((lang for prefix, lang in PAGE_LANGUAGES.items() if pagename.startswith(prefix)), default)


def _set_page_language(app, pagename, templatename, context, doctree) -> None:
    context["language"] = page_language(pagename, default=app.config.language)
    if "body" in context:
        label = "图" if context["language"].startswith("zh") else "Fig."
        context["body"] = renumber_figures(context["body"], local_figure_numbers(app.env.toc_fignumbers), label=label)


FIGURE_NUMBER = re.compile(r'(<span class="(?:caption-number|std std-numref)">)Fig\. ([\d.]+)')


def local_figure_numbers(toc_fignumbers: dict) -> dict[str, str]:
    """Each figure's number across the book -> its number on its own page: {"5": "2", ...}.

    Without numbered sections Sphinx counts figures through the whole book, so the first English
    figure would come after every Chinese one. Twins have the same figures in the same order, so
    they get the same numbers. (Sphinx's numbers are left alone: changing them in the environment
    would make it rewrite every page with a figure on every build.)
    """
    mapping = {}
    for figures_by_type in toc_fignumbers.values():
        for i, number in enumerate(sorted(figures_by_type.get("figure", {}).values()), start=1):
            mapping[".".join(map(str, number))] = str(i)
    return mapping


def renumber_figures(body: str, mapping: dict[str, str], *, label: str) -> str:
    """Captions and figure references of a page with per-page numbers and the page's word for "Fig."."""
    return FIGURE_NUMBER.sub(lambda m: f"{m[1]}{label} {mapping.get(m[2], m[2])}", body)


def unique_scripts(scripts: list) -> list:
    """The page's scripts, each once: sphinx-thebe registers its inline configuration twice (once
    with filename None, once with ""), and the second ``const THEBE_JS_URL`` is a script error."""
    seen, unique = set(), []
    for script in scripts:
        key = (getattr(script, "filename", None) or "", tuple(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    return unique


def _dedupe_scripts(app, pagename, templatename, context, doctree) -> None:
    if "script_files" in context:
        context["script_files"] = unique_scripts(context["script_files"])


def setup(app) -> dict:
    app.connect("config-inited", _check_config)
    app.connect("html-page-context", _set_page_language)
    app.connect("html-page-context", _dedupe_scripts, priority=900)  # after every extension added its own
    app.add_css_file(SITE_CSS)
    app.add_js_file(SITE_JS, loading_method="defer")
    app.connect("build-finished", _copy)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
