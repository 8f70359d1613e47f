# driftd developer entry points. Every target creates .venv on a fresh clone.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= .driftd/demo

.PHONY: demo test lint typecheck bench bench-mlflow clean venv

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first and pinned: a CPU wheel; never let a resolver pull a CUDA build
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/driftd demo --out $(DEMO_DIR)

lint: $(STAMP)
	$(BIN)/ruff check driftd tests benchmarks dashboards
	$(BIN)/ruff format --check driftd tests benchmarks dashboards

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) lint typecheck
	$(BIN)/pytest -q
	bash dashboards/check.sh

bench: $(STAMP)
	$(BIN)/pip install -q -e '.[dev,bench]'
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/detectors.py
	$(BIN)/python benchmarks/online_mmd.py
	$(BIN)/python benchmarks/evidently_compare.py
	$(BIN)/python benchmarks/registry.py
	$(BIN)/python benchmarks/retrain.py
	$(BIN)/python benchmarks/canary.py

# MLflow in its own virtualenv, so that it cannot disturb driftd's pins; benchmarks/registry.py
# compares against it when it is there.
bench-mlflow:
	$(PY) -m venv .venv-mlflow
	.venv-mlflow/bin/pip install -q mlflow

clean:
	rm -rf $(VENV) .driftd .pytest_cache .mypy_cache .ruff_cache
