"""Fixtures for the tests of the built site: the site, a local web server, a real browser.

These tests need ``make book`` (and, for the notebooks, ``make notebooks``) first; ``make
test-site`` runs them. Where something they need is missing they fail and say what to run, they
never skip: a skipped browser test would let a broken site through.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SITE = Path(os.environ.get("DLNOTES_SITE", ROOT / "_build" / "html")).resolve()
# The flags DESIGN.md lists: without the background-networking ones, Chromium's own connections
# are refused by a closed network and show up as noise; --no-sandbox because CI runs as root.
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.site)


def toc_pages() -> list[str]:
    """Every page of the book, in ``_toc.yml`` order (docnames such as ``book/en/basics/mlp``)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text("utf8"))
    pages = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                pages.append(entry["file"])
            walk(entry.get("sections"))

    for part in toc["parts"]:
        walk(part["chapters"])
    return pages


@pytest.fixture(scope="session")
def site() -> Path:
    if not (SITE / "index.html").is_file():
        pytest.fail(f"no built site at {SITE}: run `make book` first (or set DLNOTES_SITE)")
    return SITE


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # the tests report failed requests themselves
        pass


@pytest.fixture(scope="session")
def base_url(site) -> str:
    """The site served on a free port of 127.0.0.1, for the whole session."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


@pytest.fixture(scope="session")
def browser():
    executable = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if executable is None:
        pytest.fail("no chromium: install Debian's package (apt-get install chromium) or set CHROMIUM")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:  # Playwright gives the browser a fresh, empty profile
        chromium = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def screenshots(site) -> Path:
    """Where the screenshots go: the build folder, beside the site."""
    folder = site.parent / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
