# `make run` starts the app (runtime requirements only); `make test` runs lint, type checks and
# the whole suite (adds requirements-dev.txt). Both build .venv on first use and again when a
# requirements file changes.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.requirements-installed
DEV_STAMP := $(VENV)/.requirements-dev-installed
LINTED := core services storage models pages benchmarks tests streamlit_app.py

.PHONY: run test lint format train evaluate bench clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements.txt
	@touch $(STAMP)

$(DEV_STAMP): requirements-dev.txt $(STAMP)
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	@touch $(DEV_STAMP)

run: $(STAMP)
	$(BIN)/streamlit run streamlit_app.py --server.port 8501 --server.address localhost

lint: $(DEV_STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy

format: $(DEV_STAMP)
	$(BIN)/ruff check --fix $(LINTED)
	$(BIN)/ruff format $(LINTED)

test: lint
	$(BIN)/python -m pytest

train: $(STAMP)
	$(BIN)/python -m models.train

evaluate: $(STAMP)
	$(BIN)/python -m models.evaluate

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean-venv:
	rm -rf $(VENV)
