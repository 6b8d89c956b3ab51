"""dlnotes.booktools.notebooks: Colab-ready notebooks from the executed chapters."""

import inspect
import json
import sys
import textwrap
import types
from pathlib import Path

import pytest

from dlnotes.basics import linreg
from dlnotes.booktools import notebooks

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = notebooks.BookSettings(repository_url="https://github.com/org/repo", branch="main",
                                  notebooks_branch="nbs", site_url="https://org.github.io/repo/")


def test_settings_come_from_the_books_config():
    settings = notebooks.read_settings(ROOT)
    assert settings.repository_url.startswith("https://github.com/")
    assert settings.site_url.endswith("/") and settings.branch and settings.notebooks_branch
    assert settings.notebooks_branch != settings.branch  # notebooks never overwrite the sources


def test_missing_settings_are_named(tmp_path):
    (tmp_path / "_config.yml").write_text("repository:\n  url: https://github.com/a/b\n", "utf8")
    with pytest.raises(ValueError, match=r"branch.*notebooks_branch.*html\.baseurl"):
        notebooks.read_settings(tmp_path)


def test_colab_url_points_at_the_notebook_on_the_publish_branch():
    assert SETTINGS.colab_url("book/en/basics/mlp") == (
        "https://colab.research.google.com/github/org/repo/blob/nbs/book/en/basics/mlp.ipynb")
    with pytest.raises(ValueError, match="github.com/<org>/<repo>"):
        notebooks.BookSettings(repository_url="https://gitlab.com/a/b", branch="m", notebooks_branch="n",
                               site_url="x/").colab_url("p")
    assert SETTINGS.install_source() == "dlnotes[data,fonts,sequences] @ git+https://github.com/org/repo@main#subdirectory=code"


def run_install_cell(monkeypatch, *, env=None, colab=False):
    """Execute the install cell's code with subprocess.run recorded instead of run."""
    calls = []
    monkeypatch.setattr("subprocess.run", lambda args, check: calls.append((args, check)))
    monkeypatch.delenv("DLNOTES_INSTALL_FROM", raising=False)
    for key, value in (env or {}).items():
        monkeypatch.setenv(key, value)
    if colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.delenv("DLNOTES_LANGUAGE", raising=False)
    exec(notebooks.install_cell(SETTINGS, language="zh")["source"], {})
    return calls


def test_install_cell_installs_from_the_repository_in_colab_only(monkeypatch):
    assert run_install_cell(monkeypatch) == []  # a plain Jupyter, or the book's build: nothing
    pip = [sys.executable, "-m", "pip", "install", "--quiet"]
    assert run_install_cell(monkeypatch, colab=True) == [(pip + [SETTINGS.install_source()], True)]
    assert run_install_cell(monkeypatch, env={"DLNOTES_INSTALL_FROM": "/src/code"}) == [(pip + ["/src/code"], True)]
    cell = notebooks.install_cell(SETTINGS, language="en")
    assert cell["metadata"]["tags"] == [notebooks.INSTALL_TAG] and cell["outputs"] == []


def test_install_cell_sets_the_figure_language_unless_the_reader_chose_one(monkeypatch):
    from dlnotes import config

    run_install_cell(monkeypatch)
    assert config.language() == "zh"
    monkeypatch.setenv("DLNOTES_LANGUAGE", "en")
    exec(notebooks.install_cell(SETTINGS, language="zh")["source"], {})
    assert config.language() == "en"


def test_pyobject_source_is_what_inspect_sees():
    path = ROOT / "code/dlnotes/basics/linreg.py"
    assert notebooks.python_object_source(path, "synthetic_data") == inspect.getsource(linreg.synthetic_data).rstrip("\n")
    method = notebooks.python_object_source(ROOT / "code/dlnotes/booktools/notebooks.py", "BookSettings.colab_url")
    assert method.startswith("def colab_url(self, page: str)")
    assert method == textwrap.dedent(inspect.getsource(notebooks.BookSettings.colab_url)).rstrip("\n")
    with pytest.raises(ValueError, match="no 'nothing_here'"):
        notebooks.python_object_source(path, "nothing_here")


def test_glued_values_are_formatted_as_myst_nb_does():
    glue = {"acc": "0.91234", "n": "60000", "name": "'LeNet'"}
    md = "acc {glue:text}`acc:.1%`, n {glue:text}`n:,`, raw {glue:text}`acc`, {glue:text}`name`."
    out = notebooks.plain_markdown(md, page="book/en/a/b", root=ROOT, glue=glue, site_url="https://s/")
    assert out == f"acc {0.91234:.1%}, n {60000:,}, raw 0.91234, 'LeNet'."
    with pytest.raises(KeyError, match="missing"):
        notebooks.plain_markdown("{glue:text}`missing:.2f`", page="p", root=ROOT, glue=glue, site_url="s/")


def test_literalinclude_becomes_the_code_it_shows():
    md = ("Before.\n\n```{literalinclude} /code/dlnotes/basics/linreg.py\n:language: python\n"
          ":pyobject: synthetic_data\n```\n\nAfter.")
    out = notebooks.plain_markdown(md, page="book/en/basics/x", root=ROOT, glue={}, site_url="s/")
    code = inspect.getsource(linreg.synthetic_data).rstrip("\n")
    assert out == f"Before.\n\n`dlnotes/basics/linreg.py`:\n\n```python\n{code}\n```\n\nAfter."


def test_admonitions_become_quotes_and_links_point_at_the_site():
    md = (":::{admonition} From the notes\n:class: note\nLine one,\nline two.\n:::\n\n"
          "See [MLP](../basics/mlp.md#training), [twin](../../zh/cnn/lenet.md), [web](https://x.org/a.md).")
    out = notebooks.plain_markdown(md, page="book/en/cnn/lenet", root=ROOT, glue={}, site_url="https://s/")
    assert out == ("> **From the notes**\n>\n> Line one,\n> line two.\n\n"
                   "See [MLP](https://s/book/en/basics/mlp.html#training), "
                   "[twin](https://s/book/zh/cnn/lenet.html), [web](https://x.org/a.md).")
    with pytest.raises(ValueError, match="unclosed"):
        notebooks.plain_markdown(":::{note}\nnever closed", page="p", root=ROOT, glue={}, site_url="s/")


def test_the_table_of_executions_becomes_a_link_to_the_site():
    md = "Before.\n\n```{nb-exec-table}\n```\n\nAfter."
    out = notebooks.plain_markdown(md, page="book/zh/appendix/build", root=ROOT, glue={}, site_url="https://s/")
    assert out == "Before.\n\n*执行记录表 · Table of executions: https://s/book/zh/appendix/build.html*\n\nAfter."


def executed_notebook() -> dict:
    return {"nbformat": 4, "nbformat_minor": 4,
            "metadata": {"jupytext": {"x": 1}, "source_map": [1], "kernelspec": {"name": "python3"}},
            "cells": [
                {"cell_type": "markdown", "metadata": {}, "source": ["# T\n", "v = {glue:text}`v:.2f`"]},
                {"cell_type": "code", "metadata": {"tags": ["remove-cell"]}, "source": "a = 1",
                 "outputs": [], "execution_count": 1},
                {"cell_type": "code", "metadata": {}, "source": "a + 1", "execution_count": 2,
                 "outputs": [{"output_type": "execute_result", "data": {"text/plain": "2"}, "metadata": {},
                              "execution_count": 2}]}]}


def test_colab_notebook_keeps_the_code_and_outputs_and_asks_for_a_gpu():
    source = executed_notebook()
    before = json.dumps(source, sort_keys=True)
    nb = notebooks.colab_notebook(source, page="book/en/x", root=ROOT, glue={"v": {"text/plain": "3.14159"}},
                                  settings=SETTINGS)
    assert json.dumps(source, sort_keys=True) == before  # the input is not modified
    assert nb["cells"][0]["metadata"]["tags"] == [notebooks.INSTALL_TAG]
    assert [c["source"] for c in nb["cells"][1:] if c["cell_type"] == "code"] == ["a = 1", "a + 1"]
    assert nb["cells"][3]["outputs"] == source["cells"][2]["outputs"]
    assert nb["cells"][1]["source"] == "# T\nv = 3.14"
    meta = nb["metadata"]
    assert meta["accelerator"] == "GPU" and meta["colab"]["gpuType"] == "T4"
    assert meta["kernelspec"] == {"display_name": "Python 3", "language": "python", "name": "python3"}
    assert "jupytext" not in meta and "source_map" not in meta and nb["nbformat_minor"] >= 5


def test_glued_figures_become_attachments_with_their_caption():
    md = "Text.\n\n```{glue:figure} fig-a-en\n:name: fig-a\n:alt: Two curves\n\nThe loss falls.\nFast.\n```\n\nMore."
    records = {"fig-a-en": {"image/svg+xml": "<svg/>", "text/plain": "<Figure>"}, "x": {"text/plain": "1"}}
    out, attachments = notebooks.glued_figures(md, page="p", records=records)
    assert out == "Text.\n\n![Two curves](attachment:fig-a-en.svg)\n\n*The loss falls. Fast.*\n\nMore."
    assert attachments == {"fig-a-en.svg": {"image/svg+xml": "<svg/>"}}
    with pytest.raises(KeyError, match="glued figure 'fig-b-en' not found"):
        notebooks.glued_figures(md.replace("fig-a-en", "fig-b-en"), page="p", records=records)
    with pytest.raises(ValueError, match="'x' is not a figure"):
        notebooks.glued_figures(md.replace("fig-a-en", "x"), page="p", records=records)


def test_export_writes_every_executed_chapter_and_skips_pages_without_code(tmp_path):
    build = tmp_path / "_build"
    chapter = build / "jupyter_execute/book/en/c.ipynb"
    chapter.parent.mkdir(parents=True)
    chapter.write_text(json.dumps(executed_notebook()), "utf8")
    chapter.with_suffix(".glue.json").write_text(json.dumps(
        {"v": {"output_type": "display_data", "metadata": {}, "data": {"text/plain": "2.5"}}}), "utf8")
    prose = executed_notebook()
    prose["cells"] = prose["cells"][:1]
    (build / "jupyter_execute/book/en/prose.ipynb").write_text(json.dumps(prose), "utf8")
    written = notebooks.export(build=build, root=ROOT, out=tmp_path / "out")
    assert written == [tmp_path / "out/book/en/c.ipynb"]
    nb = json.loads(written[0].read_text("utf8"))
    assert nb["cells"][1]["source"] == "# T\nv = 2.50"
    mtime = written[0].stat().st_mtime_ns
    notebooks.export(build=build, root=ROOT, out=tmp_path / "out")
    assert written[0].stat().st_mtime_ns == mtime  # an unchanged notebook is not rewritten


def test_export_without_a_build_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="make book"):
        notebooks.export(build=tmp_path / "_build", root=ROOT, out=tmp_path / "out")


def test_the_command_prints_the_publish_branch(monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    assert notebooks.main(["publish-branch"]) == 0
    assert capsys.readouterr().out.strip() == notebooks.read_settings(ROOT).notebooks_branch


def test_outputs_served_from_the_execution_cache_are_merged_back(tmp_path):
    """MyST-NB writes cached pages to jupyter_execute without outputs; the export takes them from the cache."""
    import nbformat
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    build = tmp_path / "_build"
    executed = nbformat.from_dict(executed_notebook())
    get_cache(build / ".jupyter_cache").cache_notebook_bundle(CacheBundleIn(executed, uri="book/en/c.md"), check_validity=False)
    bare = executed_notebook()
    for cell in bare["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    page = build / "jupyter_execute/book/en/c.ipynb"
    page.parent.mkdir(parents=True)
    page.write_text(json.dumps(bare), "utf8")
    merged = notebooks.executed_notebook(build, "book/en/c")
    text = lambda value: "".join(value) if isinstance(value, list) else value  # noqa: E731 (nbformat splits lines)
    assert text(merged["cells"][2]["outputs"][0]["data"]["text/plain"]) == "2"
    assert [text(c["source"]) for c in merged["cells"]] == [text(c["source"]) for c in bare["cells"]]

    bare["cells"][2]["source"] = "a + 2"  # code the cache has never seen
    page.write_text(json.dumps(bare), "utf8")
    with pytest.raises(KeyError, match="make book"):
        notebooks.executed_notebook(build, "book/en/c")
    (tmp_path / "other/jupyter_execute/book/en").mkdir(parents=True)
    (tmp_path / "other/jupyter_execute/book/en/c.ipynb").write_text(json.dumps(bare), "utf8")
    with pytest.raises(FileNotFoundError, match="no execution cache"):
        notebooks.executed_notebook(tmp_path / "other", "book/en/c")
