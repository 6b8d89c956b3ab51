"""Reading a benchmark run: page weights, two executions compared, the targets, the tables.

:mod:`dlnotes.booktools.buildbench` measures; this module turns what it measured into verdicts and tables,
for the console and for the appendix (which reads the saved run, ``dlnotes.booktools.bench_results``).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

# The README's promises. Each is checked against every run of `make bench`.
TARGETS = {
    "cold_build_s": ("cold build of the whole book", "<", 600.0),
    "warm_build_s": ("rebuild with no change", "<", 30.0),
    "loop_ratio": ("package loop / bare loop throughput", ">=", 0.95),
    "largest_page_mb": ("largest page (HTML + its images)", "<=", 2.0),
}

# Glued values that are wall-clock measurements, or decided by one (what a time budget allows),
# by chapter: they differ from run to run by nature, and the reproducibility check lists them
# apart instead of failing on them. Figures of measured times carry the mark of
# :func:`dlnotes.plot.measured` instead.
TIMING_GLUES = {
    "training/pytorch-essentials": {"row_ms", "col_ms", "col_over_row", "cpu_gflops_max", "cpu_gflops_small"},
    "training/optimisation": {"eps_1", "eps_full", "eps_ratio", "step_ms_1", "step_ms_full", "step_ratio",
                              "winner_time", "excess_time_1", "excess_time_winner", "step_us_small",
                              "step_us_mid", "step_ms_big", "step_ratio_big"},
    "cnn/modern-cnns": {"time_ratio_min_5", "time_ratio_max_5", "time_ratio_min_7", "time_ratio_max_7",
                        "n_slower", "vgg_speed", "alex_speed"},
    "cnn/augmentation": {"batch_us", "loop_us", "loop_ratio"},
    "sequences/rnn": {"sec_elman", "sec_scratch_ratio", "poem_seconds"},
    "sequences/gru-lstm": {"sec_rnn", "sec_gru", "sec_lstm", "sec_target_rnn", "sec_target_gru", "sec_target_lstm",
                           "rnn_ahead_until"},
    "sequences/deep-bidirectional": {"sec_deep", "sec_shallow"},
    "sequences/seq2seq": {"sec_numbers", "sec_fra"},
    "sequences/attention": {"sec_gru", "sec_dot", "sec_additive", "sec_epoch_gru", "sec_epoch_dot",
                            "sec_epoch_additive"},
    "sequences/self-attention": {"ratio_short_ms", "ratio_long_ms", "cross_n_ms"},
    "sequences/transformer": {"sec_gru", "sec_tf"},
    "sequences/pretraining": {"sec_gpt", "sec_bert"},
    "applications/detection": {"sec_ssd"},
    "applications/style-transfer": {"sec_style"},
    "applications/gan": {"sec_gan"},
    "applications/dcgan": {"sec_balanced"},
    "applications/word2vec": {"sec_en", "sec_zh"},
    "applications/sentiment": {"sec_bag", "sec_rnn", "sec_linear"},
}
MEASURED_MARK = 'id="dlnotes-measured"'  # dlnotes.plot.MEASURED, as it appears in an SVG


def measured_figure(bundle: dict | None) -> bool:
    """Whether a glued value is a figure marked by :func:`dlnotes.plot.measured` (its times differ by nature)."""
    if not bundle:
        return False
    return any(MEASURED_MARK in str(data) for mime, data in bundle.get("data", bundle).items() if "svg" in mime)


def chapter_of(page: str) -> str:
    """"book/en/cnn/lenet" (or its path) -> "cnn/lenet": the name both languages share."""
    parts = Path(page).with_suffix("").parts
    return "/".join(parts[parts.index("book") + 2:]) if "book" in parts else Path(page).stem


def glue_values(nb) -> dict[str, dict]:
    """{name: mime bundle} of every value a notebook glued (MyST-NB marks them ``scrapbook``).

    MyST-NB stores a glued value under prefixed mime types (``application/papermill.record/
    text/plain``); the prefix is dropped here.
    """
    found = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            meta = output.get("metadata", {}).get("scrapbook", {})
            if meta.get("name"):
                prefix = meta.get("mime_prefix", "")
                found[meta["name"]] = {k.removeprefix(prefix): v for k, v in output.get("data", {}).items()}
    return found


def glued_number(nb, name: str) -> float | str | None:
    """A glued value as a number (or its text when it is not one; None when not glued).

    A number glued as formatted text ("'99'", "'2,042,040'") counts as that number.
    """
    text = glue_values(nb).get(name, {}).get("text/plain")
    if text is None:
        return None
    try:
        return float(text.strip("'\"").replace(",", ""))
    except ValueError:
        return text


def figures(nb) -> list[tuple[int, str, str]]:
    """(code cell index, mime type, data) of every image output, glued ones excluded."""
    found = []
    for i, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("metadata", {}).get("scrapbook"):
                continue
            for mime, data in output.get("data", {}).items():
                if mime.startswith("image/"):
                    found.append((i, mime, data if isinstance(data, str) else "".join(data)))
    return found


def compare_caches(first: Path, second: Path) -> dict:
    """Two executions of the same notebooks (two jupyter-cache folders), output by output.

    Records are paired by their hash of the code cells. Returns counts of glued values and
    figures compared and identical, the differences, and the glues that differ because they
    are timings (:data:`TIMING_GLUES`).
    """
    from jupyter_cache import get_cache

    a, b = get_cache(str(first)), get_cache(str(second))
    b_records = {r.hashkey: r for r in b.list_cache_records()}
    out = {"notebooks": 0, "glues": 0, "glues_same": 0, "figures": 0, "figures_same": 0,
           "differences": [], "timings_differing": [], "unpaired": []}
    for record in sorted(a.list_cache_records(), key=lambda r: r.uri):
        chapter = chapter_of(record.uri)
        if record.hashkey not in b_records:
            out["unpaired"].append(chapter)
            continue
        out["notebooks"] += 1
        nb1 = a.get_cache_bundle(record.pk).nb
        nb2 = b.get_cache_bundle(b_records[record.hashkey].pk).nb
        g1, g2 = glue_values(nb1), glue_values(nb2)
        for name in sorted(set(g1) | set(g2)):
            out["glues"] += 1
            if g1.get(name) == g2.get(name):
                out["glues_same"] += 1
            elif name in TIMING_GLUES.get(chapter, ()) or all(measured_figure(g.get(name)) for g in (g1, g2)):
                out["timings_differing"].append(f"{chapter}: {name}")
            else:
                shown = [str(g.get(name, {}).get("text/plain", "(missing)"))[:40] for g in (g1, g2)]
                out["differences"].append(f"{chapter}: glue {name}: {shown[0]} vs {shown[1]}")
        f1, f2 = figures(nb1), figures(nb2)
        out["figures"] += max(len(f1), len(f2))
        for i, (x, y) in enumerate(zip(f1, f2)):
            if x == y:
                out["figures_same"] += 1
            elif MEASURED_MARK in x[2] and MEASURED_MARK in y[2]:
                out["timings_differing"].append(f"{chapter}: figure {i + 1} (measured times)")
            else:
                out["differences"].append(f"{chapter}: figure {i + 1} (code cell {x[0] + 1})")
        if len(f1) != len(f2):
            out["differences"].append(f"{chapter}: {len(f1)} vs {len(f2)} figures")
    return out


def _local_target(page: Path, url: str) -> Path | None:
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or not parts.path or url.startswith("data:"):
        return None
    return (page.parent / unquote(parts.path)).resolve()


def page_weights(site: Path, *, top: int = 5) -> dict:
    """Bytes of the site, and of its heaviest pages: the HTML plus the images it shows.

    The theme's scripts, styles and fonts are shared by every page (and cached by browsers
    after the first), so they count once, in the site's total, not in each page.
    """
    from bs4 import BeautifulSoup

    site = Path(site)
    if not (site / "index.html").is_file():
        raise FileNotFoundError(f"no built site at {site} (make book)")
    files = [p for p in site.rglob("*") if p.is_file()]
    pages = []
    for page in sorted(site.rglob("*.html")):
        if "_static" in page.parts:
            continue
        soup = BeautifulSoup(page.read_text("utf8", errors="replace"), "html.parser")
        images = {_local_target(page, img["src"]) for img in soup.find_all("img", src=True)}
        images = {p for p in images if p is not None and p.is_file() and "_static" not in p.parts}
        html, img = page.stat().st_size, sum(p.stat().st_size for p in images)
        pages.append({"page": page.relative_to(site).as_posix(), "html_bytes": html, "image_bytes": img,
                      "bytes": html + img})
    pages.sort(key=lambda p: -p["bytes"])
    folders: dict[str, int] = {}
    for p in files:  # where the bytes are: _sources (downloads), _static (theme), _images, book ...
        top_name = p.relative_to(site).parts[0] if len(p.relative_to(site).parts) > 1 else "(top level)"
        folders[top_name] = folders.get(top_name, 0) + p.stat().st_size
    return {"bytes": sum(folders.values()), "files": len(files), "pages": len(pages), "largest": pages[:top],
            "by_folder": dict(sorted(folders.items(), key=lambda kv: -kv[1]))}


def check_targets(measured: dict[str, float]) -> list[dict]:
    """One row per target: what, the limit, the value measured and whether it holds."""
    rows = []
    for key, (what, op, limit) in TARGETS.items():
        value = measured.get(key)
        ok = value is not None and (value < limit if op == "<" else value >= limit if op == ">=" else value <= limit)
        rows.append({"target": key, "what": what, "limit": f"{op} {limit:g}", "value": value, "ok": ok})
    return rows


def chapter_table(rows: list[dict]):
    """Per chapter: seconds, and the headline metric's name and value."""
    import pandas as pd

    return pd.DataFrame(rows).set_index("chapter")


def tables(results: dict) -> dict:
    """The run as pandas DataFrames: builds, chapters, loops, pages, targets (for the appendix)."""
    import pandas as pd

    builds = pd.DataFrame([
        {"build": name, "seconds": b["seconds"], "notebooks executed": b["notebooks"], "pages": len(b["executed"]),
         "executing (s)": b["exec_seconds"], "rendering (s)": b["render_seconds"]}
        for name, b in results["builds"].items()]).set_index("build")
    chapters = chapter_table(results["chapters"])
    loops = pd.DataFrame([
        {"comparison": name, "model": r["model"], "A (examples/s)": r["a"], "B (examples/s)": r["b"], "A / B": r["ratio"]}
        for name, r in results["loops"].items()]).set_index("comparison")
    pages = pd.DataFrame(results["site"]["largest"]).set_index("page") / 1e3
    pages.columns = [c.replace("bytes", "KB") for c in pages.columns]
    targets = pd.DataFrame(results["targets"]).set_index("target")
    chapters["seconds"] = chapters["seconds"].round(1)
    loops[["A (examples/s)", "B (examples/s)"]] = loops[["A (examples/s)", "B (examples/s)"]].round(0)
    targets["value"] = targets["value"].astype(float).round(3)
    return {"builds": builds.round(1), "chapters": chapters, "loops": loops.round(3), "pages": pages.round(0),
            "targets": targets}


def text_report(results: dict) -> str:
    """The tables as plain text, for the console."""
    parts = []
    for name, frame in tables(results).items():
        parts.append(f"== {name}\n{frame.to_string(float_format=lambda v: f'{v:,.3g}')}")
    repro = results.get("repro")
    if repro:
        parts.append(f"== reproducibility: {repro['glues_same']}/{repro['glues']} glued values and "
                     f"{repro['figures_same']}/{repro['figures']} figures identical; "
                     f"timings that differ: {len(repro['timings_differing'])}; "
                     f"other differences: {repro['differences'] or 'none'}")
    return "\n\n".join(parts)
