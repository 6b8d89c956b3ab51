"""A link checker for the built site: every internal link, image, script and stylesheet must
point at a file that exists, and every ``#anchor`` at an element of the target page.

External links (``http(s)://`` elsewhere, ``mailto:``) are not followed: the build machines have
no internet, and the browser tests already make sure no page *loads* anything from outside.

``python -m dlnotes.booktools.sitecheck _build/html`` prints the broken links and exits 1 if there are any.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

from bs4 import BeautifulSoup

# (tag, attribute) pairs that point at another resource of the site
LINK_ATTRIBUTES = (("a", "href"), ("link", "href"), ("img", "src"), ("script", "src"), ("iframe", "src"))
# Pages Sphinx writes that are not worth checking (generated index, search results shell)
SKIP_PAGES = ("genindex.html", "search.html")


@dataclass(frozen=True)
class BrokenLink:
    page: str  # the page holding the link, relative to the site
    target: str  # the link as written
    reason: str

    def __str__(self) -> str:
        return f"{self.page}: {self.target} ({self.reason})"


@lru_cache(maxsize=None)
def _anchors(path: Path) -> frozenset[str]:
    """Every ``id`` (and legacy ``<a name>``) of a page."""
    soup = BeautifulSoup(path.read_text("utf8", errors="replace"), "html.parser")
    ids = {tag["id"] for tag in soup.find_all(id=True)}
    ids |= {tag["name"] for tag in soup.find_all("a", attrs={"name": True})}
    return frozenset(ids)


def _is_external(url: str) -> bool:
    parts = urlsplit(url)
    return bool(parts.scheme or parts.netloc) or url.startswith(("mailto:", "javascript:", "data:"))


def check_page(site: Path, page: Path) -> list[BrokenLink]:
    """The broken internal links of one HTML page of ``site``."""
    name = page.relative_to(site).as_posix()
    soup = BeautifulSoup(page.read_text("utf8", errors="replace"), "html.parser")
    broken = []
    for tag_name, attribute in LINK_ATTRIBUTES:
        for tag in soup.find_all(tag_name, attrs={attribute: True}):
            url = tag[attribute].strip()
            if not url or _is_external(url):
                continue
            parts = urlsplit(url)
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page.resolve()
            if parts.path.endswith("/") or target.is_dir():
                target = target / "index.html"
            if not target.is_relative_to(site.resolve()):
                broken.append(BrokenLink(name, url, "points outside the site"))
            elif not target.is_file():
                broken.append(BrokenLink(name, url, "no such file"))
            elif parts.fragment and target.suffix == ".html" and unquote(parts.fragment) not in _anchors(target):
                broken.append(BrokenLink(name, url, f"no #{parts.fragment} in {target.relative_to(site.resolve())}"))
    return broken


def broken_links(site: Path) -> list[BrokenLink]:
    """Every broken internal link of every page of the built site."""
    site = Path(site)
    if not (site / "index.html").is_file():
        raise FileNotFoundError(f"no built site at {site} (make book)")
    _anchors.cache_clear()
    pages = [p for p in sorted(site.rglob("*.html")) if p.name not in SKIP_PAGES and "_static" not in p.parts]
    return [link for page in pages for link in check_page(site, page)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dlnotes.booktools.sitecheck", description=__doc__.split("\n\n")[0])
    parser.add_argument("site", type=Path, nargs="?", default=Path("_build/html"))
    broken = broken_links(parser.parse_args(argv).site)
    for link in broken:
        print(link)
    print(f"{len(broken)} broken links")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
