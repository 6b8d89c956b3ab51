"""dlnotes.booktools.sitecheck: the link checker finds broken internal links and anchors, and only those."""

from pathlib import Path

import pytest

from dlnotes.booktools import sitecheck


def write(path: Path, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"<html><head></head><body>{body}</body></html>", "utf8")


@pytest.fixture
def site(tmp_path):
    write(tmp_path / "index.html", """
        <a href="book/a.html">ok</a> <a href="book/a.html#sec">ok anchor</a> <a href="#top" id="top">self</a>
        <a href="book/">dir</a> <a href="https://example.org/x.html#nope">external</a> <a href="mailto:a@b">mail</a>
        <link rel="stylesheet" href="_static/s.css?v=1"> <img src="_images/f.svg"> <script src="_static/j.js"></script>""")
    write(tmp_path / "book/a.html", '<h2 id="sec">Section</h2> <a name="old">legacy</a> <a href="../index.html#top">up</a>')
    write(tmp_path / "book/index.html", '<a href="a.html#old">legacy anchor</a>')
    for name in ("_static/s.css", "_images/f.svg", "_static/j.js"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x", "utf8")
    return tmp_path


def test_a_sound_site_has_no_broken_links(site):
    assert sitecheck.broken_links(site) == []


def test_each_kind_of_breakage_is_reported(site):
    write(site / "book/b.html", """<a href="a.html#missing">anchor</a> <a href="gone.html">file</a>
        <img src="../_images/none.svg"> <a href="../../outside.html">outside</a> <a href="%20a.html">escaped</a>""")
    broken = {(b.page, b.target): b.reason for b in sitecheck.broken_links(site)}
    assert broken == {
        ("book/b.html", "a.html#missing"): "no #missing in book/a.html",
        ("book/b.html", "gone.html"): "no such file",
        ("book/b.html", "../_images/none.svg"): "no such file",
        ("book/b.html", "../../outside.html"): "points outside the site",
        ("book/b.html", "%20a.html"): "no such file",
    }


def test_the_command_exits_1_on_broken_links(site, capsys):
    assert sitecheck.main([str(site)]) == 0
    write(site / "book/c.html", '<a href="nowhere.html">x</a>')
    assert sitecheck.main([str(site)]) == 1
    assert "book/c.html: nowhere.html (no such file)" in capsys.readouterr().out


def test_no_site_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="make book"):
        sitecheck.broken_links(tmp_path)
