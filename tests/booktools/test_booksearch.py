"""dlnotes.booktools.booksearch: the same Chinese search index as Sphinx's, in linear time."""

import json
import time
from pathlib import Path

import pytest
from sphinx.search import zh

from dlnotes.booktools import booksearch

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "book/zh/basics/mlp.md", ROOT / "book/en/basics/mlp.md", ROOT / "book/zh/cnn/lenet.md"]


def test_same_words_and_stems_as_sphinx():
    ours, sphinx = booksearch.SearchChineseFast({}), zh.SearchChinese({})
    for page in PAGES:  # page after page, as the builder feeds them
        text = page.read_text("utf8")
        words = ours.split(text)
        assert words == sphinx.split(text) and len(words) > 500
        assert [ours.stem(w) for w in words] == [sphinx.stem(w) for w in words]
        assert [ours.word_filter(w) for w in words] == [sphinx.word_filter(w) for w in words]


def test_stemming_stays_fast_as_the_site_grows():
    ours = booksearch.SearchChineseFast({})
    text = " ".join(f"word{i} 卷积" for i in range(100_000))
    words = ours.split(text)
    start = time.perf_counter()
    for word in words[-20_000:]:
        ours.stem(word)
    assert time.perf_counter() - start < 2.0  # Sphinx's list lookup: ~1e9 comparisons here


def build_index(tmp_path: Path, extensions: list[str]) -> tuple[str, type]:
    from sphinx.application import Sphinx

    src = tmp_path / "src"
    src.mkdir(parents=True)
    for name in ("a", "b"):
        (src / f"{name}.rst").write_text(f"Page {name}\n=======\n\n卷积神经网络 convolutional networks, dropout 暂退法 {name}.\n",
                                        "utf8")
    (src / "index.rst").write_text("Home\n====\n\n.. toctree::\n\n   a\n   b\n", "utf8")
    (src / "book").mkdir()  # the extension's term list, at its default place
    (src / "book" / "terms.yml").write_text("- {zh: 卷积神经网络, en: convolutional neural network, chapter: a}\n", "utf8")
    (src / "conf.py").write_text(f"extensions = {extensions!r}\nhtml_search_language = 'zh'\n", "utf8")
    app = Sphinx(str(src), str(src), str(tmp_path / "out"), str(tmp_path / "doctrees"), "html",
                 status=None, warning=None, freshenv=True)
    app.build()
    return (tmp_path / "out/searchindex.js").read_text("utf8"), type(app.builder.indexer.lang)


def test_a_real_build_writes_the_same_index(tmp_path, monkeypatch):
    from sphinx.search import languages  # the extension registers its class here, for the process

    monkeypatch.setitem(languages, "zh", zh.SearchChinese)  # put back whatever was there afterwards
    fast, fast_class = build_index(tmp_path / "fast", ["dlnotes.booktools.booksearch"])
    languages["zh"] = zh.SearchChinese
    plain, plain_class = build_index(tmp_path / "plain", [])
    assert (fast_class, plain_class) == (booksearch.SearchChineseFast, zh.SearchChinese)
    assert fast == plain
    for word in ("卷积", "暂退法", "convolut"):
        assert json.dumps(word)[1:-1] in fast, word


ISSUE_WORDS = ["过拟合", "欠拟合", "梯度消失", "权重衰减"]  # what readers searched for and did not find


def test_the_book_terms_are_indexed_as_whole_words():
    import jieba

    terms = booksearch.read_terms(ROOT / "book" / "terms.yml")
    assert len(terms) == len(set(terms)) > 50 and set(ISSUE_WORDS) <= set(terms)
    plain = jieba.Tokenizer()  # jieba's own dictionary, without the book's terms
    assert not any(w in plain.cut_for_search(f"模型{w}了") for w in ISSUE_WORDS)  # the bug
    booksearch.add_terms_to_jieba(terms)
    words = booksearch.SearchChineseFast({}).split("模型过拟合了，欠拟合也不好；梯度消失时用权重衰减没用。")
    assert set(ISSUE_WORDS) <= set(words)
    assert "拟合" in words  # cut_for_search still indexes the shorter words inside


def test_every_term_is_used_by_its_chapter():
    import yaml

    for entry in yaml.safe_load((ROOT / "book" / "terms.yml").read_text("utf8")):
        page = ROOT / "book" / "zh" / f"{entry['chapter']}.md"
        assert page.is_file(), f"{entry}: no chapter {page.relative_to(ROOT)}"
        assert entry["zh"] in page.read_text("utf8"), f"{entry['zh']} is not used in {page.relative_to(ROOT)}"


def test_a_bad_term_list_is_an_error(tmp_path):
    bad = tmp_path / "terms.yml"
    bad.write_text("- {en: overfitting}\n", "utf8")
    with pytest.raises(ValueError, match="needs a zh term"):
        booksearch.read_terms(bad)
