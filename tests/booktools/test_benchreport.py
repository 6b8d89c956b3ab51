"""Tests of dlnotes.booktools.benchreport: targets, page weights, two executions compared, tables."""

from __future__ import annotations

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from dlnotes.booktools import benchreport


@pytest.mark.parametrize("measured, failing", [
    ({"cold_build_s": 599, "warm_build_s": 29.9, "loop_ratio": 0.95, "largest_page_mb": 2.0}, set()),
    ({"cold_build_s": 600, "warm_build_s": 30, "loop_ratio": 0.9499, "largest_page_mb": 2.01},
     {"cold_build_s", "warm_build_s", "loop_ratio", "largest_page_mb"}),
    ({"cold_build_s": 100}, {"warm_build_s", "loop_ratio", "largest_page_mb"}),  # not measured: not held
])
def test_targets(measured, failing):
    rows = benchreport.check_targets(measured)
    assert [r["target"] for r in rows] == list(benchreport.TARGETS)
    assert {r["target"] for r in rows if not r["ok"]} == failing


def test_chapter_names():
    assert benchreport.chapter_of("book/en/cnn/lenet") == "cnn/lenet"
    assert benchreport.chapter_of("/tmp/x/book/zh/basics/mlp.md") == "basics/mlp"
    assert benchreport.chapter_of("elsewhere/page.md") == "page"


def write(path, data: bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_page_weights(tmp_path):
    site = tmp_path / "html"
    write(site / "_images" / "big.svg", b"x" * 5000)
    write(site / "_images" / "small.png", b"x" * 100)
    write(site / "_static" / "logo.png", b"x" * 9000)  # shared by every page: not a page's weight
    write(site / "index.html", b'<img src="_static/logo.png"><img src="_images/small.png">' + b" " * 50)
    write(site / "book" / "ch.html", b'<img src="../_images/big.svg"><img src="../_images/big.svg">'
          b'<img src="https://example.org/x.png"><img src="../_images/missing.png">')
    write(site / "_static" / "theme.html", b"ignored")
    weights = benchreport.page_weights(site, top=5)
    assert weights["pages"] == 2 and weights["files"] == 6
    assert weights["bytes"] == sum(p.stat().st_size for p in site.rglob("*") if p.is_file())
    assert weights["by_folder"] == {"_static": 9007, "_images": 5100, "book": (site / "book" / "ch.html").stat().st_size,
                                    "(top level)": (site / "index.html").stat().st_size}
    first, second = weights["largest"]
    assert first["page"] == "book/ch.html" and first["image_bytes"] == 5000  # counted once
    assert first["bytes"] == first["html_bytes"] + 5000
    assert second["page"] == "index.html" and second["image_bytes"] == 100
    with pytest.raises(FileNotFoundError, match="make book"):
        benchreport.page_weights(tmp_path / "nowhere")


def notebook(glues: dict[str, str], figure: str) -> nbformat.NotebookNode:
    prefix = "application/papermill.record/"  # as MyST-NB stores glued values
    outputs = [new_output("display_data", data={prefix + "text/plain": v},
                          metadata={"scrapbook": {"name": k, "mime_prefix": prefix}}) for k, v in glues.items()]
    outputs.append(new_output("display_data", data={"image/svg+xml": figure, "text/plain": "<Figure>"}))
    nb = new_notebook(cells=[new_code_cell("print(1)", outputs=outputs)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def test_glues_and_figures_are_read():
    nb = notebook({"acc": "0.9", "n": "3"}, "<svg/>")
    assert benchreport.glue_values(nb) == {"acc": {"text/plain": "0.9"}, "n": {"text/plain": "3"}}
    assert benchreport.figures(nb) == [(0, "image/svg+xml", "<svg/>")]
    assert benchreport.glued_number(nb, "acc") == 0.9 and benchreport.glued_number(nb, "missing") is None
    texts = notebook({"pct": "'99'", "big": "'2,042,040'", "word": "'dog'"}, "<svg/>")
    assert benchreport.glued_number(texts, "pct") == 99.0 and benchreport.glued_number(texts, "big") == 2042040.0
    assert benchreport.glued_number(texts, "word") == "'dog'"


def cache_with(path, uri: str, nb) -> None:
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    get_cache(str(path)).cache_notebook_bundle(CacheBundleIn(nb, uri), check_validity=False, overwrite=True)


def test_compare_caches(tmp_path):
    uri = str(tmp_path / "book" / "en" / "cnn" / "augmentation.md")
    cache_with(tmp_path / "a", uri, notebook({"num_seeds": "5", "batch_us": "12.5", "acc": "0.9"}, "<svg>1</svg>"))
    cache_with(tmp_path / "b", uri, notebook({"num_seeds": "5", "batch_us": "13.1", "acc": "0.8"}, "<svg>2</svg>"))
    out = benchreport.compare_caches(tmp_path / "a", tmp_path / "b")
    assert (out["notebooks"], out["glues"], out["glues_same"], out["figures"], out["figures_same"]) == (1, 3, 1, 1, 0)
    assert out["timings_differing"] == ["cnn/augmentation: batch_us"]  # a timing: listed apart
    assert out["differences"] == ["cnn/augmentation: glue acc: 0.9 vs 0.8", "cnn/augmentation: figure 1 (code cell 1)"]

    # figures of measured times (dlnotes.plot.measured) may differ: listed apart
    mark = benchreport.MEASURED_MARK
    cache_with(tmp_path / "m1", uri, notebook({}, f"<svg><g {mark}>1</g></svg>"))
    cache_with(tmp_path / "m2", uri, notebook({}, f"<svg><g {mark}>2</g></svg>"))
    timed = benchreport.compare_caches(tmp_path / "m1", tmp_path / "m2")
    assert timed["differences"] == [] and timed["timings_differing"] == ["cnn/augmentation: figure 1 (measured times)"]

    cache_with(tmp_path / "c", uri, notebook({"num_seeds": "5", "batch_us": "12.5", "acc": "0.9"}, "<svg>1</svg>"))
    same = benchreport.compare_caches(tmp_path / "a", tmp_path / "c")
    assert same["differences"] == [] and same["glues_same"] == 3 and same["figures_same"] == 1


def test_tables_and_text(tmp_path):
    results = {
        "builds": {"cold": {"seconds": 200.0, "notebooks": 1, "executed": ["a", "b"], "exec_seconds": 170.0,
                            "render_seconds": 30.0}},
        "chapters": [{"chapter": "cnn/lenet", "seconds": 30.0, "metric": "test accuracy", "value": 0.9}],
        "loops": {"package loop / bare loop (mlp)": {"model": "mlp", "a": 100.0, "b": 101.0, "ratio": 0.99}},
        "site": {"largest": [{"page": "x.html", "html_bytes": 100_000, "image_bytes": 52_400, "bytes": 152_400}]},
        "targets": benchreport.check_targets({"cold_build_s": 200.0}),
        "repro": {"glues": 3, "glues_same": 3, "figures": 1, "figures_same": 1, "timings_differing": [],
                  "differences": []},
    }
    t = benchreport.tables(results)
    assert t["builds"].loc["cold", "notebooks executed"] == 1 and t["builds"].loc["cold", "pages"] == 2
    assert t["pages"].loc["x.html", "KB"] == 152  # kilobytes, rounded
    assert not t["targets"].loc["warm_build_s", "ok"]
    text = benchreport.text_report(results)
    assert "cnn/lenet" in text and "3/3 glued values" in text


def test_the_measured_mark_is_the_one_plot_writes():
    from dlnotes import plot

    assert benchreport.MEASURED_MARK == f'id="{plot.MEASURED}"'


def test_glued_figures_of_measured_times_count_as_timings():
    measured = {"image/svg+xml": '<svg><g id="dlnotes-measured"></g></svg>', "text/plain": "<Figure>"}
    plain = {"image/svg+xml": "<svg><g></g></svg>", "text/plain": "<Figure>"}
    assert benchreport.measured_figure(measured)
    assert not benchreport.measured_figure(plain) and not benchreport.measured_figure(None)
