# glass-sm: the two commands a newcomer needs are `make all` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PARAMS ?= params/demo.yaml
RUN = $(shell $(PY) -m glass_sm.config run-name $(PARAMS) 2>/dev/null || basename $(PARAMS) .yaml)
RESULTS = results/$(RUN)
NOTEBOOKS := 01_data_preparation 02_model_comparison 03_atlstm_training 04_global_production 05_validation 06_paper_figures

.PHONY: install all smoke test test-slow book bench clean help stages chromium
.DEFAULT_GOAL := help

help:
	@echo "make all    environment (if needed) + every stage on $(PARAMS) + the book"
	@echo "make test   environment (if needed) + the test suite (no long runs)"
	@echo "make smoke  every stage on params/smoke.yaml (seconds to minutes)"
	@echo "make book   build the Jupyter Book from results/<run>/ (offline)"
	@echo "make bench  production throughput benchmark (prints ratios)"
	@echo "make clean  remove results/ and book build (keeps .venv)"

# The environment is (re)built only when pyproject.toml changes.
install: $(STAMP)
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
	$(PY) -m pip install --quiet -e . 2>&1 | grep -v '^WARNING: Location' ; test $${PIPESTATUS[0]} -eq 0
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

# Stages 01-03, the benchmark (quoted by stage 04; re-run only when the production checkpoint changes), stages
# 04-06, the book. Each stage re-runs only when stale (see glass_sm.pipeline).
all: $(STAMP)
	$(PY) -m glass_sm.pipeline $(PARAMS) --stages 01 02 03
	$(MAKE) --no-print-directory $(RESULTS)/tables/bench.csv PARAMS=$(PARAMS)
	$(PY) -m glass_sm.pipeline $(PARAMS) --stages 04 05 06
	$(MAKE) --no-print-directory book PARAMS=$(PARAMS)
	@echo "make all: done. Book: book/_build/html/index.html  Figures: $(RESULTS)/figures/  Tables: $(RESULTS)/tables/"

# Run each stage notebook through papermill; a stage re-runs only when its
# notebook, the params file or the package changed (file-based dependencies).
stages: $(STAMP)
	$(PY) -m glass_sm.pipeline $(PARAMS)

book: $(STAMP)
	$(PY) -m glass_sm.book $(PARAMS)

bench: $(STAMP)
	$(PY) scripts/bench.py $(PARAMS)

$(RESULTS)/tables/bench.csv: $(RESULTS)/models/atlstm_final.pt
	$(PY) scripts/bench.py $(PARAMS)

clean:
	rm -rf results book/_build book/chapters
