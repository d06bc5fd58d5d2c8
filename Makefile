# The two commands of the README. Each makes its own virtualenv and installs
# what it needs, so both work on a fresh Debian machine with Python 3.11.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: run test data install-pipeline install-dev clean

run: install-pipeline data
	PATH="$(abspath $(BIN)):$$PATH" dvc repro

test: install-dev data
	$(BIN)/python -m pytest -q

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
