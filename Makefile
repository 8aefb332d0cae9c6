# wsgi-lab: every target creates .venv from the pinned requirements when needed.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: venv checkov-venv test lint docs bench compare diff browser clean fuzz soak tune answers generator-ceiling callgrind

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

test: venv checkov-venv
	$(PY) -m pytest $(PYTEST_ARGS)

# checkov in its own venv: it pins packaging<24, requirements.txt packaging 26 (tests/loadtest/tune/test_deploy.py).
CHECKOV_VENV  := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed

checkov-venv: $(CHECKOV_STAMP)

$(CHECKOV_STAMP): requirements-checkov.txt
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install -q -r requirements-checkov.txt
	touch $(CHECKOV_STAMP)

# ruff, then the import rules of pyproject.toml's [tool.importlinter] (docs/architecture.md).
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-logo

# The docs site (mkdocs.yml, docs/) into site/. DOCS_STRICT=1 (CI) fails on a broken link or a page
# missing from the navigation.
DOCS_STRICT ?=
docs: venv
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --clean $(if $(filter 1,$(DOCS_STRICT)),--strict)

# Property-based fuzzing of request parsing, and the two cores differential test, with many more examples
# than CI runs (tests/server/test_fuzz.py, tests/server/test_parsers_agree.py).
fuzz: venv
	LAB_FUZZ_PROFILE=fuzz $(PY) -m pytest tests/server/test_fuzz.py tests/server/test_parsers_agree.py -p no:cacheprovider -o timeout=3600 $(PYTEST_ARGS)

# Mixed locust load on each lab mode for SOAK_MINUTES (default 10): RSS, fds, failures -> results/soak-<ts>/.
SOAK_MINUTES ?= 10
soak: venv
	$(PY) -m loadtest.soak --minutes $(SOAK_MINUTES) $(SOAK_ARGS)

bench: venv
	$(PY) -m loadtest.bench $(BENCH_ARGS)

# Instructions per keep-alive GET / around a trivial WSGI app, single mode in process, counted by
# valgrind's callgrind: (Ir at 700 requests - Ir at 200) / 500. CALLGRIND_PARSER=h11 for the reference.
CALLGRIND_PARSER ?= auto
callgrind: venv
	$(PY) -m tests.callgrind_core --parser $(CALLGRIND_PARSER)

# One locust process's requests per core against a trivial server (granian): docs/measurements/2026-12-08-generator-ceiling.md.
generator-ceiling: venv
	$(PY) -m loadtest.bench.generator $(CEILING_ARGS)

compare: venv
	$(PY) -m loadtest.compare --story default $(COMPARE_ARGS)

# The README's short answers as pictures from one fixed run: docs/answers/*.png, run.json and
# docs/answers.md (a few minutes on 2 cores; ANSWERS_ARGS=--short: one server, one picture).
answers: venv
	$(PY) -m loadtest.answers $(ANSWERS_ARGS)

# Measure your app and recommend server, worker class, workers and threads for a latency SLO within a
# CPU/memory budget: make tune TUNE_ARGS="--app mymodule:app --path /api --slo p95=250ms --memory 1GiB".
tune: venv
	$(PY) -m loadtest.tune $(TUNE_ARGS)

# make diff A=results/<run> B=results/<run>: what changed from run A to run B, beyond the noise.
diff: venv
	@if [ -z "$(A)" ] || [ -z "$(B)" ]; then echo "make diff: error: give two run directories: make diff A=DIR B=DIR" >&2; exit 2; fi
	$(PY) -m loadtest.diff "$(A)" "$(B)" $(DIFF_ARGS)

# Debian's Chromium for the browser tests (driven by Playwright via executable_path; Playwright's own
# browser downloads are never used). Does nothing when it is already there.
CHROMIUM ?= /usr/bin/chromium
browser:
	@if [ -x "$(CHROMIUM)" ]; then \
	  echo "browser: $(CHROMIUM) is installed"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	else \
	  echo "browser: no $(CHROMIUM); as root run: apt-get install chromium (browser tests skip without it unless REQUIRE_BROWSER=1)" >&2; \
	fi

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .pytest_cache .import_linter_cache build site *.egg-info
	find . -name .ruff_cache -type d -not -path "./$(VENV)/*" -prune -exec rm -rf {} +
