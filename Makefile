# glass-sm: the two commands a newcomer needs are `make all` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PARAMS ?= params/demo.yaml
RESULTS = $(shell $(PY) -m glass_sm.config results $(PARAMS) 2>/dev/null || echo results/$$(basename $(PARAMS) .yaml))

.PHONY: install all smoke test test-slow book bench bench-prep clean help stages chromium
.DEFAULT_GOAL := help

help:
	@echo "make all    environment (if needed) + every stage on $(PARAMS) + the book"
	@echo "make test   environment (if needed) + the test suite (no long runs)"
	@echo "make smoke  every stage on params/smoke.yaml (seconds to minutes)"
	@echo "make book   build the Jupyter Book from results/<run>/ (offline)"
	@echo "make stages every stale stage on $(PARAMS) (python tools/pipeline.py $(PARAMS) --dry-run says which, why)"
	@echo "make bench  production throughput benchmark, full (make all runs its --quick mode; prints ratios)"
	@echo "make bench-prep  the benchmark's (f)/(g) data-preparation section, RUNS times (default 12): the spread of g/f"
	@echo "make clean  remove results/ and book build (keeps .venv)"

# The environment is (re)built only when pyproject.toml changes.
install: $(STAMP)
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
	$(PY) -m pip install --quiet -e ".[test]" 2>&1 | grep -v '^WARNING: Location' ; test $${PIPESTATUS[0]} -eq 0
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (glass-sm)" >/dev/null
	touch $(STAMP)

# Headless Chromium for the book's real-browser test (Debian package).
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
chromium:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	  { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium >/dev/null; }

test: $(STAMP) chromium
	$(PY) -m pytest -m "not slow" -q

test-slow: $(STAMP)
	$(PY) -m pytest -m slow -q

smoke: $(STAMP)
	$(MAKE) stages PARAMS=params/smoke.yaml

# Stages 01-03, the benchmark in its quick mode (the same rows as `make bench` with one repetition instead of three
# and fewer timed windows, marked "quick" in bench.json and by stage 04; re-run only when the production
# checkpoint's content changed, and never over a full `make bench` of the same checkpoint), stages 04-06, the book.
# A stage re-runs only when its notebook, the parameters it reads, the package modules it imports or an upstream
# stage changed, by content hash (see tools/pipeline.py).
all: $(STAMP)
	$(PY) tools/pipeline.py $(PARAMS) --stages 01 02 03
	$(PY) tools/bench.py $(PARAMS) --quick --if-checkpoint-changed
	$(PY) tools/pipeline.py $(PARAMS) --stages 04 05 06
	$(MAKE) --no-print-directory book PARAMS=$(PARAMS)
	@echo "make all: done. Book: book/_build/html/index.html  Figures: $(RESULTS)/figures/  Tables: $(RESULTS)/tables/"

# Run each stale stage notebook through papermill (tools/pipeline.py).
stages: $(STAMP)
	$(PY) tools/pipeline.py $(PARAMS)

book: $(STAMP)
	$(PY) tools/book.py $(PARAMS)

bench: $(STAMP)
	$(PY) tools/bench.py $(PARAMS)

# The (f)/(g) section of the benchmark (stage 01's ingest against the raw read of the same files) repeated: one run
# of `make bench` draws one g/f, and on a 2-core machine runs of the same code spread by about +-0.1.
RUNS ?= 12
bench-prep: $(STAMP)
	$(PY) tools/bench_prep.py $(PARAMS) --runs $(RUNS)

clean:
	rm -rf results book/_build book/chapters
