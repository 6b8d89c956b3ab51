"""dlnotes.booktools.bookassets: MathJax is copied into the site, so formulas need no CDN."""

from pathlib import Path
from types import SimpleNamespace

import pytest

from dlnotes.booktools import bookassets

ROOT = Path(__file__).resolve().parents[2]


def test_copy_mathjax_brings_the_component_its_fonts_and_tex_extensions(tmp_path):
    copied = bookassets.copy_mathjax(tmp_path)
    assert copied > 50
    main = tmp_path / "tex-mml-chtml.js"
    assert main.stat().st_size > 500_000 and b"MathJax" in main.read_bytes()[:200_000]
    assert (tmp_path / "output/chtml/fonts/woff-v2/MathJax_Main-Regular.woff").is_file()
    assert (tmp_path / "input/tex/extensions/boldsymbol.js").is_file()  # autoloaded by \boldsymbol
    assert bookassets.copy_mathjax(tmp_path) == 0  # a second copy skips what is there


def test_config_must_point_mathjax_at_the_local_copy():
    bookassets._check_config(None, SimpleNamespace(mathjax_path="mathjax/tex-mml-chtml.js"))
    with pytest.raises(RuntimeError, match="mathjax_path"):
        bookassets._check_config(None, SimpleNamespace(mathjax_path="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"))


def test_the_book_uses_the_local_mathjax():
    import yaml

    config = yaml.safe_load((ROOT / "_config.yml").read_text("utf8"))
    assert "dlnotes.booktools.bookassets" in config["sphinx"]["extra_extensions"]
    assert config["sphinx"]["config"]["mathjax_path"] == "mathjax/tex-mml-chtml.js"


def test_each_page_declares_its_own_language():
    assert bookassets.page_language("book/zh/basics/mlp", default="en") == "zh-CN"
    assert bookassets.page_language("book/en/basics/mlp", default="zh") == "en"
    assert bookassets.page_language("book/index", default="en") == "en"  # the bilingual landing page
    assert bookassets.page_language("search", default=None) is None


def test_the_html_tag_carries_the_page_language(tmp_path):
    """A real Sphinx build: the theme writes context["language"] into <html lang>."""
    from sphinx.application import Sphinx

    src = tmp_path / "src"
    for page, title in (("index", "Home"), ("book/zh/a", "中文页"), ("book/en/a", "English page")):
        (src / page).parent.mkdir(parents=True, exist_ok=True)
        (src / f"{page}.rst").write_text(f"{title}\n{'=' * 20}\n\ntext\n", "utf8")
    (src / "conf.py").write_text(
        "extensions = ['sphinx_thebe', 'dlnotes.booktools.bookassets']\nlanguage = 'en'\nmathjax_path = 'mathjax/tex-mml-chtml.js'\n"
        "html_theme = 'sphinx_book_theme'\nexclude_patterns = []\n", "utf8")
    out = tmp_path / "out"
    app = Sphinx(str(src), str(src), str(out), str(tmp_path / "doctrees"), "html", status=None, warning=None,
                 freshenv=True)
    app.build()
    head = lambda page: (out / f"{page}.html").read_text("utf8").split("<head>")[0]  # noqa: E731
    assert 'lang="zh-CN"' in head("book/zh/a")
    assert 'lang="en"' in head("book/en/a") and 'lang="en"' in head("index")
    # the CJK web font: linked from every page, cut down to the characters the pages contain
    assert 'href="_static/dlnotes.css' in (out / "index.html").read_text("utf8")
    assert (out / "_static" / bookassets.CJK_FONT_FILE).read_bytes()[:4] == b"wOF2"
    # sphinx-thebe's inline configuration once (twice is a script error on every page)
    assert (out / "index.html").read_text("utf8").count("const THEBE_JS_URL") == 1


def test_cjk_characters_are_collected_from_every_page(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a/x.html").write_text("<p>深度学习 deep，学习</p>", "utf8")
    (tmp_path / "y.html").write_text("<title>笔记</title>", "utf8")
    (tmp_path / "searchindex.js").write_text('Search.setIndex({"terms": {"卷积": 1}})', "utf8")
    assert bookassets.cjk_characters(tmp_path) == "".join(sorted("深度学习，笔记卷积"))


def test_the_web_font_covers_exactly_the_characters_asked_for_and_is_reproducible(tmp_path):
    from fontTools.ttLib import TTFont

    text = "深度学习笔记，卷积"
    font = bookassets.write_cjk_font(tmp_path / "a", text)
    cmap = TTFont(font).getBestCmap()
    assert {chr(code) for code in cmap} == set(text)
    assert font.stat().st_size < 40_000  # a handful of glyphs, not the 16 MB font
    again = bookassets.write_cjk_font(tmp_path / "b", text)
    assert again.read_bytes() == font.read_bytes()  # no timestamp inside: same pages, same bytes
    css = (tmp_path / "a" / bookassets.SITE_CSS).read_text("utf8")
    assert f'url("{bookassets.CJK_FONT_FILE}")' in css and "unicode-range" in css
    # system CJK fonts come first, so readers who have one never download the web font
    stack = css[css.index("--pst-font-family-base:"):]
    assert stack.index('"Noto Sans CJK SC"') < stack.index(f'"{bookassets.CJK_FONT_FAMILY}"')


def test_identical_scripts_are_kept_once():
    from sphinx.builders.html._assets import _JavaScript

    config = 'const THEBE_JS_URL = "x"'
    scripts = [_JavaScript(None, body=config), _JavaScript("_static/a.js", **{"async": "async"}),
               _JavaScript("", body=config), _JavaScript("_static/a.js"), _JavaScript("_static/b.js")]
    kept = bookassets.unique_scripts(scripts)
    assert kept == [scripts[0], scripts[1], scripts[3], scripts[4]]  # same file, other attributes: kept


def test_fontawesome_js_is_dropped_from_every_page_and_the_site(tmp_path):
    tag = '<script defer src="../_static/scripts/fontawesome.js?digest=55c26ed414f5f8a31ebb"></script>\n'
    (tmp_path / "_static" / "scripts").mkdir(parents=True)
    (tmp_path / "_static" / "scripts" / "fontawesome.js").write_text("x" * 100, "utf8")
    (tmp_path / "_static" / "scripts" / "bootstrap.js").write_text("keep", "utf8")
    (tmp_path / "a").mkdir()
    page = f'<head>\n  {tag}<script defer src="../_static/scripts/bootstrap.js"></script>\n</head><i class="fa-solid fa-list"></i>'
    (tmp_path / "a" / "p.html").write_text(page, "utf8")
    (tmp_path / "plain.html").write_text("<head></head>", "utf8")
    assert bookassets.drop_fontawesome_js(tmp_path) == 1
    left = (tmp_path / "a" / "p.html").read_text("utf8")
    assert "fontawesome.js" not in left and "bootstrap.js" in left and 'class="fa-solid fa-list"' in left
    assert not (tmp_path / "_static" / "scripts" / "fontawesome.js").exists()
    assert (tmp_path / "_static" / "scripts" / "bootstrap.js").exists()
    assert bookassets.drop_fontawesome_js(tmp_path) == 0  # nothing left to drop


def test_figures_are_numbered_per_page_and_labelled_in_the_pages_language():
    toc_fignumbers = {"book/zh/a": {"figure": {"fig-x-zh": (2,), "fig-w-zh": (1,)}},
                      "book/en/a": {"figure": {"fig-w-en": (4,), "fig-x-en": (5,)}, "table": {"t": (7,)}},
                      "book/en/b": {}}
    mapping = bookassets.local_figure_numbers(toc_fignumbers)
    assert mapping == {"1": "1", "2": "2", "4": "1", "5": "2"}
    body = ('<span class="caption-number">Fig. 5 </span><p>see <span class="std std-numref">Fig. 4</span>,'
            ' Fig. 5 in running text stays</p>')
    assert bookassets.renumber_figures(body, mapping, label="图") == (
        '<span class="caption-number">图 2 </span><p>see <span class="std std-numref">图 1</span>,'
        ' Fig. 5 in running text stays</p>')
    assert bookassets.renumber_figures(body, mapping, label="Fig.").startswith('<span class="caption-number">Fig. 2 ')


def test_theme_words_outside_the_article_are_translated_on_chinese_pages():
    html = ('<button title="Search" aria-label="Search"><span>Search</span></button>'
            '<script>let toggleHintShow = \'Click to show\';</script>'
            '<article><p>Search the data: previous results.</p><p>Contents</p></article>'
            '<a class="left-prev" title="previous page"><p class="prev-next-title">previous</p></a>')
    out = bookassets.translate_theme_strings_zh(html)
    assert out == ('<button title="搜索" aria-label="搜索"><span>搜索</span></button>'
                   '<script>let toggleHintShow = \'点击显示\';</script>'
                   '<article><p>Search the data: previous results.</p><p>Contents</p></article>'
                   '<a class="left-prev" title="上一页"><p class="prev-next-title">上一页</p></a>')
    assert bookassets.translate_theme_strings_zh(out) == out  # translating twice changes nothing


def test_translate_theme_strings_touches_only_chinese_pages(tmp_path):
    for lang in ("zh", "en"):
        page = tmp_path / "book" / lang / "a.html"
        page.parent.mkdir(parents=True)
        page.write_text("<span>Contents</span><article></article>", "utf8")
    assert bookassets.translate_theme_strings(tmp_path) == 1
    assert (tmp_path / "book/zh/a.html").read_text("utf8") == "<span>目录</span><article></article>"
    assert (tmp_path / "book/en/a.html").read_text("utf8") == "<span>Contents</span><article></article>"
