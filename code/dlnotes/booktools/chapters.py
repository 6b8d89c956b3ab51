"""The book's chapters as notebooks: read them, find their twins, run one without building the book.

    python -m dlnotes.booktools.chapters run book/en/basics/linear-regression.md   # execute, report time
    python -m dlnotes.booktools.chapters list                                      # chapters in _toc.yml

Needs the book's build requirements (myst-nb, nbclient); the teaching modules do not.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

LANGUAGES = ("zh", "en")


def read_chapter(path: Path):
    """The chapter's MyST markdown as an nbformat notebook (MyST-NB's own reader)."""
    from myst_nb.core.read import read_myst_markdown_notebook

    return read_myst_markdown_notebook(Path(path).read_text("utf8"), path=str(path))


def code_cells(path: Path) -> list[str]:
    """The sources of the chapter's code cells, in order."""
    return [c.source for c in read_chapter(path).cells if c.cell_type == "code"]


def twin(path: Path) -> Path:
    """book/zh/x/y.md <-> book/en/x/y.md."""
    parts = list(Path(path).parts)
    for i, part in enumerate(parts[:-1]):
        if part in LANGUAGES and i > 0 and parts[i - 1] == "book":
            parts[i] = LANGUAGES[1 - LANGUAGES.index(part)]
            return Path(*parts)
    raise ValueError(f"{path} is not under book/zh/ or book/en/")


def toc_files(root: Path) -> list[Path]:
    """Every page listed in ``_toc.yml``, as paths of existing or missing ``.md`` files."""
    import yaml

    found: list[Path] = []

    def walk(node) -> None:
        if isinstance(node, dict):
            if "file" in node:
                found.append(root / (node["file"] + ".md"))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    toc = yaml.safe_load((root / "_toc.yml").read_text("utf8"))
    found.append(root / (toc["root"] + ".md"))
    walk({k: v for k, v in toc.items() if k != "root"})
    return found


def execute(path: Path, *, timeout: int = 600):
    """Run the chapter top to bottom in a fresh kernel, in a temporary folder.

    Returns (executed notebook, seconds); raises nbclient's CellExecutionError on failure.
    """
    from nbclient import NotebookClient

    nb = read_chapter(path)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as cwd:
        NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": cwd}}).execute()
    return nb, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dlnotes.booktools.chapters", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute chapters and print the time each took")
    run.add_argument("paths", nargs="+", type=Path)
    sub.add_parser("list", help="print the pages listed in _toc.yml")
    args = parser.parse_args(argv)
    if args.command == "list":
        for p in toc_files(Path.cwd()):
            print(p.relative_to(Path.cwd()))
        return 0
    failed = 0
    for path in args.paths:
        try:
            _, seconds = execute(path)
            print(f"{seconds:7.1f} s  {path}", flush=True)
        except Exception as e:  # report every chapter, then fail
            failed += 1
            print(f" FAILED  {path}\n{e}", file=sys.stderr, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
