"""Colab-ready notebooks, made from the executed chapters of the built book.

MyST-NB writes every executed chapter to ``_build/jupyter_execute/<page>.ipynb`` (outputs in the
cells, glued values beside it in ``<page>.glue.json``). ``colab_notebook`` turns one of them into a
notebook that runs and reads well in Colab or any Jupyter:

- its first cell installs ``dlnotes`` from the book's repository when it runs in Colab, and does
  nothing elsewhere (``DLNOTES_INSTALL_FROM`` names another source: a local checkout, a wheel);
- its metadata asks for a Python 3 kernel and, in Colab, a GPU runtime;
- MyST that plain Jupyter cannot render is rewritten in its markdown cells: glued numbers become
  their values, ``{literalinclude}`` becomes the code it shows, admonitions become quotes,
  links to other chapters point at the published site, and the build's table of executions
  (``{nb-exec-table}``) becomes a link to the page that shows it.

The code cells are the chapter's, untouched. ``python -m dlnotes.booktools.notebooks export`` writes the
whole set (both languages) to ``_build/notebooks/``, the tree of the publish branch that Colab
links open; ``python -m dlnotes.booktools.notebooks publish-branch`` prints that branch's name.
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import posixpath
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

INSTALL_TAG = "dlnotes-install"  # cell tag of the install cell
COLAB = "https://colab.research.google.com/github"


@dataclass(frozen=True)
class BookSettings:
    """Where the book lives; read from ``_config.yml``, the one place that says it."""

    repository_url: str  # https://github.com/<org>/<repo>
    branch: str  # the branch the book is built from (Binder opens its .md chapters)
    notebooks_branch: str  # the publish branch that holds the executed notebooks (Colab opens them)
    site_url: str  # where the site is published, ending in "/"

    @property
    def github_path(self) -> str:
        """``<org>/<repo>`` of a GitHub repository URL."""
        match = re.fullmatch(r"https://github\.com/([^/]+)/([^/]+?)(?:\.git)?/?", self.repository_url)
        if match is None:
            raise ValueError(f"repository.url must be https://github.com/<org>/<repo>, got {self.repository_url!r}")
        return f"{match[1]}/{match[2]}"

    def colab_url(self, page: str) -> str:
        """The Colab link of a page (``book/en/basics/mlp``): its notebook on the publish branch."""
        return f"{COLAB}/{self.github_path}/blob/{self.notebooks_branch}/{page}.ipynb"

    def install_source(self) -> str:
        """The pip requirement that installs the package, with the extras the chapters use."""
        return f"dlnotes[data,fonts,sequences] @ git+{self.repository_url}@{self.branch}#subdirectory=code"


def read_settings(root: Path) -> BookSettings:
    """The repository, its branches and the site URL, from ``root/_config.yml``."""
    config = yaml.safe_load((Path(root) / "_config.yml").read_text("utf8"))
    repository, html = config.get("repository") or {}, config.get("html") or {}
    missing = [key for key in ("url", "branch", "notebooks_branch") if not repository.get(key)]
    if missing or not html.get("baseurl"):
        raise ValueError(f"_config.yml needs repository.url, .branch, .notebooks_branch and html.baseurl "
                         f"(missing: {missing + ([] if html.get('baseurl') else ['html.baseurl'])})")
    return BookSettings(repository_url=repository["url"].rstrip("/"), branch=repository["branch"],
                        notebooks_branch=repository["notebooks_branch"],
                        site_url=html["baseurl"].rstrip("/") + "/")


def install_cell(settings: BookSettings, *, language: str) -> dict:
    """The first cell: ``pip install`` the package in Colab (or from ``DLNOTES_INSTALL_FROM``); set the language."""
    source = f'''# Colab: install this book's package, dlnotes, from its repository. Elsewhere this cell does nothing
# (install it yourself: pip install "{settings.install_source()}"),
# unless DLNOTES_INSTALL_FROM names a source to install from instead, e.g. a local checkout's code/ folder.
# The figures of this notebook are labelled in DLNOTES_LANGUAGE ("zh" or "en").
import os, subprocess, sys
os.environ.setdefault("DLNOTES_LANGUAGE", "{language}")
source = os.environ.get("DLNOTES_INSTALL_FROM") or ("google.colab" in sys.modules and "{settings.install_source()}")
if source:
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", source], check=True)'''
    return {"cell_type": "code", "execution_count": None, "id": "dlnotes-install",
            "metadata": {"tags": [INSTALL_TAG]}, "outputs": [], "source": source}


# --- MyST -> plain Jupyter markdown -------------------------------------------------------------

_LITERALINCLUDE = re.compile(r"^(`{3,})\{literalinclude\}\s+(\S+)\n((?::[\w-]+:.*\n)*)\1[ \t]*$", re.M)
_GLUE = re.compile(r"\{glue:text\}`([^`:]+)(?::([^`]*))?`")
_FENCE_OPEN = re.compile(r"^(:{3,})\{([\w-]+)\}[ \t]*(.*)$")
_LINK = re.compile(r"\]\((?!https?://|mailto:|#)([^)\s]+?\.md)(#[^)\s]*)?\)")
_GLUE_FIGURE = re.compile(r"^(`{3,})\{glue:figure\}[ \t]+(\S+)\n((?::[\w-]+:.*\n)*)((?:(?!\1).*\n)*?)\1[ \t]*$", re.M)
_EXEC_TABLE = re.compile(r"^(`{3,})\{nb-exec-table\}[^\n]*\n\1[ \t]*$", re.M)  # the build's table of executions


def python_object_source(path: Path, name: str) -> str:
    """The source of a top-level function or class, or ``Class.method``, as ``:pyobject:`` shows it."""
    text = path.read_text("utf8")
    nodes, node = ast.parse(text).body, None
    for part in name.split("."):
        node = next((n for n in nodes if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                     and n.name == part), None)
        if node is None:
            raise ValueError(f"{path.name} has no {name!r}")
        nodes = node.body
    first = min([node.lineno] + [d.lineno for d in node.decorator_list])
    lines = text.splitlines()[first - 1:node.end_lineno]
    indent = len(lines[0]) - len(lines[0].lstrip())
    return "\n".join(line[indent:] for line in lines)


def glue_records(glue_file: Path) -> dict[str, dict]:
    """name -> mime bundle (``{"text/plain": ..., "image/svg+xml": ...}``) of every value a chapter glued."""
    if not glue_file.is_file():
        return {}
    return {name: record["data"] for name, record in json.loads(glue_file.read_text("utf8")).items()}


def glue_values(glue_file: Path) -> dict[str, str]:
    """name -> text/plain of every value a chapter glued (MyST-NB's ``<page>.glue.json``)."""
    return {name: data["text/plain"] for name, data in glue_records(glue_file).items() if "text/plain" in data}


FIGURE_MIMES = ("image/svg+xml", "image/png", "image/jpeg")


def glued_figures(source: str, *, page: str, records: dict[str, dict]) -> tuple[str, dict]:
    """``{glue:figure}`` blocks become an attached image and the caption: (markdown, cell attachments).

    In the book each twin page shows its own language's glued figure; in the notebook the figure
    comes along as an attachment of the markdown cell, so it shows before anything is run.
    """
    attachments: dict[str, dict] = {}

    def figure(match: re.Match) -> str:
        name, options, caption = match[2], dict(re.findall(r"^:([\w-]+):[ \t]*(.*)$", match[3], re.M)), match[4]
        bundle = records.get(name)
        if bundle is None:
            raise KeyError(f"{page}: glued figure {name!r} not found (was the chapter executed?)")
        mime = next((m for m in FIGURE_MIMES if m in bundle), None)
        if mime is None:
            raise ValueError(f"{page}: glued value {name!r} is not a figure (it has {sorted(bundle)})")
        filename = f"{name}.{mime.split('/')[1].split('+')[0]}"
        attachments[filename] = {mime: bundle[mime]}
        alt = options.get("alt", caption.strip().split("\n")[0])
        return f"![{alt}](attachment:{filename})\n\n*{' '.join(caption.split())}*"

    return _GLUE_FIGURE.sub(figure, source), attachments


def format_glued(text: str, spec: str | None) -> str:
    """A glued value as ``{glue:text}`` prints it: the format spec applied to the literal value."""
    if not spec:
        return text
    return format(ast.literal_eval(text), spec)


def plain_markdown(source: str, *, page: str, root: Path, glue: dict[str, str], site_url: str) -> str:
    """One markdown cell of a chapter, with its MyST-only syntax rewritten (see the module docstring)."""

    def include(match: re.Match) -> str:
        path = root / match[2].lstrip("/") if match[2].startswith("/") else root / posixpath.dirname(page) / match[2]
        options = dict(re.findall(r"^:([\w-]+):[ \t]*(.*)$", match[3], re.M))
        code = python_object_source(path, options["pyobject"]) if "pyobject" in options else path.read_text("utf8")
        where = path.relative_to(root / "code").as_posix() if path.is_relative_to(root / "code") else path.name
        return f"`{where}`:\n\n```{options.get('language', 'python')}\n{code.rstrip()}\n```"

    def glued(match: re.Match) -> str:
        if match[1] not in glue:
            raise KeyError(f"{page}: glued value {match[1]!r} not found (was the chapter executed?)")
        return format_glued(glue[match[1]], match[2])

    def link(match: re.Match) -> str:
        target = posixpath.normpath(posixpath.join(posixpath.dirname(page), match[1]))
        return f"]({site_url}{target[:-len('.md')]}.html{match[2] or ''})"

    text = _LITERALINCLUDE.sub(include, source)
    text = _EXEC_TABLE.sub(lambda m: f"*执行记录表 · Table of executions: {site_url}{page.removesuffix('.md')}.html*", text)
    text = _GLUE.sub(glued, text)
    text = _LINK.sub(link, text)
    return _quote_fences(text)


def _quote_fences(text: str) -> str:
    """``:::{admonition} Title`` ... ``:::`` (and ``:::{note}`` etc.) become quoted blocks."""
    out, lines, i = [], text.split("\n"), 0
    while i < len(lines):
        opened = _FENCE_OPEN.match(lines[i])
        if opened is None:
            out.append(lines[i])
            i += 1
            continue
        colons, kind, title = opened.groups()
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == colons), None)
        if end is None:
            raise ValueError(f"unclosed {colons}{{{kind}}} fence")
        body = [line for line in lines[i + 1:end] if not re.match(r"^:[\w-]+:", line)]  # drop :class: etc.
        heading = title.strip() or kind.capitalize()
        out += [f"> **{heading}**", ">"] + [f"> {line}".rstrip() for line in _quote_fences("\n".join(body)).split("\n")]
        i = end + 1
    return "\n".join(out)


# --- whole notebooks ----------------------------------------------------------------------------

def colab_notebook(executed: dict, *, page: str, root: Path, glue: dict[str, dict], settings: BookSettings) -> dict:
    """The Colab-ready copy of one executed chapter notebook (the input is not modified).

    ``glue`` holds the chapter's glued values as mime bundles (``glue_records``).
    """
    notebook = copy.deepcopy(executed)
    cells = [install_cell(settings, language="zh" if "/zh/" in f"/{page}" else "en")]
    texts = {name: data["text/plain"] for name, data in glue.items() if "text/plain" in data}
    for cell in notebook["cells"]:
        if cell["cell_type"] == "markdown":
            source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            source, attachments = glued_figures(source, page=page, records=glue)
            cell["source"] = plain_markdown(source, page=page, root=Path(root), glue=texts, site_url=settings.site_url)
            if attachments:
                cell["attachments"] = attachments
        cells.append(cell)
    notebook["cells"] = cells
    metadata = notebook["metadata"]
    for key in ("jupytext", "source_map"):  # build-only metadata
        metadata.pop(key, None)
    metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    metadata["accelerator"] = "GPU"  # Colab: open with a GPU runtime
    metadata["colab"] = {"provenance": [], "gpuType": "T4", "toc_visible": True}
    notebook.setdefault("nbformat", 4)
    notebook["nbformat_minor"] = max(notebook.get("nbformat_minor", 5), 5)  # cell ids need 4.5
    return notebook


def has_code(path: Path) -> bool:
    """Whether the notebook at ``path`` has a code cell (part index pages have none)."""
    return any(cell["cell_type"] == "code" for cell in json.loads(Path(path).read_text("utf8"))["cells"])


def chapter_pages(build: Path) -> list[str]:
    """The pages (``book/en/basics/mlp``) that the build executed and that contain code."""
    executed = Path(build) / "jupyter_execute"
    if not executed.is_dir():
        raise FileNotFoundError(f"{executed} does not exist: build the book first (make book)")
    return [path.relative_to(executed).with_suffix("").as_posix()
            for path in sorted(executed.glob("book/**/*.ipynb")) if has_code(path)]


def executed_notebook(build: Path, page: str) -> dict:
    """The executed notebook of ``page``, outputs included.

    MyST-NB writes ``jupyter_execute/<page>.ipynb`` from the notebook as it was read: when a page's
    outputs come from the execution cache (always, for the second language of a chapter), its
    client swaps the cached notebook in afterwards, and the file is written without outputs. They
    are then merged in from the cache, as MyST-NB itself does for the page.
    """
    import nbformat

    path = Path(build) / "jupyter_execute" / f"{page}.ipynb"
    notebook = json.loads(path.read_text("utf8"))
    if any(cell.get("outputs") for cell in notebook["cells"] if cell["cell_type"] == "code"):
        return notebook
    cache_dir = Path(build) / ".jupyter_cache"
    if not cache_dir.is_dir():
        raise FileNotFoundError(f"{path} has no outputs and there is no execution cache at {cache_dir}")
    from jupyter_cache import get_cache

    try:
        _, merged = get_cache(cache_dir).merge_match_into_notebook(nbformat.reads(path.read_text("utf8"), as_version=4))
    except KeyError as error:
        raise KeyError(f"{page}: no executed copy in {cache_dir}; build the book again (make book)") from error
    return json.loads(nbformat.writes(merged))


def write_colab_notebook(page: str, *, build: Path, root: Path, out: Path, settings: BookSettings) -> Path:
    """Write the Colab-ready notebook of ``page`` to ``out/<page>.ipynb`` and return its path."""
    source = Path(build) / "jupyter_execute" / f"{page}.ipynb"
    notebook = colab_notebook(executed_notebook(build, page), page=page, root=root,
                              glue=glue_records(source.with_suffix(".glue.json")), settings=settings)
    target = Path(out) / f"{page}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(notebook, ensure_ascii=False, indent=1, sort_keys=True) + "\n"
    if not target.is_file() or target.read_text("utf8") != text:  # unchanged files keep their mtime
        target.write_text(text, "utf8")
    return target


def export(*, build: Path, root: Path, out: Path) -> list[Path]:
    """Write the Colab-ready notebook of every executed chapter, both languages, under ``out``."""
    settings = read_settings(root)
    return [write_colab_notebook(page, build=build, root=root, out=out, settings=settings)
            for page in chapter_pages(build)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dlnotes.booktools.notebooks", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    export_cmd = commands.add_parser("export", help="write the Colab-ready notebooks of the built book")
    export_cmd.add_argument("--root", type=Path, default=Path("."), help="the book's root (with _config.yml)")
    export_cmd.add_argument("--build", type=Path, default=None, help="the build folder (default: ROOT/_build)")
    export_cmd.add_argument("--out", type=Path, default=None, help="where to write (default: BUILD/notebooks)")
    commands.add_parser("publish-branch", help="print the branch that holds the notebooks")
    args = parser.parse_args(argv)
    if args.command == "publish-branch":
        print(read_settings(Path(".")).notebooks_branch)
        return 0
    build = args.build or args.root / "_build"
    written = export(build=build, root=args.root, out=args.out or build / "notebooks")
    print(f"wrote {len(written)} notebooks under {args.out or build / 'notebooks'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
