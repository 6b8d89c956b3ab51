"""Sphinx extension: the Chinese search index, built in linear time.

Sphinx 7's Chinese splitter (``sphinx.search.zh.SearchChinese``) remembers every Latin word of
every page in a *list*, and looks each word up in that list when it stems it. The list grows with
the site, so indexing is quadratic: on this book it took about 5 s per page, more than half of a
cold build. The same lookups in a *set* give the same index in linear time.

It also makes the index and the reader's query cut Chinese the same way. The browser does not
run jieba: a query such as 过拟合 stays one word, while jieba alone cuts the pages' text into 过 /
拟合, so the query found almost nothing. The book's own terms (``book/terms.yml``, option
``dlnotes_search_terms``) are added to jieba's dictionary before indexing, so each is indexed as
one word (and, by ``cut_for_search``, as its shorter dictionary words too).

Enable with ``extensions = ["dlnotes.booktools.booksearch"]`` next to ``html_search_language = "zh"``.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from sphinx.search import zh

from dlnotes.sequences import text


class SearchChineseFast(zh.SearchChinese):
    """``SearchChinese`` with its Latin words in a set: same words, same stems, same index."""

    def init(self, options: dict[str, str]) -> None:
        super().init(options)
        self.latin_terms = set()  # the parent's is a list shared by the class, searched once per word

    def split(self, input: str) -> list[str]:
        chinese = list(zh.jieba.cut_for_search(input)) if zh.JIEBA else []
        latin = [term.strip() for term in self.latin1_letters.findall(input)]
        self.latin_terms.update(latin)
        return chinese + latin


def read_terms(path: Path) -> list[str]:
    """The Chinese terms of the book's term list (entries ``{zh: 过拟合, en: overfitting, chapter: ...}``)."""
    entries = yaml.safe_load(Path(path).read_text("utf8")) or []
    bad = [e for e in entries if not isinstance(e, dict) or not str(e.get("zh", "")).strip()]
    if bad:
        raise ValueError(f"{path}: every entry needs a zh term, e.g. {{zh: 过拟合, en: overfitting}}; got {bad[:3]}")
    return [str(e["zh"]).strip() for e in entries]


def add_terms_to_jieba(terms: list[str]) -> None:
    """Make jieba keep each term as one word (its default dictionary cuts 过拟合 into 过 / 拟合)."""
    if not zh.JIEBA:
        raise RuntimeError("the Chinese search needs jieba: pip install jieba (see requirements.txt)")
    text.add_words_to_jieba(terms)  # the same dictionary as the chapters' jieba (one module)


def _load_terms(app, config) -> None:
    path = Path(app.srcdir) / config.dlnotes_search_terms
    if not path.is_file():
        raise FileNotFoundError(f"dlnotes_search_terms: no term list at {path}")
    add_terms_to_jieba(read_terms(path))


def setup(app) -> dict:
    app.add_config_value("dlnotes_search_terms", "book/terms.yml", "env")
    app.connect("config-inited", _load_terms)
    app.add_search_language(SearchChineseFast)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
