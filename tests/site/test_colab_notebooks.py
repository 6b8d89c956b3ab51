"""The Colab-ready notebooks that ``make notebooks`` writes from the built book.

Each one must start with the install cell, ask for a Python 3 kernel (and Colab's GPU), hold
exactly the chapter's code cells with their outputs, and carry no MyST that Jupyter cannot show.
One of them is then run top to bottom in a fresh virtual environment in which only its first
cell installs ``dlnotes`` (from this checkout, standing in for the repository URL).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import jupytext
import pytest

from dlnotes.booktools import notebooks

from conftest import ROOT, SITE

BUILD = SITE.parent
OUT = BUILD / "notebooks"
SETTINGS = notebooks.read_settings(ROOT)
MYST_ONLY = re.compile(r"\{glue:|\{literalinclude\}|^:{3,}\{|\{nb-exec-table\}", re.M)


def produced() -> list[Path]:
    if not OUT.is_dir():
        pytest.fail(f"no notebooks at {OUT}: run `make book` then `make notebooks`")
    return sorted(OUT.rglob("*.ipynb"))


def test_one_notebook_per_executed_chapter_in_both_languages():
    pages = {p.relative_to(OUT).with_suffix("").as_posix() for p in produced()}
    assert pages == set(notebooks.chapter_pages(BUILD))
    english = {p[len("book/en/"):] for p in pages if p.startswith("book/en/")}
    chinese = {p[len("book/zh/"):] for p in pages if p.startswith("book/zh/")}
    assert english == chinese and len(english) >= 20


def code_sources(cells) -> list[str]:
    return [("".join(c["source"]) if isinstance(c["source"], list) else c["source"]).strip()
            for c in cells if c["cell_type"] == "code"]


@pytest.mark.parametrize("path", produced() if OUT.is_dir() else [], ids=lambda p: p.relative_to(OUT).as_posix())
def test_notebook(path):
    page = path.relative_to(OUT).with_suffix("").as_posix()
    nb = json.loads(path.read_text("utf8"))
    first = nb["cells"][0]
    assert first["metadata"]["tags"] == [notebooks.INSTALL_TAG]
    assert first["source"] == notebooks.install_cell(SETTINGS, language=page.split("/")[1])["source"]
    meta = nb["metadata"]
    assert meta["kernelspec"]["name"] == "python3" and meta["kernelspec"]["language"] == "python"
    assert meta["accelerator"] == "GPU"
    chapter = jupytext.read(ROOT / f"{page}.md")
    assert code_sources(nb["cells"][1:]) == code_sources(chapter.cells)
    assert any(c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code"), "not executed"
    leftovers = [m for c in nb["cells"] if c["cell_type"] == "markdown" for m in MYST_ONLY.findall(c["source"])]
    assert leftovers == []


def test_a_notebook_runs_in_a_fresh_environment_where_only_its_first_cell_installs_dlnotes(tmp_path):
    notebook = OUT / "book/en/basics/linear-regression.ipynb"
    if not notebook.is_file():
        pytest.fail(f"{notebook} missing: run `make notebooks`")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    site_packages = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                        check=True, capture_output=True, text=True).stdout.strip())
    # Borrow the heavy, already installed dependencies (torch is 6 GB) as a plain path entry: the
    # book's editable install of dlnotes lives in a .pth file there, which Python does not follow.
    (site_packages / "borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", "utf8")
    env = {**os.environ, "JUPYTER_DATA_DIR": str(tmp_path / "jupyter"),  # no user kernelspec: this python
           "DLNOTES_INSTALL_FROM": str(ROOT / "code"), "PYTHONNOUSERSITE": "1"}
    env.pop("PYTHONPATH", None)
    before = subprocess.run([python, "-c", "import dlnotes"], env=env, capture_output=True, text=True)
    assert before.returncode != 0 and "No module named 'dlnotes'" in before.stderr

    executed = tmp_path / "executed.ipynb"
    run = subprocess.run([python, "-c", f"""
import nbformat
from nbclient import NotebookClient
nb = nbformat.read({str(notebook)!r}, as_version=4)
NotebookClient(nb, kernel_name="python3", timeout=600, resources={{"metadata": {{"path": {str(tmp_path)!r}}}}}).execute()
nbformat.write(nb, {str(executed)!r})
"""], env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    where = subprocess.run([python, "-c", "import dlnotes; print(dlnotes.__file__)"], env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert Path(where).is_relative_to(venv), f"dlnotes came from {where}, not from the install cell"
    result = json.loads(executed.read_text("utf8"))
    errors = [o for c in result["cells"] for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert errors == []
    assert sum(bool(c.get("outputs")) for c in result["cells"]) >= 5
