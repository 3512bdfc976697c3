# Model Steward: the two commands of the Quickstart, and a few more for developers.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATA_DIR ?= ./steward-data
HOST ?= 127.0.0.1
PORT ?= 8765

.PHONY: demo test lint bench clean install

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# One resolve for everything (piecemeal installs have left protobuf conflicts on these machines).
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[all,test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/steward up --demo --data-dir $(DATA_DIR) --host $(HOST) --port $(PORT)

test: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/ruff check modelsteward tests bench
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/ruff check modelsteward tests bench

bench: $(STAMP)
	$(BIN)/python bench/bench_registry.py
	$(BIN)/python bench/bench_protocols.py
	$(BIN)/python bench/bench_prediction_log.py
	$(BIN)/python bench/bench_serving.py
	$(BIN)/python bench/bench_monitoring.py
	$(BIN)/python bench/bench_lifecycle.py
	$(BIN)/python bench/bench_compliance.py
	$(BIN)/python bench/bench_dashboard.py
	$(BIN)/python bench/bench_dask.py
	$(BIN)/python bench/bench_load.py   # needs PostgreSQL (STEWARD_TEST_PG_URL); 10 minutes

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
