# The two commands of the README. Each makes its own virtualenv and installs
# what it needs, so both work on a fresh Debian machine with Python 3.11.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: run test reliability data install-pipeline install-dev clean

run: install-pipeline data
	PATH="$(abspath $(BIN)):$$PATH" dvc repro

test: install-dev data
	$(BIN)/python -m pytest -q

# Every fault case of the reliability campaign (crashes, lost or mixed outputs, bad
# metadata, bad parameters, litter, threads); part of `make test` too.
RELIABILITY = tests/test_runtime_reliability.py tests/test_runtime_contract.py tests/test_runtime_errors.py \
	tests/test_export_set.py tests/test_atomic.py tests/test_export_errors.py tests/test_quantize_errors.py \
	tests/test_params.py tests/test_dvc_deps.py tests/test_packaging.py tests/test_export_cli.py tests/test_bench_cli.py \
	tests/test_pipeline_dvc.py

reliability: install-dev data
	$(BIN)/python -m pytest -q $(RELIABILITY)

data:
	bash scripts/ensure-data.sh

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

install-pipeline: $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[pipeline]'

install-dev: $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'

clean:
	rm -rf $(VENV) .pytest_cache
