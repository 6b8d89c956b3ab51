# The two commands of the README: `make book` and `make test`. Each creates its own virtual
# environment from requirements.txt the first time (and again whenever requirements.txt changes).
#
#   make book                      build the site into _build/html (strict: any warning fails)
#   make book DLNOTES_PROFILE=full the same at d2l scale, into _build/full/_build/html
#   make test                      run the test suite (everything but the tests of the built site)
#   make notebooks                 write the Colab-ready notebooks of the built book to _build/notebooks
#   make test-site                 test the built site in headless Chromium, and its notebooks
#   make serve                     preview the built site at http://127.0.0.1:8000
#   make chapter PAGE=book/en/basics/mlp.md   execute one chapter and print its time

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
REQ_HASH := $(shell $(PYTHON) -c "import hashlib;print(hashlib.sha256(open('requirements.txt','rb').read()).hexdigest()[:16])")
STAMP := $(VENV)/.requirements-$(REQ_HASH)
DLNOTES_PROFILE ?= default
export DLNOTES_PROFILE
BUILD_ROOT := $(if $(filter default,$(DLNOTES_PROFILE)),.,_build/$(DLNOTES_PROFILE))

.PHONY: env book test test-site notebooks bench bench-full serve chapter clean

env: $(STAMP)
	@# point the package at this checkout (a venv kept outside the clone may have served another)
	@$(BIN)/pip install --quiet --no-deps --no-build-isolation -e ./code

# The stamp's name carries the hash of requirements.txt, so a changed file means a missing stamp.
# No prerequisite on purpose: a fresh clone gives requirements.txt a new mtime, and make would
# otherwise rebuild a perfectly good environment on every CI run.
$(STAMP):
	@if [ -f "$(VENV)/pyvenv.cfg" ]; then echo "requirements.txt changed: recreating $(VENV)"; rm -rf "$(VENV)"; fi
	$(PYTHON) -m venv "$(VENV)"
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install -r requirements.txt
	touch "$@"

# pytest exits 5 when it collected no test: that is a failure here, not a pass
PYTEST = $(BIN)/python -m pytest tests -m "$(1)"; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

test: env
	$(call PYTEST,not site)

# The built site in a real browser (Debian's chromium), its launch links, its notebooks. Needs
# `make book` first; tests/site/ says what it checks.
test-site: env
	DLNOTES_SITE="$(BUILD_ROOT)/_build/html" $(call PYTEST,site)

notebooks: env
	$(BIN)/python -m dlnotes.booktools.notebooks export --build "$(BUILD_ROOT)/_build"

# First the chapters the cache lacks run in parallel (dlnotes.booktools.bookexec: one per core, or
# DLNOTES_WORKERS), then Sphinx renders every page from the cache.
book: env
	$(BIN)/python -m dlnotes.booktools.bookexec --root . --cache "$(BUILD_ROOT)/_build/.jupyter_cache"
	$(BIN)/jupyter-book build . --path-output "$(BUILD_ROOT)" -W -n --keep-going

# Measure the build (cold, no change, prose, part-module, setting and core-module edits), the training loop and the site in
# a scratch copy; save the run for the appendix (code/dlnotes/booktools/bench_results.py); fail if a target
# of the README is missed. About 14 minutes on 2 cores. bench-full: the full profile, on a GPU.
bench: env
	$(BIN)/python -m dlnotes.booktools.buildbench --root .

bench-full: env
	$(BIN)/python -m dlnotes.booktools.buildbench --root . --full

serve:
	@echo "serving $(BUILD_ROOT)/_build/html at http://127.0.0.1:8000 (Ctrl-C stops)"
	$(PYTHON) -m http.server 8000 --bind 127.0.0.1 --directory "$(BUILD_ROOT)/_build/html"

chapter: env
	$(BIN)/python -m dlnotes.booktools.chapters run $(PAGE)

clean:
	rm -rf _build
