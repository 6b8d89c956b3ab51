"""Sphinx extension: never publish outputs computed by an older version of the package.

MyST-NB's execution cache keys a notebook by its code cells only, so after a change to
``dlnotes/train.py`` it would happily serve the outputs of the old code. This extension closes
that gap. Before Sphinx reads any page it computes, for every executable page, a digest of the
sources of the package modules that page imports, directly or through other package modules.
When the digest differs from the one recorded at the last build (or none was recorded), the
page's cache record is dropped and the page is re-read, so it executes again. Pages whose
modules did not change keep their cache; a prose-only edit executes nothing. The active
``DLNOTES_PROFILE`` is part of the digest, so one profile's outputs never stand in for another's.

Enable with ``extensions = ["dlnotes.booktools.bookcache"]``; options:
``dlnotes_cache_package`` (default ``"dlnotes"``) and ``dlnotes_cache_package_dir``
(default: where that package is installed).
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import os
from pathlib import Path

BUILD_ENV = "DLNOTES_BUILD"  # = dlnotes.book.BUILD_ENV, not imported here: that would load torch into Sphinx

STATE_FILE = "dlnotes-deps.json"


def package_modules(package_dir: Path, package: str) -> dict[str, Path]:
    """Map dotted module names to their files: {"dlnotes": .../__init__.py, "dlnotes.data": ...}."""
    modules = {}
    for path in sorted(Path(package_dir).rglob("*.py")):
        parts = list(path.relative_to(package_dir).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join([package, *parts])] = path
    return modules


def imported_modules(source: str, *, package: str, parent: str | None = None) -> set[str]:
    """Dotted names of ``package`` modules (or candidates) that ``source`` imports.

    ``parent`` is the package the importing module lives in, for relative imports. ``from dlnotes import
    data`` yields both ``dlnotes`` and ``dlnotes.data``; names that are not modules are dropped
    later by :func:`dependency_closure`.
    """
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level and parent is not None:  # from . import x, from ..y import z
                anchor = parent.split(".")[: len(parent.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names.update(f"{base}.{a.name}" for a in node.names)
    return {n for n in names if n == package or n.startswith(package + ".")}


def dependency_closure(roots: set[str], modules: dict[str, Path], *, package: str) -> set[str]:
    """Every package module that importing ``roots`` executes (parents' ``__init__`` included)."""
    todo, seen = list(roots), set()
    while todo:
        name = todo.pop()
        if name in seen or name not in modules:
            continue
        seen.add(name)
        parts = name.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))  # parent packages
        parent = name if modules[name].name == "__init__.py" else name.rpartition(".")[0]
        todo.extend(imported_modules(modules[name].read_text("utf8"), package=package, parent=parent))
    return seen


def dependency_digest(code: str, *, package_dir: Path, package: str) -> str:
    """A digest of the sources of every package module ``code`` depends on ("" if none)."""
    modules = package_modules(package_dir, package)
    used = dependency_closure(imported_modules(code, package=package), modules, package=package)
    digest = hashlib.sha256()
    for name in sorted(used):
        digest.update(name.encode() + b"\0" + modules[name].read_bytes() + b"\0")
    return digest.hexdigest() if used else ""


def _notebook_code(nb) -> str:
    return "\n".join(cell.source for cell in nb.cells if cell.cell_type == "code")


def default_package_dir(package: str) -> Path | None:
    """Where ``package`` is installed (its ``__init__.py``'s folder), or None if not importable."""
    spec = importlib.util.find_spec(package)
    return None if spec is None or spec.origin is None else Path(spec.origin).parent


def page_digest(nb, *, package_dir: Path, package: str, profile: str) -> str:
    """The digest of the package code a page runs, under ``profile`` ("" for a page without any)."""
    digest = dependency_digest(_notebook_code(nb), package_dir=package_dir, package=package)
    # the same cells give other outputs under another profile
    return hashlib.sha256(f"{digest} profile={profile}".encode()).hexdigest() if digest else ""


def current_profile() -> str:
    return os.environ.get("DLNOTES_PROFILE", "").strip() or "default"


def drop_outdated_records(cache_path: Path, notebooks: dict, *, package_dir: Path, package: str,
                          profile: str, log=print) -> dict[str, str]:
    """Drop the cache records of pages whose package code changed since they were cached.

    ``notebooks`` maps docnames ("book/en/basics/mlp") to notebooks read as MyST-NB reads them.
    The state file in the cache folder says which digest each page's record was made with; it is
    rewritten now, as the outdated records are dropped now. Both the Sphinx hook and the parallel
    pre-execution (:mod:`dlnotes.booktools.bookexec`) call this, so either may run first. Returns the digests.
    """
    from jupyter_cache import get_cache

    state_path = Path(cache_path) / STATE_FILE
    state = json.loads(state_path.read_text("utf8")) if state_path.is_file() else {}
    cache = get_cache(str(cache_path))
    digests = {}
    for docname, nb in sorted(notebooks.items()):
        digest = digests[docname] = page_digest(nb, package_dir=package_dir, package=package, profile=profile)
        if state.get(docname) == digest:
            continue
        try:
            record = cache.match_cache_notebook(nb)
        except KeyError:
            record = None
        if record is not None:
            cache.remove_cache(record.pk)
            log(f"dlnotes.booktools.bookcache: {docname}: package code changed, dropped cache record {record.pk}")
    state.update(digests)
    Path(cache_path).mkdir(parents=True, exist_ok=True)
    state_path.write_text(json.dumps(state, indent=1, sort_keys=True), "utf8")
    return digests


def _outdated(app, env, added, changed, removed) -> list[str]:
    from myst_nb.core.read import is_myst_markdown_notebook, read_myst_markdown_notebook
    from sphinx.util import logging

    logger = logging.getLogger(__name__)
    package = app.config.dlnotes_cache_package
    package_dir = app.config.dlnotes_cache_package_dir or default_package_dir(package)
    if not package_dir:
        logger.warning(f"dlnotes.booktools.bookcache: package {package!r} is not importable; cache not checked")
        return []
    notebooks = {}
    for docname in sorted(env.found_docs):
        path = Path(env.doc2path(docname))
        text = path.read_text("utf8")
        if is_myst_markdown_notebook(text):
            # read as myst-nb reads it (its parser config, `:load:` relative to the page): same cells
            notebooks[docname] = read_myst_markdown_notebook(text, config=getattr(env, "myst_config", None), path=path)
    digests = drop_outdated_records(Path(env.mystnb_config.execution_cache_path), notebooks,
                                    package_dir=Path(package_dir), package=package, profile=current_profile(),
                                    log=logger.info)
    # The digests the environment's doctrees were read with. They live in the environment, which
    # Sphinx saves only after a complete read, so after an interrupted build (Ctrl-C, a killed
    # process) the pages read then are read again.
    read_with = getattr(env, "dlnotes_digests", {})
    stale = [d for d, digest in digests.items()
             if read_with.get(d) != digest and d not in added and d not in changed]
    env.dlnotes_digests = digests  # saved with the environment only if every stale page was read
    if stale:
        logger.info(f"dlnotes.booktools.bookcache: re-reading {len(stale)} page(s) whose package code changed")
    return stale


def setup(app) -> dict:
    app.add_config_value("dlnotes_cache_package", "dlnotes", "env")
    app.add_config_value("dlnotes_cache_package_dir", "", "env")
    app.connect("env-get-outdated", _outdated)
    os.environ[BUILD_ENV] = "1"  # kernels MyST-NB starts itself inherit it, as bookexec's do
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
