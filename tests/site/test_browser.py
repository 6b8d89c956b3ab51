"""The built site in a real browser: every page loads cleanly, shows its figures and formulas,
declares its language, links its twin and its launch targets; search works in both languages.

Runs headless Chromium (Debian's ``chromium``) through Playwright against the site served on
127.0.0.1. Any request that leaves 127.0.0.1 counts as a failure: the site must work offline.
"""

from __future__ import annotations

import io
import json
from urllib.parse import urljoin, urlparse

import pytest

from dlnotes.booktools import booklaunch, notebooks

from conftest import ROOT, toc_pages

PAGES = toc_pages()
SETTINGS = notebooks.read_settings(ROOT)
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
WIDE_DESKTOP = {"width": 1366, "height": 768}
# Code blocks that scroll sideways, by their longest line (not outputs, and not the drawing code of
# figures, which is hidden until a reader asks for it); table headers of cell outputs taller than
# two lines of text.
LAYOUT_JS = """() => {
    const code = [], headers = new Set();
    for (const pre of document.querySelectorAll('article div[class*="highlight-"] pre')) {
        if (pre.closest('.cell_output, .tag_hide-input') || pre.clientWidth === 0) continue;
        if (pre.scrollWidth > pre.clientWidth + 1)
            code.push(pre.textContent.split('\\n').sort((a, b) => b.length - a.length)[0].slice(0, 60));
    }
    for (const th of document.querySelectorAll('article .cell_output table th')) {
        const style = getComputedStyle(th), text = document.createRange();
        const line = parseFloat(style.lineHeight) || 1.5 * parseFloat(style.fontSize);
        text.selectNodeContents(th);  // the label's own lines, not the height of its row
        if (text.getBoundingClientRect().height > 2.5 * line) headers.add(th.textContent.trim().slice(0, 40));
    }
    return {code, headers: [...headers]};
}"""

# What every formula and figure needs once the page is ready: MathJax has typeset everything.
WAIT_FOR_MATH = "() => window.MathJax && MathJax.startup ? MathJax.startup.promise.then(() => true) : true"


def typeset_counts(page) -> dict:
    """How many formulas the article has, how many MathJax typeset, and its TeX errors."""
    return page.evaluate("""() => ({
        math: document.querySelectorAll('article .math').length,
        typeset: document.querySelectorAll('article .math mjx-container').length,
        errors: [...document.querySelectorAll('mjx-merror')].map(e => e.textContent)})""")


class Visit:
    """One page opened in a fresh browser context, with everything that went wrong on the way."""

    def __init__(self, browser, url: str, **context_options):
        self.context = browser.new_context(**context_options)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(f"console: {m.text}"))
        self.page.on("pageerror", lambda e: self.errors.append(f"script error: {e}"))
        self.page.on("requestfailed", lambda r: self.errors.append(f"request failed: {r.url} ({r.failure})"))
        self.page.on("response", lambda r: r.status >= 400 and self.errors.append(f"HTTP {r.status}: {r.url}"))
        self.page.on("request", lambda r: urlparse(r.url).hostname not in ("127.0.0.1", None)
                     and r.url.startswith("http") and self.errors.append(f"left the site: {r.url}"))
        self.response = self.page.goto(url, wait_until="networkidle")
        self.page.evaluate(WAIT_FOR_MATH)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.context.close()


def web_font_status(page, text: str) -> list[str]:
    """Ask the browser to load the site's CJK web font for ``text``; the status of each face."""
    return page.evaluate(f"""() => document.fonts.load('16px "DLNotes CJK"', {text!r})
        .then(faces => faces.map(f => f.status))""")


@pytest.fixture(scope="module")
def chapters(site) -> set[str]:
    """The pages with executed code, from the build (the ones with launch links)."""
    return set(notebooks.chapter_pages(site.parent))


def test_every_toc_page_was_built(site):
    missing = [page for page in PAGES if not (site / f"{page}.html").is_file()]
    assert not missing, f"pages in _toc.yml but not in the site: {missing}"


@pytest.mark.parametrize("pagename", PAGES)
def test_page(browser, base_url, site, chapters, pagename):
    url = urljoin(base_url, f"{pagename}.html")
    with Visit(browser, url, viewport=DESKTOP) as visit:
        page = visit.page
        assert visit.response.status == 200
        # loads with no console errors and no failed requests
        assert visit.errors == [], "\n".join(visit.errors)

        # the page declares its own language
        expected_lang = "zh-CN" if pagename.startswith("book/zh/") else "en"
        assert page.evaluate("document.documentElement.lang") == expected_lang

        # every figure is loaded and has a rendered size
        figures = page.evaluate("""() => [...document.querySelectorAll('article img')].map(img => ({
            src: img.getAttribute('src'), loaded: img.complete && img.naturalWidth > 0,
            width: img.getBoundingClientRect().width, height: img.getBoundingClientRect().height}))""")
        bad = [f for f in figures if not (f["loaded"] and f["width"] > 0 and f["height"] > 0)]
        assert not bad, f"figures not shown: {bad}"
        static = (site / f"{pagename}.html").read_text("utf8")
        article = static[static.index("<article"):static.index("</article>")]
        assert len(figures) == article.count("<img")  # the browser saw every image the page has

        # every formula is typeset, none with a TeX error
        counts = typeset_counts(page)
        assert counts["typeset"] == counts["math"], counts
        assert counts["errors"] == []

        # the code a reader sees fits without scrolling sideways (long lines widen into the margin,
        # dlnotes.booktools.widecode), and no table header stacks over more than two lines
        for viewport in (DESKTOP, WIDE_DESKTOP):
            page.set_viewport_size(viewport)
            layout = page.evaluate(LAYOUT_JS)
            assert layout["code"] == [], f"code scrolls sideways at {viewport['width']} px: {layout['code']}"
            assert layout["headers"] == [], f"tall table headers at {viewport['width']} px: {layout['headers']}"

        # the language link at the top of the page leads to the twin page
        twin = booklaunch.twin_page(pagename)
        if twin is not None:
            label = "中文" if twin[1] == "zh-CN" else "English"
            href = page.get_by_role("link", name=label, exact=True).first.get_attribute("href")
            assert urljoin(url, href) == urljoin(base_url, f"{twin[0]}.html")

        # launch and download links
        links = page.evaluate("() => [...document.querySelectorAll('.article-header-buttons a')]"
                              ".map(a => [a.textContent.trim(), a.getAttribute('href')])")
        launch = {text: href for text, href in links}
        if pagename in chapters:
            org_repo = SETTINGS.github_path
            assert launch["Colab"] == SETTINGS.colab_url(pagename)
            assert launch["Binder"] == (f"https://mybinder.org/v2/gh/{org_repo}/{SETTINGS.branch}"
                                        f"?urlpath=lab/tree/{pagename}.md")
            ipynb = page.request.get(urljoin(url, launch[".ipynb"]))
            assert ipynb.status == 200
            notebook = json.loads(ipynb.body())
            assert notebook["cells"][0]["metadata"]["tags"] == [notebooks.INSTALL_TAG]
            source = page.request.get(urljoin(url, launch[".md"]))
            assert source.status == 200 and source.body() == (ROOT / f"{pagename}.md").read_bytes()
        else:
            assert "Colab" not in launch and "Binder" not in launch

        # on a phone nothing overflows sideways: not the page, not a formula, not a table
        page.set_viewport_size(PHONE)
        overflow = page.evaluate("""() => {
            const width = document.documentElement.clientWidth, wide = [];
            const scrolls = el => { for (let p = el.parentElement; p; p = p.parentElement) {
                const o = getComputedStyle(p).overflowX; if (o === 'auto' || o === 'scroll') return true; }
                return false; };
            for (const el of document.querySelectorAll('article mjx-container, article table, article img, article pre'))
                if (el.getBoundingClientRect().right > width + 1 && !scrolls(el)) wide.push(el.tagName + ' ' + el.textContent.slice(0, 40));
            return {page: document.documentElement.scrollWidth - width, wide};}""")
        assert overflow["page"] <= 1 and overflow["wide"] == [], overflow
        assert page.evaluate(LAYOUT_JS)["headers"] == []  # on a phone too


def test_the_cjk_web_font_is_served_by_the_site(browser, base_url):
    with Visit(browser, urljoin(base_url, "book/zh/preface.html"), viewport=DESKTOP) as visit:
        assert web_font_status(visit.page, "深度学习") == ["loaded"]
        assert visit.errors == [], visit.errors


@pytest.mark.parametrize("query, expected", [
    ("卷积", "book/zh/cnn/convolution.html"),
    ("暂退法", "book/zh/training/dropout.html"),
    ("dropout", "book/en/training/dropout.html"),
    ("convolution", "book/en/cnn/convolution.html"),
])
def test_search_finds_the_chapter(browser, base_url, query, expected):
    with Visit(browser, urljoin(base_url, f"search.html?q={query}"), viewport=DESKTOP) as visit:
        visit.page.wait_for_selector("#search-results ul.search li", timeout=20_000)
        found = visit.page.evaluate("() => [...document.querySelectorAll('#search-results ul.search li a')]"
                                    ".map(a => a.getAttribute('href'))")
        hits = [urlparse(urljoin(visit.page.url, href)).path.lstrip("/") for href in found]
        assert expected in hits[:5], f"{query!r}: {hits[:10]}"
        assert visit.errors == [], visit.errors


@pytest.mark.parametrize("word", ["过拟合", "欠拟合", "梯度消失", "权重衰减"])
def test_chinese_search_finds_every_page_that_uses_a_term(browser, base_url, word):
    """A compound term is found on every Chinese page whose source uses it (jieba alone cut it apart)."""
    zh = ROOT / "book" / "zh"
    expected = {f"book/zh/{p.relative_to(zh).with_suffix('.html').as_posix()}"
                for p in zh.rglob("*.md") if word in p.read_text("utf8")}
    assert expected, f"no Chinese page uses {word}"
    with Visit(browser, urljoin(base_url, f"search.html?q={word}"), viewport=DESKTOP) as visit:
        visit.page.wait_for_function("() => /found|did not match/.test("
                                     "document.querySelector('.search-summary')?.textContent || '')", timeout=30_000)
        found = visit.page.evaluate("() => [...document.querySelectorAll('#search-results ul.search li a')]"
                                    ".map(a => a.getAttribute('href'))")
        hits = {urlparse(urljoin(visit.page.url, href)).path.lstrip("/") for href in found}
        assert expected <= hits, f"{word}: missing {sorted(expected - hits)}"
        assert visit.errors == [], visit.errors


SHOTS = [("book/index", "landing"), ("book/en/basics/linear-regression", "chapter-en"),
         ("book/zh/basics/linear-regression", "chapter-zh")]


@pytest.mark.parametrize("pagename, name", SHOTS)
@pytest.mark.parametrize("mode", ["light", "dark"])
def test_screenshots(browser, base_url, screenshots, pagename, name, mode):
    """Desktop and phone screenshots in light and dark mode, into the build folder (look at them)."""
    from PIL import Image

    for device, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        with Visit(browser, urljoin(base_url, f"{pagename}.html"), viewport=viewport, color_scheme=mode,
                   device_scale_factor=1) as visit:
            page = visit.page
            assert page.evaluate("document.documentElement.dataset.theme") == mode
            page.screenshot(path=str(screenshots / f"{name}-{device}-{mode}.png"), full_page=False)
            # figures stay readable in dark mode: dark ink on their own light background (the theme
            # dims them a little in dark mode, it must not invert or blacken them)
            for img in page.locator("article img").all():
                img.scroll_into_view_if_needed()
                histogram = Image.open(io.BytesIO(img.screenshot())).convert("L").histogram()
                background = max(range(256), key=histogram.__getitem__)
                ink = sum(histogram[:110]) / sum(histogram)
                assert background > 180 and ink > 0.005, f"{name} {mode} {device}: background {background}, ink {ink:.3f}"
            assert visit.errors == [], visit.errors


def test_a_downloaded_copy_renders_from_disk(browser, site):
    """Opened as files, with no server and no network: formulas typeset, the web font loads."""
    url = (site / "book/zh/basics/linear-regression.html").resolve().as_uri()
    with Visit(browser, url, viewport=DESKTOP) as visit:
        counts = typeset_counts(visit.page)
        assert counts["math"] > 10 and counts["typeset"] == counts["math"] and counts["errors"] == [], counts
        assert web_font_status(visit.page, "线性回归") == ["loaded"]
        assert visit.errors == [], visit.errors


SIDEBARS = [("primary", "pst-primary-sidebar-modal", ".bd-docs-nav a"),
            ("secondary", "pst-secondary-sidebar-modal", ".toc-entry a")]


@pytest.mark.parametrize("kind, dialog, links", SIDEBARS, ids=["hamburger", "on-this-page"])
def test_on_a_phone_the_sidebar_buttons_open_their_sidebar(browser, base_url, kind, dialog, links):
    """Tap the button a reader sees at 390 px; the sidebar's dialog opens with its links, Escape closes it."""
    with Visit(browser, urljoin(base_url, "book/en/basics/mlp.html"), viewport=PHONE, has_touch=True) as visit:
        page = visit.page
        buttons = [b for b in page.locator(f".{kind}-toggle").all() if b.is_visible()]
        assert buttons, f"no visible .{kind}-toggle at {PHONE['width']} px"
        buttons[0].tap()
        page.wait_for_function(f"() => document.getElementById('{dialog}').open", timeout=5_000)
        shown = page.locator(f"#{dialog} {links}")
        assert shown.count() > 3 and shown.first.is_visible(), f"#{dialog} opened without its links"
        page.keyboard.press("Escape")
        page.wait_for_function(f"() => !document.getElementById('{dialog}').open", timeout=5_000)
        assert visit.errors == [], visit.errors


def test_on_a_desktop_the_hamburger_folds_the_sidebar_and_the_contents_stay_shown(browser, base_url):
    with Visit(browser, urljoin(base_url, "book/en/basics/mlp.html"), viewport={"width": 1366, "height": 900}) as visit:
        page = visit.page
        sidebar, toc = page.locator("#pst-primary-sidebar"), page.locator("#pst-secondary-sidebar .toc-entry a")
        assert sidebar.is_visible() and toc.count() > 3 and toc.first.is_visible()
        hamburger = next(b for b in page.locator(".primary-toggle").all() if b.is_visible())
        hamburger.click()
        hidden = "() => getComputedStyle(document.getElementById('pst-primary-sidebar')).visibility === 'hidden'"
        page.wait_for_function(hidden, timeout=5_000)
        assert page.locator("#pst-primary-sidebar").bounding_box()["x"] < 0  # slid out: the text takes the room
        hamburger.click()
        page.wait_for_function(f"() => !({hidden})()", timeout=5_000)
        assert not page.evaluate("document.getElementById('pst-primary-sidebar-modal').open")
        assert visit.errors == [], visit.errors


@pytest.mark.parametrize("lang, other", [("en", "zh"), ("zh", "en")])
def test_the_sidebar_lists_only_the_pages_language_and_the_desktop_has_no_extra_top_bar(browser, base_url, lang, other):
    wide = {"width": 1366, "height": 900}
    with Visit(browser, urljoin(base_url, f"book/{lang}/basics/mlp.html"), viewport=wide) as visit:
        page = visit.page
        hrefs = page.evaluate("() => [...document.querySelectorAll('.bd-docs-nav a')].filter(a => a.offsetParent)"
                              ".map(a => new URL(a.href).pathname)")
        assert any(f"/book/{lang}/" in h for h in hrefs), hrefs
        assert not any(f"/book/{other}/" in h for h in hrefs), f"the {lang} sidebar lists {other} pages"
        assert not page.locator(".bd-header").is_visible(), "the theme's top bar is back on the desktop"
        assert visit.errors == [], visit.errors


def test_icons_are_drawn_by_the_web_font_without_fontawesome_js(browser, base_url):
    with Visit(browser, urljoin(base_url, "book/en/basics/mlp.html"), viewport=PHONE) as visit:
        page = visit.page
        scripts = page.evaluate("() => performance.getEntriesByType('resource').map(r => r.name)")
        assert not [s for s in scripts if "fontawesome.js" in s], "fontawesome.js is loaded again"
        icon = page.evaluate("""() => { const i = document.querySelector('.header-article-items .fa-bars');
            const s = getComputedStyle(i, '::before'); return {font: s.fontFamily, content: s.content,
            width: i.getBoundingClientRect().width}; }""")
        assert "Font Awesome" in icon["font"] and icon["content"] not in ("none", "normal", '""'), icon
        assert icon["width"] > 0, icon
        assert visit.errors == [], visit.errors
