"""No broken internal link or anchor anywhere in the built site (dlnotes.booktools.sitecheck)."""

from dlnotes.booktools import sitecheck


def test_the_built_site_has_no_broken_internal_links_or_anchors(site):
    broken = sitecheck.broken_links(site)
    assert broken == [], "\n".join(map(str, broken[:50]))


def test_each_page_numbers_its_figures_from_one_in_its_own_language(site):
    import re

    from conftest import toc_pages

    pages = [p for p in toc_pages() if p.startswith("book/zh/")]
    numbered = 0
    for zh_page in pages:
        en_page = "book/en/" + zh_page[len("book/zh/"):]
        labels = {}
        for page, word in ((zh_page, "图"), (en_page, "Fig.")):
            html = (site / f"{page}.html").read_text("utf8")
            labels[page] = re.findall(r'<span class="caption-number">(\S+) (\d+) </span>', html)
            assert all(w == word for w, _ in labels[page]), f"{page}: captions {labels[page]} should say {word}"
            numbers = [int(n) for _, n in labels[page]]
            assert numbers == list(range(1, len(numbers) + 1)), f"{page}: figures numbered {numbers}"
            refs = re.findall(r'<span class="std std-numref">(\S+) \d+</span>', html)
            assert all(w == word for w in refs), f"{page}: figure references {refs} should say {word}"
        assert len(labels[zh_page]) == len(labels[en_page]), f"{zh_page} and its twin number different figures"
        numbered += len(labels[zh_page])
    assert numbered > 0


def test_chinese_pages_show_the_themes_words_in_chinese(site):
    from dlnotes.booktools import bookassets

    pages = sorted((site / "book" / "zh").rglob("*.html"))
    assert pages
    untranslated = [p.relative_to(site).as_posix() for p in pages
                    if bookassets.translate_theme_strings_zh(p.read_text("utf8")) != p.read_text("utf8")]
    assert untranslated == [], f"English theme words left on {untranslated[:5]}"
    assert "搜索" in (site / "book/zh/preface.html").read_text("utf8")
