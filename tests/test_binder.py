"""binder/: the Binder environment that the launch links open (checked here; Binder itself is online)."""

import json
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"


def pins(path: Path) -> dict[str, str]:
    """name -> version of every ``name==version`` line of a requirements file."""
    lines = path.read_text("utf8").splitlines()
    return {m[1].lower(): m[2] for m in (re.match(r"^([A-Za-z0-9_.-]+)==(\S+)", line) for line in lines) if m}


def test_torch_is_the_cpu_build_from_pytorchs_cpu_index_at_the_books_versions():
    binder, book = pins(BINDER / "requirements.txt"), pins(ROOT / "requirements.txt")
    text = (BINDER / "requirements.txt").read_text("utf8")
    assert re.search(r"^--extra-index-url https://download\.pytorch\.org/whl/cpu$", text, re.M)
    for name in ("torch", "torchvision"):
        assert binder[name] == book[name] + "+cpu", name


def test_every_runtime_dependency_of_the_chapters_is_pinned_as_the_book_pins_it():
    binder, book = pins(BINDER / "requirements.txt"), pins(ROOT / "requirements.txt")
    # the package's own dependencies and extras (code/pyproject.toml), plus pandas (house prices)
    project = tomllib.loads((ROOT / "code" / "pyproject.toml").read_text("utf8"))["project"]
    wanted = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    names = {re.split(r"[<>=!~ ]", r, maxsplit=1)[0] for r in wanted} - {"torch"}
    assert {"numpy", "mlxtend", "statsmodels", "opencc"} <= names
    for name in sorted(names | {"pandas"}):
        assert binder.get(name) == book[name], name
    assert binder["jupytext"] == book["jupytext"]  # .md chapters open as notebooks


def test_postbuild_installs_the_package_and_opens_markdown_as_notebooks():
    post = (BINDER / "postBuild").read_text("utf8")
    assert post.startswith("#!/bin/bash") and "set -euo pipefail" in post
    assert (BINDER / "postBuild").stat().st_mode & 0o111, "postBuild must be executable"
    assert "pip install --no-deps ./code" in post
    assert "cp binder/overrides.json" in post and "share/jupyter/lab/settings" in post
    viewers = json.loads((BINDER / "overrides.json").read_text("utf8"))
    assert viewers["@jupyterlab/docmanager-extension:plugin"]["defaultViewers"] == {
        "markdown": "Jupytext Notebook", "myst": "Jupytext Notebook"}


def test_binder_python_matches_the_books():
    assert (BINDER / "runtime.txt").read_text("utf8").strip() == "python-3.11"
