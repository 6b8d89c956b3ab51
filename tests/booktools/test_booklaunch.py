"""dlnotes.booktools.booklaunch: Colab links and Colab-ready downloads on the chapter pages."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from dlnotes.booktools import booklaunch, notebooks

ROOT = Path(__file__).resolve().parents[2]


def test_twin_pages():
    assert booklaunch.twin_page("book/en/cnn/lenet") == ("book/zh/cnn/lenet", "zh-CN")
    assert booklaunch.twin_page("book/zh/basics/mlp") == ("book/en/basics/mlp", "en")
    assert booklaunch.twin_page("book/index") is None and booklaunch.twin_page("search") is None


def fake_page(tmp_path, pagename, cells):
    """An app whose build holds the executed notebook of ``pagename``, and that page's context."""
    build = tmp_path / "_build"
    executed = build / "jupyter_execute" / f"{pagename}.ipynb"
    executed.parent.mkdir(parents=True, exist_ok=True)
    executed.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells}), "utf8")
    twin = booklaunch.twin_page(pagename)[0]
    app = SimpleNamespace(outdir=str(build / "html"), confdir=str(ROOT),
                          env=SimpleNamespace(all_docs={pagename: 0, twin: 0}))
    binder = {"type": "link", "text": "Binder", "url": "https://mybinder.org/x"}
    context = {"pathto": lambda doc: f"../../{doc}.html", "metatags": "",
               "header_buttons": [{"type": "group", "label": "download-buttons", "buttons": []},
                                  {"type": "group", "label": "launch-buttons", "buttons": [binder]}]}
    return app, context


def test_a_chapter_gets_a_colab_link_and_a_colab_ready_download(tmp_path):
    page = "book/en/basics/mlp"
    output = {"output_type": "execute_result", "data": {"text/plain": "2"}, "metadata": {}, "execution_count": 1}
    app, context = fake_page(tmp_path, page, [{"cell_type": "code", "metadata": {}, "source": "1 + 1",
                                                "outputs": [output], "execution_count": 1}])
    booklaunch._add_launch(app, page, "page.html", context, None)
    launch = context["header_buttons"][1]["buttons"]
    assert [b["text"] for b in launch] == ["Binder", "Colab"]
    assert launch[1]["url"] == notebooks.read_settings(ROOT).colab_url(page)
    download = json.loads((Path(app.outdir) / "_sources" / f"{page}.ipynb").read_text("utf8"))
    assert download["cells"][0]["metadata"]["tags"] == [notebooks.INSTALL_TAG]
    assert download["metadata"]["accelerator"] == "GPU" and download["cells"][1]["outputs"] == [output]
    assert '<link rel="alternate" hreflang="zh-CN" href="../../book/zh/basics/mlp.html" />' in context["metatags"]


def test_a_page_without_code_has_no_launch_menu(tmp_path):
    page = "book/zh/cnn/index"
    app, context = fake_page(tmp_path, page, [{"cell_type": "markdown", "metadata": {}, "source": "# 文"}])
    booklaunch._add_launch(app, page, "page.html", context, None)
    assert [b["label"] for b in context["header_buttons"]] == ["download-buttons"]
    assert not (Path(app.outdir) / "_sources").exists()
    assert 'hreflang="en"' in context["metatags"]


def test_the_extension_refuses_a_config_without_launch_buttons():
    app = SimpleNamespace(confdir=str(ROOT))
    with pytest.raises(RuntimeError, match="binderhub_url"):
        booklaunch._check_config(app, SimpleNamespace(html_theme_options={}))
    booklaunch._check_config(app, SimpleNamespace(html_theme_options={"launch_buttons": {"binderhub_url": "u"}}))
