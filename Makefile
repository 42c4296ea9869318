# SignalOS Core — the two commands a newcomer needs:
#   make run    set everything up and start the service on the embedded SQLite database
#   make test   set everything up and run the whole suite (lint, types, tests with coverage)
# Needs Python 3.11+ and a C compiler (durable-rules builds from source; it is skipped on Python >= 3.13).

PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ENV_FILE := var/signalos.env
SIGNALOS_PORT ?= 8000

.PHONY: setup run test lint typecheck pytest bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

$(ENV_FILE): | $(STAMP)
	mkdir -p var
	$(BIN)/signalos secrets generate > $(ENV_FILE).tmp && mv $(ENV_FILE).tmp $(ENV_FILE)
	chmod 600 $(ENV_FILE)

run: $(STAMP) $(ENV_FILE)
	set -a && . ./$(ENV_FILE) && set +a && \
	SIGNALOS_PORT=$(SIGNALOS_PORT) $(BIN)/signalos db upgrade >/dev/null && \
	SIGNALOS_PORT=$(SIGNALOS_PORT) exec $(BIN)/signalos serve --no-migrate

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest -n auto --dist loadfile --cov --cov-report=term

test: lint typecheck pytest

bench: $(STAMP)
	for bench in benchmarks/bench_*.py; do echo "== $$bench"; $(BIN)/python $$bench || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.* htmlcov
