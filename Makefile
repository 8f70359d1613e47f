# driftd developer entry points. Every target creates .venv on a fresh clone, from the lock.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= .driftd/demo
# Exact versions with hashes (make lock). pyproject.toml keeps ranges for library users.
LOCK := requirements.lock
RUNTIME_LOCK := requirements-runtime.lock
COMPAT_LOCK := requirements-compat.lock
PIP_VERSION := 26.3
PIP_TOOLS := pip-tools==7.7.0
# Where pip finds the CPU build of torch (a local wheel directory or PyTorch's CPU index page).
TORCH_WHEELS ?= /opt/wheels
COMPAT := $(VENV)/compat-msgspec
COMPAT_TESTS := tests/unit/test_poison.py tests/unit/test_decode.py tests/unit/test_events.py \
	tests/unit/test_pipeline.py tests/unit/test_columns.py tests/unit/test_sinks.py \
	tests/property/test_decoder_properties.py

.PHONY: demo test test-compat test-latest lint typecheck bench bench-mlflow bench-nannyml lock clean venv

$(STAMP): pyproject.toml $(LOCK)
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q pip==$(PIP_VERSION)
	# Everything from the lock, hashes checked; torch is its CPU build (2.13.0+cpu), never CUDA.
	$(BIN)/pip install -q --require-hashes --no-deps -r $(LOCK)
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	$(BIN)/pip check
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/driftd demo --out $(DEMO_DIR)

lint: $(STAMP)
	$(BIN)/ruff check driftd tests benchmarks dashboards
	$(BIN)/ruff format --check driftd tests benchmarks dashboards

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) lint typecheck test-compat
	$(BIN)/pytest -q
	bash dashboards/check.sh

# The decoder tests again on the oldest msgspec that pyproject.toml admits (the suite runs on
# the locked newest): the dead-letter reasons must not depend on the library's version.
test-compat: $(STAMP)
	rm -rf $(COMPAT)
	$(BIN)/pip install -q --require-hashes --no-deps --target $(COMPAT) -r $(COMPAT_LOCK)
	PYTHONPATH=$(COMPAT) $(BIN)/python -c "import msgspec; assert msgspec.__version__ == '0.18.6'"
	PYTHONPATH=$(COMPAT) $(BIN)/pytest -q -p no:cacheprovider $(COMPAT_TESTS)

# The suite on the newest releases that pyproject.toml admits, in a separate venv. Run it
# before `make lock` (and monthly): it shows what a new upstream release would break.
test-latest:
	rm -rf .venv-latest
	$(PY) -m venv .venv-latest
	.venv-latest/bin/pip install -q --upgrade pip
	# Everything at its newest but torch, held at the CPU build (an eager upgrade would pull CUDA).
	.venv-latest/bin/pip install -q --upgrade --upgrade-strategy eager \
		--find-links $(TORCH_WHEELS) -c requirements-torch.txt -e '.[dev]'
	.venv-latest/bin/pip list
	.venv-latest/bin/pytest -q

# Refresh the locks to the newest releases that pyproject.toml admits (then run make test).
lock:
	$(PY) -m venv .venv-lock
	.venv-lock/bin/pip install -q $(PIP_TOOLS)
	.venv-lock/bin/pip-compile -q --upgrade --extra dev --generate-hashes --allow-unsafe \
		--strip-extras --no-emit-index-url --no-emit-find-links --find-links $(TORCH_WHEELS) \
		-c requirements-torch.txt -o $(LOCK) pyproject.toml
	.venv-lock/bin/pip-compile -q --generate-hashes --allow-unsafe --strip-extras \
		--no-emit-index-url --no-emit-find-links --find-links $(TORCH_WHEELS) \
		-c requirements-torch.txt -c $(LOCK) -o $(RUNTIME_LOCK) pyproject.toml
	echo "msgspec==0.18.6" | .venv-lock/bin/pip-compile -q --generate-hashes \
		--no-emit-index-url --no-emit-find-links -o $(COMPAT_LOCK) -

bench: $(STAMP)
	# The bench extra (Evidently) on top of the locked environment, which it must not move.
	$(BIN)/pip install -q -c $(LOCK) -e '.[dev,bench]'
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

# NannyML in its own virtualenv too (it pins pandas, LightGBM and more; pandas 3 breaks its DLE,
# and it imports statsmodels without requiring it); benchmarks/nannyml_compare.py runs it as a
# subprocess on its bundled datasets and compares driftd's CBPE and DLE with it.
bench-nannyml: $(STAMP)
	test -x .venv-nannyml/bin/python || $(PY) -m venv .venv-nannyml
	.venv-nannyml/bin/pip install -q nannyml statsmodels 'pandas<3'
	NML_DISABLE_USAGE_LOGGING=1 $(BIN)/python benchmarks/nannyml_compare.py

clean:
	rm -rf $(VENV) .venv-latest .venv-lock .driftd .pytest_cache .mypy_cache .ruff_cache
