"""The GitHub Actions workflows, which cannot run here: GitHub's workflow schema, the zizmor
security linter, and the promises the workflows make (publish on push to main, test pull requests).

check-jsonschema (with the GitHub workflow schema it ships) and zizmor come from the package
registry like everything else, so they sit next to the interpreter running these tests.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
PUBLISH = WORKFLOWS / "publish.yml"
TESTS = WORKFLOWS / "tests.yml"
ALL = [PUBLISH, TESTS]

# `uses: owner/action@<40 hex> # vX.Y.Z`: a tag can be moved, a commit cannot; the comment says which release.
PINNED = re.compile(r"uses:\s*[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+\s*$")


def tool(name: str) -> Path:
    # The venv's bin dir as it is, not resolved: sys.executable is often a link out of the venv.
    path = Path(sys.executable).parent / name
    if not path.is_file():
        pytest.fail(f"{name} is not installed next to {sys.executable}; it belongs in requirements.txt")
    return path


def run(*args: object) -> subprocess.CompletedProcess[str]:
    # No token in the environment: the checks must not reach, or need, GitHub.
    env = {k: v for k, v in os.environ.items() if k not in {"GH_TOKEN", "GITHUB_TOKEN", "ZIZMOR_GITHUB_TOKEN"}}
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120, env=env)


def schema_check(path: Path) -> subprocess.CompletedProcess[str]:
    return run(tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", path)


def zizmor(path: Path) -> subprocess.CompletedProcess[str]:
    # --offline: no network at all; --no-config: zizmor's default settings, whatever config may appear.
    return run(tool("zizmor"), "--offline", "--no-config", "--no-progress", "--color=never", path)


def report(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text("utf8"))


def triggers(workflow: dict) -> dict:
    on = workflow[True]  # YAML 1.1 reads the key `on` as the boolean True
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return dict.fromkeys(on)
    return on


def steps(job: dict) -> list[dict]:
    return job.get("steps", [])


def uses(step: dict, action: str) -> bool:
    return step.get("uses", "").split("@")[0] == action


def index_of(job: dict, predicate) -> int:
    found = [i for i, s in enumerate(steps(job)) if predicate(s)]
    assert len(found) == 1, f"expected exactly one such step, found {len(found)}"
    return found[0]


def runs(command: str):
    return lambda step: command in step.get("run", "")


def job_with_step(workflow: dict, predicate) -> tuple[str, dict]:
    found = [(name, job) for name, job in workflow["jobs"].items() if any(predicate(s) for s in steps(job))]
    assert len(found) == 1, f"expected exactly one job with such a step, found {[n for n, _ in found]}"
    return found[0]


# --- the two tools, on the real workflows --------------------------------------------------------


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_workflow_matches_githubs_schema(path: Path):
    result = schema_check(path)
    assert result.returncode == 0, report(result)


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_workflow_has_no_zizmor_findings(path: Path):
    result = zizmor(path)
    assert result.returncode == 0, report(result)
    assert "No findings" in result.stdout + result.stderr, report(result)


# --- the tools can fail: without this, a passing check would prove nothing ------------------------


def good_and_bad_copies(tmp_path: Path, workflow: Path, bad_text: str) -> tuple[Path, Path]:
    """An unchanged copy of ``workflow`` and a copy holding ``bad_text``, under their own names."""
    good, bad = tmp_path / "good" / workflow.name, tmp_path / "bad" / workflow.name
    for path, text in ((good, workflow.read_text("utf8")), (bad, bad_text)):
        path.parent.mkdir()
        path.write_text(text, "utf8")
    return good, bad


def test_schema_check_rejects_a_broken_copy(tmp_path: Path):
    text = PUBLISH.read_text("utf8")
    assert text.count("    runs-on:") >= 1
    good, bad = good_and_bad_copies(tmp_path, PUBLISH, text.replace("    runs-on:", "    runs_on:"))  # a classic typo
    assert schema_check(good).returncode == 0, "the unchanged copy must pass, or the next check means nothing"
    result = schema_check(bad)
    assert result.returncode != 0, report(result)
    assert "runs_on" in result.stdout + result.stderr, report(result)


def test_zizmor_flags_an_injection_in_a_copy(tmp_path: Path):
    # The pull request's title is chosen by whoever opens it: expanded into `run:`, it is shell code.
    text = TESTS.read_text("utf8").rstrip("\n") + "\n"
    injected = '      - name: Injected\n        run: echo "${{ github.event.pull_request.title }}"\n'
    good, bad = good_and_bad_copies(tmp_path, TESTS, text + injected)
    assert zizmor(good).returncode == 0, "the unchanged copy must pass, or the next check means nothing"
    last_step = steps(load(bad)["jobs"]["test"])[-1]
    assert last_step["name"] == "Injected", "the injected step did not land in the job's steps"

    result = zizmor(bad)
    assert result.returncode != 0, report(result)
    assert "template-injection" in result.stdout, report(result)


# --- what the security rules mean here, spelled out -------------------------------------------------


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_workflow_grants_nothing_by_default_and_pins_every_action(path: Path):
    workflow = load(path)
    assert workflow["permissions"] == {}
    for name, job in workflow["jobs"].items():
        assert "permissions" in job, f"job {name} must state its permissions"
        for step in steps(job):
            if uses(step, "actions/checkout"):
                assert step["with"]["persist-credentials"] is False, f"job {name}: checkout keeps the token"
            assert "${{" not in step.get("run", ""), f"job {name}: expression expanded inside run: {step}"
    lines = [line.strip() for line in path.read_text("utf8").splitlines() if re.match(r"\s*(- )?uses:", line)]
    assert lines
    unpinned = [line for line in lines if not PINNED.search(line)]
    assert not unpinned, f"not pinned to a full commit SHA with a # vX.Y.Z comment: {unpinned}"


def test_every_make_target_the_workflows_call_exists():
    defined = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text("utf8"), flags=re.M))
    for path in ALL:
        commands = "\n".join(s.get("run", "") for job in load(path)["jobs"].values() for s in steps(job))
        called = set(re.findall(r"\bmake ([\w-]+)", commands))
        assert called, path.name
        assert called <= defined, f"{path.name} calls make targets the Makefile lacks: {called - defined}"


# --- publish.yml ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def publish() -> dict:
    return load(PUBLISH)


def test_publish_runs_on_every_push_to_main_and_only_then(publish: dict):
    on = triggers(publish)
    assert on["push"]["branches"] == ["main"]
    assert not {"pull_request", "pull_request_target", "workflow_run"} & set(on)
    assert publish["concurrency"]["cancel-in-progress"] is False  # never stop a deploy halfway


def test_publish_builds_the_book_strictly_with_the_execution_cache(publish: dict):
    name, build = job_with_step(publish, runs("make book"))
    cache = index_of(build, lambda s: uses(s, "actions/cache") and "_build/.jupyter_cache" in s["with"]["path"])
    book = index_of(build, runs("make book"))
    assert cache < book, "the cache must be restored before the build"

    options = steps(build)[cache]["with"]
    hashed = re.findall(r"hashFiles\(([^)]*)\)", options["key"])
    assert len(hashed) == 1, options["key"]
    files = [f.strip().strip("'\"") for f in hashed[0].split(",")]
    assert "requirements.txt" in files
    assert any(f.startswith("code/dlnotes") for f in files), files
    # A partial restore (same prefix, older hash) is safe: bookcache re-executes what changed.
    prefix = options["key"].split("${{ hashFiles")[0]
    assert prefix and prefix in [line.strip() for line in options["restore-keys"].splitlines()]


def test_publish_uploads_the_execution_reports_when_a_chapter_fails(publish: dict):
    _, build = job_with_step(publish, runs("make book"))
    book = index_of(build, runs("make book"))
    reports = index_of(
        build, lambda s: uses(s, "actions/upload-artifact") and "_build/html/reports" in s["with"]["path"]
    )
    assert "failure()" in steps(build)[reports]["if"]
    assert reports > book


def test_publish_tests_the_built_site_in_a_browser(publish: dict):
    _, build = job_with_step(publish, runs("make book"))
    book = index_of(build, runs("make book"))
    notebooks = index_of(build, runs("make notebooks"))
    browser = index_of(build, runs("make test-site"))
    assert book < notebooks < browser  # the site tests open the notebooks too
    # the runner's Chrome (Ubuntu has no chromium package), found by tests/site/conftest.py
    assert steps(build)[browser]["env"]["CHROMIUM"] == "/usr/bin/google-chrome"


def test_publish_deploys_the_site_to_github_pages(publish: dict):
    build_name, build = job_with_step(publish, runs("make book"))
    upload = index_of(build, lambda s: uses(s, "actions/upload-pages-artifact"))
    assert steps(build)[upload]["with"]["path"].rstrip("/") == "_build/html"

    name, deploy = job_with_step(publish, lambda s: uses(s, "actions/deploy-pages"))
    assert deploy["needs"] in (build_name, [build_name])
    assert deploy["environment"]["name"] == "github-pages"
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}


def test_publish_pushes_the_notebooks_to_the_branch_the_package_names(publish: dict):
    build_name, build = job_with_step(publish, runs("make book"))
    notebooks = index_of(build, runs("make notebooks"))
    assert index_of(build, runs("make book")) < notebooks

    # The branch is whatever `python -m dlnotes.booktools.notebooks publish-branch` prints, passed on as a job output.
    branch = index_of(build, runs("-m dlnotes.booktools.notebooks publish-branch"))
    step = steps(build)[branch]
    assert "GITHUB_OUTPUT" in step["run"]
    name = re.search(r"echo \"(\w[\w-]*)=", step["run"]).group(1)
    outputs = {k: v for k, v in build["outputs"].items() if v == f"${{{{ steps.{step['id']}.outputs.{name} }}}}"}
    assert len(outputs) == 1, build["outputs"]
    (output,) = outputs

    kept = index_of(build, lambda s: uses(s, "actions/upload-artifact") and "_build/notebooks" in s["with"]["path"])
    assert notebooks < kept

    push_name, push = job_with_step(publish, runs("git push"))
    assert push["needs"] in (build_name, [build_name])
    assert push["permissions"] == {"contents": "write"}
    download = index_of(push, lambda s: uses(s, "actions/download-artifact"))
    assert steps(push)[download]["with"]["name"] == steps(build)[kept]["with"]["name"]
    pusher = steps(push)[index_of(push, runs("git push"))]
    variables = [k for k, v in pusher["env"].items() if v == f"${{{{ needs.{build_name}.outputs.{output} }}}}"]
    assert len(variables) == 1, pusher["env"]
    assert f"refs/heads/${variables[0]}" in pusher["run"]
    assert "--force" in pusher["run"]


def test_only_the_notebook_push_can_write_to_the_repository(publish: dict):
    writers = [name for name, job in publish["jobs"].items() if job["permissions"].get("contents") == "write"]
    assert writers == [job_with_step(publish, runs("git push"))[0]]


# --- tests.yml ------------------------------------------------------------------------------------


def test_tests_run_on_pull_requests():
    workflow = load(TESTS)
    assert "pull_request" in triggers(workflow)
    assert "pull_request_target" not in triggers(workflow)  # would run a fork's code with our token
    _, job = job_with_step(workflow, runs("make test"))
    assert steps(job)[index_of(job, runs("make test"))]["run"].strip() == "make test"
