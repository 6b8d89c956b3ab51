"""Execute the book's chapters in parallel into MyST-NB's cache, before Sphinx renders them.

    python -m dlnotes.booktools.bookexec --root . --cache _build/.jupyter_cache      # what `make book` runs

MyST-NB executes the pages one after the other while Sphinx reads them. This command runs first:
it reads every page of ``_toc.yml`` as MyST-NB reads it, drops the cache records whose package
code changed (:func:`dlnotes.booktools.bookcache.drop_outdated_records`), and executes every notebook the
cache lacks, ``--workers`` at a time (default: one per core), each in a fresh kernel in a
temporary folder with the timeout of ``_config.yml``. Pages with the same code cells (a chapter's
Chinese and English twins) are one notebook: it runs once. Each result goes into the cache as
MyST-NB would put it there, so the build that follows renders from the cache and executes
nothing. A notebook that fails is reported and left out of the cache: the build runs it again and
writes its traceback to ``_build/html/reports/``, as without this step.

Each kernel gets ``cores // workers`` threads (``OMP_NUM_THREADS``), so the workers do not fight
over the cores. A summary (pages, seconds, failures) goes to ``--report`` as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path

from dlnotes.booktools import bookcache
from dlnotes.booktools.chapters import read_chapter, toc_files

ANSI = re.compile(r"\x1b\[[0-9;]*m")  # the kernel colours its tracebacks


@dataclass
class Job:
    """One notebook to execute: the pages (docnames) that share its code cells."""

    pages: list[str]
    path: str  # the first page's file, the one executed
    seconds: float = 0.0
    error: str | None = None


@dataclass
class Report:
    workers: int
    threads: int
    pages: int  # executable pages found
    cached: int  # of them, served by the cache without running
    jobs: list[Job] = field(default_factory=list)
    wall_seconds: float = 0.0

    @property
    def failed(self) -> list[Job]:
        return [j for j in self.jobs if j.error]

    def to_json(self) -> str:
        data = asdict(self)
        data["failed"] = [j.path for j in self.failed]
        return json.dumps(data, indent=1, ensure_ascii=False)


def read_pages(root: Path) -> dict[str, Path]:
    """Docnames ("book/en/basics/mlp") of the executable pages of ``_toc.yml``, with their files."""
    from myst_nb.core.read import is_myst_markdown_notebook

    pages = {}
    for path in toc_files(root):
        if path.is_file() and is_myst_markdown_notebook(path.read_text("utf8")):
            pages[path.relative_to(root).with_suffix("").as_posix()] = path
    return pages


def plan(pages: dict[str, Path], *, cache_path: Path, package_dir: Path, package: str = "dlnotes",
         profile: str, log=print) -> tuple[list[Job], int]:
    """Drop outdated records, then group the pages the cache lacks by their code: (jobs, cached)."""
    from jupyter_cache import get_cache

    notebooks = {doc: read_chapter(path) for doc, path in pages.items()}  # as MyST-NB reads them
    bookcache.drop_outdated_records(cache_path, notebooks, package_dir=package_dir, package=package,
                                    profile=profile, log=log)
    cache = get_cache(str(cache_path))
    jobs: dict[str, Job] = {}
    cached = 0
    for doc, nb in notebooks.items():
        try:
            cache.match_cache_notebook(nb)
            cached += 1
            continue
        except KeyError:
            pass
        _, key = cache.create_hashed_notebook(nb)
        if key in jobs:
            jobs[key].pages.append(doc)
        else:
            jobs[key] = Job(pages=[doc], path=str(pages[doc]))  # the page's file, as given
    return list(jobs.values()), cached


def _execute(path: str, timeout: int, threads: int) -> tuple[str, float, str | None]:
    """In a worker process: run the page in a fresh kernel; (notebook JSON, seconds, traceback)."""
    import tempfile

    import nbformat
    from jupyter_cache.executors.utils import single_nb_execution

    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # the kernel inherits this environment
        os.environ[name] = str(threads)
    os.environ[bookcache.BUILD_ENV] = "1"  # book.glue_by_language: glue each language's figure, display none
    nb = read_chapter(Path(path))
    with tempfile.TemporaryDirectory() as cwd:  # as run_in_temp: chapters write nothing beside their sources
        result = single_nb_execution(nb, cwd=cwd, allow_errors=False, timeout=timeout, meta_override=True)
    error = ANSI.sub("", result.exc_string) if result.err is not None else None
    return nbformat.writes(nb), result.time, error


def execute(jobs: list[Job], *, cache_path: Path, workers: int, threads: int, timeout: int,
            log=print) -> None:
    """Run ``jobs`` on ``workers`` processes; cache each success as MyST-NB does. Fills in the jobs."""
    import nbformat
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    cache = get_cache(str(cache_path))
    width = len(str(len(jobs)))
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(_execute, job.path, timeout, threads): job for job in jobs}
        try:
            for done, future in enumerate(as_completed(futures), start=1):
                job = futures[future]
                text, job.seconds, job.error = future.result()
                twins = f" (+{len(job.pages) - 1} twin)" if len(job.pages) > 1 else ""
                if job.error:
                    log(f"[{done:>{width}}/{len(jobs)}] FAILED {job.path}{twins} after {job.seconds:.1f} s:\n"
                        + "\n".join(job.error.strip().splitlines()[-12:]))
                    continue
                # one record serves every page with these code cells (the cache matches by hash)
                cache.cache_notebook_bundle(
                    CacheBundleIn(nbformat.reads(text, as_version=4), str(Path(job.path).resolve()),
                                  data={"execution_seconds": job.seconds}),
                    check_validity=False, overwrite=True)
                log(f"[{done:>{width}}/{len(jobs)}] {job.seconds:6.1f} s  {job.path}{twins}")
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def run(root: Path, *, cache_path: Path, workers: int | None = None, timeout: int = 600,
        package: str = "dlnotes", package_dir: Path | None = None, log=print) -> Report:
    """Execute what the cache lacks for the book at ``root``; return what happened.

    ``package_dir`` is where ``package``'s sources are (default: where it is installed).
    """
    start = time.perf_counter()
    cores = os.cpu_count() or 1
    workers = max(1, workers or cores)
    threads = max(1, cores // workers)
    package_dir = package_dir or bookcache.default_package_dir(package)
    if package_dir is None:
        raise RuntimeError(f"package {package!r} is not importable: install it (pip install -e ./code)")
    pages = read_pages(root)
    jobs, cached = plan(pages, cache_path=cache_path, package_dir=package_dir, package=package,
                        profile=bookcache.current_profile(), log=log)
    report = Report(workers=workers, threads=threads, pages=len(pages), cached=cached, jobs=jobs)
    if jobs:
        n = sum(len(j.pages) for j in jobs)
        log(f"dlnotes.booktools.bookexec: {cached} of {len(pages)} pages cached; executing {len(jobs)} notebooks "
            f"({n} pages) on {workers} workers, {threads} thread(s) each")
        execute(jobs, cache_path=cache_path, workers=workers, threads=threads, timeout=timeout, log=log)
    report.wall_seconds = time.perf_counter() - start
    summary = f"dlnotes.booktools.bookexec: {len(jobs)} executed, {len(report.failed)} failed, {report.wall_seconds:.1f} s"
    if report.failed:
        summary += " (the build runs the failed ones again and writes their reports)"
    log(summary)
    return report


def _config_timeout(root: Path) -> int:
    import yaml

    if not (root / "_config.yml").is_file():
        raise SystemExit(f"dlnotes.booktools.bookexec: no _config.yml in {root}: not the root of a Jupyter Book")
    config = yaml.safe_load((root / "_config.yml").read_text("utf8")) or {}
    return int((config.get("execute") or {}).get("timeout", 600))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dlnotes.booktools.bookexec", description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="the book (where _toc.yml is)")
    parser.add_argument("--cache", type=Path, default=None, help="default: ROOT/_build/.jupyter_cache")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("DLNOTES_WORKERS", "0")) or None,
                        help="notebooks run at once (default: DLNOTES_WORKERS, else one per core)")
    parser.add_argument("--report", type=Path, default=None, help="default: next to the cache, dlnotes-exec.json")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    cache_path = (args.cache or root / "_build" / ".jupyter_cache").resolve()
    report = run(root, cache_path=cache_path, workers=args.workers, timeout=_config_timeout(root))
    (args.report or cache_path.parent / "dlnotes-exec.json").write_text(report.to_json(), "utf8")
    return 0  # failures are the build's to report (it runs them again, with the report)


if __name__ == "__main__":
    sys.exit(main())
