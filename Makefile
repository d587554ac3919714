# Two commands: `make run` starts the app, `make test` runs the whole suite.
# Both build .venv from requirements.txt on first use (and again when it changes).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.requirements-installed

.PHONY: run test train evaluate bench clean-venv

$(STAMP): requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/streamlit run streamlit_app.py --server.port 8501 --server.address localhost

test: $(STAMP)
	$(BIN)/python -m pytest

train: $(STAMP)
	$(BIN)/python -m models.train

evaluate: $(STAMP)
	$(BIN)/python -m models.evaluate

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean-venv:
	rm -rf $(VENV)
