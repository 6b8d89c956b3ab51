"""The build benchmark behind `make bench`: every number of the appendix's build tables.

    python -m dlnotes.booktools.buildbench --root . --out code/dlnotes/booktools/bench_results.py

In a scratch copy of the book (the working tree is never touched), one after the other on the
same machine:

1. a cold build (empty caches): parallel execution (:mod:`dlnotes.booktools.bookexec`), then Sphinx;
2. the same build again, with nothing changed;
3. after a prose-only edit of one chapter: must execute nothing;
4. after an edit of one package module: must execute exactly the chapters that import it;
   after an edit of one chapter's settings cell: must execute exactly that chapter; after an
   edit of a core module: executes the chapters that import it, and says how many;
5. the package's training loop against a bare loop, tensor batches against a DataLoader;
6. the built site's size and its heaviest pages;
7. (unless ``--no-repro``) a second cold execution, compared output by output with the first.

It prints the tables, checks the README's targets (:data:`dlnotes.booktools.benchreport.TARGETS`), saves
the run as a Python module that the appendix imports (so that a new run re-executes the
appendix), and exits 1 if a target or a check failed. ``--full`` runs the full profile's
execution only (no Sphinx), for the GPU machine, and adds it to the saved run.
"""

from __future__ import annotations

import argparse
import ast
import datetime
import json
import os
import platform
import pprint
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from dlnotes.booktools import benchreport, bookcache, loopbench
from dlnotes.booktools.bookexec import read_pages

PROSE_PAGE = "book/en/basics/linear-regression.md"
MODULE = "cnn/pooling.py"  # a part module a few chapters import, not all of them
CORE_MODULE = "train.py"  # a core module that many chapters import: the bench reports what an edit costs
# one chapter's settings cell, edited in both languages: one number of its hp = config.hparams(...)
SETTING_CHAPTER, SETTING_EDIT = "basics/linear-regression", ("lr=0.03,", "lr=0.04,")
# (chapter, glue, label): each chapter's headline number, for the per-chapter tables
HEADLINES = (
    ("basics/linear-regression", "scratch_final_loss", "training loss"),
    ("basics/softmax-regression", "concise_test_acc", "test accuracy"),
    ("basics/mlp", "mlp_gain", "test accuracy, MLP minus softmax"),
    ("training/weight-decay", "best_test_loss", "test loss, best weight decay"),
    ("training/dropout", "eval_acc", "test accuracy"),
    ("training/optimisation", "best_loss", "best training loss"),
    ("training/house-prices", "best_valid", "validation log RMSE"),
    ("cnn/lenet", "main_test_acc", "test accuracy"),
    ("cnn/modern-cnns", "vgg_test_acc", "VGG test accuracy (%)"),
    ("cnn/batch-norm", "bn_acc", "test accuracy with BN"),
    ("cnn/resnet", "small_test_acc", "ResNet test accuracy (%)"),
    ("cnn/fine-tuning", "pretrain_test_acc", "pre-training test accuracy"),
    ("sequences/sequence-models", "best_tau_rmse", "test RMSE, best autoregression"),
    ("sequences/language-models", "ppl_best", "held-out perplexity, best n-gram"),
    ("sequences/rnn", "ppl_elman", "held-out perplexity, RNN"),
    ("sequences/gru-lstm", "ppl_gru", "held-out perplexity, GRU"),
    ("sequences/deep-bidirectional", "ppl_deep", "held-out perplexity, two-layer GRU"),
    ("sequences/seq2seq", "bleu_fra", "BLEU, English to French"),
    ("sequences/attention", "exact_dot", "numbers translated exactly (%), attention"),
    ("sequences/self-attention", "acc_with", "reversal accuracy (%), with positions"),
    ("sequences/transformer", "bleu_tf", "BLEU, Transformer"),
    ("sequences/pretraining", "gpt_ppl", "held-out perplexity, GPT on Tang poems"),
    ("applications/detection", "top_hit", "test images whose first box hits (%)"),
    ("applications/style-transfer", "style_drop", "style loss reduced by this factor, random features"),
    ("applications/gan", "ns_modes", "modes covered, non-saturating GAN"),
    ("applications/dcgan", "fd_balanced", "Frechet distance to real digits, balanced DCGAN"),
    ("applications/word2vec", "purity_sg_zh", "Tang characters nearest to their own group (%)"),
    ("applications/sentiment", "best_net_acc", "reviews classified correctly (%), best network"),
    ("applications/graphs", "gcn_acc", "unlabelled members classified (%), GCN"),
)

# (model, image side, images): the training speeds measured with the full profile, data on the GPU
SPEED_RUNS = (("lenet", 28, 60000), ("resnet18", 96, 10240))


def scratch_copy(root: Path, dest: Path) -> Path:
    """The book's files (tracked and untracked, not ignored) copied to ``dest``."""
    try:
        listed = subprocess.run(["git", "-C", str(root), "ls-files", "-co", "--exclude-standard", "-z"],
                                check=True, capture_output=True).stdout.decode().split("\0")
        names = [n for n in listed if n and (root / n).is_file()]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: everything but builds
        skip = {"_build", ".venv", ".git", "__pycache__"}
        names = [p.relative_to(root).as_posix() for p in root.rglob("*")
                 if p.is_file() and not skip & set(p.relative_to(root).parts)]
    for name in names:
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, dest / name)
    return dest


class Scratch:
    """A copy of the book whose builds import the copy's package (so its edits count)."""

    def __init__(self, root: Path, dest: Path, *, workers: int | None, log=print):
        self.dir = scratch_copy(root, dest)
        self.cache = self.dir / "_build" / ".jupyter_cache"
        self.logs = self.dir / "bench-logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.log = log
        self.env = dict(os.environ)
        self.env["PYTHONPATH"] = os.pathsep.join([str(self.dir / "code"), self.env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        self.env["DLNOTES_CACHE"] = str(self.dir / "_build" / "dlnotes-cache")  # data fetched again too
        if workers:
            self.env["DLNOTES_WORKERS"] = str(workers)

    def _run(self, step: str, cmd: list[str]) -> float:
        start = time.perf_counter()
        with open(self.logs / f"{step}.log", "w", encoding="utf8") as out:
            rc = subprocess.run(cmd, cwd=self.dir, env=self.env, stdout=out, stderr=subprocess.STDOUT).returncode
        if rc != 0:
            raise RuntimeError(f"{step}: {' '.join(cmd[:4])} ... failed ({rc}); see {self.logs / f'{step}.log'}")
        return time.perf_counter() - start

    def execute(self, step: str, *, cache: Path | None = None) -> tuple[float, dict]:
        report = self.logs / f"{step}-exec.json"
        seconds = self._run(f"{step}-exec", [sys.executable, "-m", "dlnotes.booktools.bookexec", "--root", ".", "--cache",
                                             str(cache or self.cache), "--report", str(report)])
        return seconds, json.loads(report.read_text("utf8"))

    def build(self, step: str) -> dict:
        """`make book` in the copy, timed; which pages executed, in either phase."""
        self.log(f"bench: {step} build ...")
        exec_s, report = self.execute(step)
        if report["failed"]:
            raise RuntimeError(f"{step}: chapters failed: {report['failed']}")
        jb = str(Path(sys.executable).with_name("jupyter-book"))
        render_s = self._run(f"{step}-render", [jb, "build", ".", "--path-output", ".", "-W", "-n", "--keep-going"])
        sphinx_log = (self.logs / f"{step}-render.log").read_text("utf8")
        executed = sorted(p for job in report["jobs"] for p in job["pages"])
        result = {"seconds": exec_s + render_s, "exec_seconds": exec_s, "render_seconds": render_s,
                  "notebooks": len(report["jobs"]), "executed": executed,
                  "sphinx_executed": sphinx_log.count("Executing notebook"),
                  "jobs": report["jobs"], "workers": report["workers"], "threads": report["threads"]}
        self.log(f"bench: {step}: {result['seconds']:.1f} s ({exec_s:.1f} s executing {len(report['jobs'])} "
                 f"notebooks, {render_s:.1f} s Sphinx)")
        return result

    def edit_module(self, module: str, step: str) -> tuple[dict, list[str]]:
        """Append a line to the package file ``module`` and rebuild; the build and the pages importing it."""
        path = self.dir / "code" / "dlnotes" / module
        path.write_text(path.read_text("utf8") + "\n# a line the benchmark added\n", "utf8")
        expected = self.dependents(module)
        build = self.build(step)
        build["edited"], build["expected"] = f"code/dlnotes/{module}", expected
        return build, expected

    def dependents(self, module: str) -> list[str]:
        """The pages whose code imports ``module`` ("cnn/pooling.py"), directly or through other modules."""
        from dlnotes.booktools.chapters import code_cells

        package_dir = self.dir / "code" / "dlnotes"
        modules = bookcache.package_modules(package_dir, "dlnotes")
        name = dotted_name(module)
        found = []
        for doc, path in read_pages(self.dir).items():
            code = "\n".join(code_cells(path))
            roots = bookcache.imported_modules(code, package="dlnotes")
            if name in bookcache.dependency_closure(roots, modules, package="dlnotes"):
                found.append(doc)
        return sorted(found)


def dotted_name(module: str) -> str:
    """The import name of a package file: "cnn/pooling.py" -> "dlnotes.cnn.pooling"."""
    return ".".join(["dlnotes", *Path(module).with_suffix("").parts])


def edit_setting(root: Path) -> list[str]:
    """Change one number in the settings cell of :data:`SETTING_CHAPTER`, in both languages.

    Returns the pages (docnames) that must execute again: the chapter's two twins.
    """
    old, new = SETTING_EDIT
    pages = []
    for lang in ("en", "zh"):
        page = root / "book" / lang / f"{SETTING_CHAPTER}.md"
        text = page.read_text("utf8")
        start = text.find("hp = config.hparams(")
        end = text.find("\n)\n", start)
        if start < 0 or old not in text[start:end]:
            raise RuntimeError(f"bench: {page} has no settings cell with {old!r}: update SETTING_EDIT")
        page.write_text(text[:start] + text[start:end].replace(old, new, 1) + text[end:], "utf8")
        pages.append(f"book/{lang}/{SETTING_CHAPTER}")
    return sorted(pages)


def headline_numbers(cache: Path) -> dict[str, tuple[str, object]]:
    """{chapter: (label, value)} read from the glued values of the cached notebooks."""
    from jupyter_cache import get_cache

    c = get_cache(str(cache))
    wanted = {chapter: (glue, label) for chapter, glue, label in HEADLINES}
    found = {}
    for record in c.list_cache_records():
        chapter = benchreport.chapter_of(record.uri)
        if chapter in wanted:
            glue, label = wanted[chapter]
            found[chapter] = (label, benchreport.glued_number(c.get_cache_bundle(record.pk).nb, glue))
    return found


def chapter_rows(build: dict, cache: Path) -> list[dict]:
    heads = headline_numbers(cache)
    rows = [{"chapter": benchreport.chapter_of(job["path"]), "seconds": job["seconds"]} for job in build["jobs"]]
    for row in rows:
        row["metric"], row["value"] = heads.get(row["chapter"], ("", None))
    return sorted(rows, key=lambda r: -r["seconds"])


def measure_loops(*, device: str = "cpu") -> dict:
    rows = {}
    for label, model, record in (("package loop / bare loop", "mlp", True), ("package loop / bare loop", "lenet", True),
                                 ("the same, nothing recorded", "mlp", False)):
        r = loopbench.loop_ratio(model=model, record=record, num_examples=8192 if model == "mlp" else 2048, device=device)
        rows[f"{label} ({model})"] = {"model": model, "a": r["package_examples_per_s"], "b": r["bare_examples_per_s"],
                                      "ratio": r["ratio"], "turns": r["turns"]}
    for model in ("mlp", "lenet"):
        r = loopbench.loader_ratio(model=model, num_examples=8192 if model == "mlp" else 2048, device=device)
        rows[f"TensorLoader / Dataset+DataLoader ({model})"] = {
            "model": model, "a": r["tensor_examples_per_s"], "b": r["dataloader_examples_per_s"], "ratio": r["ratio"],
            "turns": r["turns"]}
    return rows


def machine() -> dict:
    import torch

    return {"cores": os.cpu_count(), "platform": platform.platform(terse=True), "python": platform.python_version(),
            "torch": torch.__version__, "date": datetime.date.today().isoformat()}


def run_default(root: Path, scratch_dir: Path, *, workers: int | None, repro: bool, log=print) -> dict:
    s = Scratch(root, scratch_dir, workers=workers, log=log)
    builds = {"cold": s.build("cold")}
    builds["no change"] = s.build("warm")
    page = s.dir / PROSE_PAGE
    page.write_text(page.read_text("utf8") + "\nA sentence the benchmark added to the prose.\n", "utf8")
    builds["prose edit"] = s.build("prose")
    html = (s.dir / "_build" / "html" / PROSE_PAGE).with_suffix(".html").read_text("utf8")
    builds["module edit"], expected = s.edit_module(MODULE, "module")
    setting_pages = edit_setting(s.dir)
    builds["setting edit"] = s.build("setting")
    builds["core module edit"], core_expected = s.edit_module(CORE_MODULE, "core")
    log(f"bench: editing the core module {CORE_MODULE} executed {len(builds['core module edit']['executed'])} "
        f"of {len(read_pages(s.dir))} pages")
    checks = {
        "no change executes nothing": not builds["no change"]["executed"],
        "prose edit executes nothing": not builds["prose edit"]["executed"],
        "prose edit is on the page": "A sentence the benchmark added to the prose." in html,
        f"module edit executes exactly the pages importing {MODULE}":
            bool(expected) and builds["module edit"]["executed"] == expected,
        f"setting edit executes exactly {SETTING_CHAPTER} (both languages)":
            builds["setting edit"]["executed"] == setting_pages,
        f"core module edit executes exactly the pages importing {CORE_MODULE}":
            bool(core_expected) and builds["core module edit"]["executed"] == core_expected,
        "Sphinx executes nothing itself": all(b["sphinx_executed"] == 0 for b in builds.values()),
    }
    builds["prose edit"]["edited"] = PROSE_PAGE
    builds["setting edit"]["edited"], builds["setting edit"]["expected"] = SETTING_CHAPTER, setting_pages
    log("bench: training loops ...")
    loops = measure_loops()
    site = benchreport.page_weights(s.dir / "_build" / "html")
    results = {"profile": "default", "machine": machine(), "builds": builds,
               "chapters": chapter_rows(builds["cold"], s.cache), "loops": loops, "site": site, "checks": checks}
    if repro:
        log("bench: second cold execution, for reproducibility ...")
        second = s.dir / "_build" / "repro-cache"
        s.execute("repro", cache=second)
        results["repro"] = benchreport.compare_caches(s.cache, second)
        checks["two cold builds: identical glued values and figures"] = not results["repro"]["differences"]
    measured = {"cold_build_s": builds["cold"]["seconds"], "warm_build_s": builds["no change"]["seconds"],
                "loop_ratio": min(r["ratio"] for k, r in loops.items() if k.startswith("package loop")),
                "largest_page_mb": site["largest"][0]["bytes"] / 1e6}
    results["targets"] = benchreport.check_targets(measured)
    for build in builds.values():
        build.pop("jobs")
    return results


def run_full(root: Path, scratch_dir: Path, *, workers: int | None, log=print) -> dict:
    """The full profile, executed only (the GPU machine builds no site): times, headlines, images/s."""
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    s = Scratch(root, scratch_dir, workers=workers or 1, log=log)
    s.env["DLNOTES_PROFILE"] = "full"
    log(f"bench: full profile on {device} ...")
    seconds, report = s.execute("full")
    build = {"seconds": seconds, "jobs": report["jobs"], "failed": report["failed"]}
    speeds = {f"{m} {size}px": loopbench.images_per_second(model=m, size=size, num_examples=n, batch_size=256,
                                                           device=device)
              for m, size, n in SPEED_RUNS}
    device_name = torch.cuda.get_device_name() if device == "cuda" else platform.processor() or "cpu"
    return {"profile": "full", "machine": {**machine(), "device": device_name}, "seconds": seconds,
            "failed": report["failed"], "chapters": chapter_rows(build, s.cache), "images_per_s": speeds}


def save(results: dict, out: Path) -> None:
    out.write_text('"""The latest run of `make bench` (python -m dlnotes.booktools.buildbench). Written by it: do not edit."""\n\n'
                   f"RESULTS = {pprint.pformat(results, width=110, sort_dicts=False)}\n", "utf8")


def load(path: Path) -> dict:
    """The ``RESULTS`` of a saved run, read as a literal (the file is not executed)."""
    tree = ast.parse(Path(path).read_text("utf8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["RESULTS"]:
            return ast.literal_eval(node.value)
    raise ValueError(f"{path} has no RESULTS")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dlnotes.booktools.buildbench", description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=Path.cwd())
    parser.add_argument("--out", type=Path, default=None, help="default: ROOT/code/dlnotes/booktools/bench_results.py")
    parser.add_argument("--scratch", type=Path, default=None, help="default: a temporary folder, removed after")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--no-repro", dest="repro", action="store_false")
    parser.add_argument("--full", action="store_true", help="the full profile, execution only (for a GPU machine)")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    out = args.out or root / "code" / "dlnotes" / "booktools" / "bench_results.py"
    results = load(out) if out.is_file() else {}
    with tempfile.TemporaryDirectory(prefix="dlnotes-bench-") as tmp:
        scratch = args.scratch or Path(tmp)
        if args.full:
            results = {**results, "full": run_full(root, scratch, workers=args.workers)}
        else:
            results = {**run_default(root, scratch, workers=args.workers, repro=args.repro),
                       "full": results.get("full")}
    save(results, out)
    if "targets" in results:
        print(benchreport.text_report(results))
    failed = [t["target"] for t in results.get("targets", []) if not t["ok"]]
    failed += [name for name, ok in results.get("checks", {}).items() if not ok]
    print(f"bench: saved to {out}; " + (f"FAILED: {failed}" if failed else "every target and check holds"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
