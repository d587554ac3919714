# `make run` starts the app (runtime requirements only); `make test` runs lint, type checks and
# the whole suite (adds requirements-dev.txt). Both build .venv on first use and again when a
# requirements file changes.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.requirements-installed
DEV_STAMP := $(VENV)/.requirements-dev-installed
LINTED := core services storage models pages benchmarks tests streamlit_app.py server.py

.PHONY: run dev test lint format train evaluate bench cluster clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# --no-compile: a module is compiled when first imported; compiling every installed file
# up front (torch alone has thousands) took about 30 s of a fresh install.
$(STAMP): requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --no-compile -r requirements.txt
	@touch $(STAMP)

$(DEV_STAMP): requirements-dev.txt $(STAMP)
	$(BIN)/python -m pip install --quiet --no-compile -r requirements-dev.txt
	@touch $(DEV_STAMP)

# server.py is Streamlit's ASGI app (st.App): streamlit_app.py plus the session-cookie routes.
run: $(STAMP)
	$(BIN)/streamlit run server.py --server.port 8501 --server.address localhost

# As `run`, reloading pages when their files change (the file watcher is off otherwise).
dev: $(STAMP)
	$(BIN)/streamlit run server.py --server.port 8501 --server.address localhost \
		--server.fileWatcherType auto --server.runOnSave true

# Several stateless replicas behind HAProxy, over PostgreSQL and SeaweedFS (deploy/cluster.sh;
# the weed binary comes with requirements-dev.txt). Ctrl+C stops it.
REPLICAS ?= 3
cluster: $(DEV_STAMP)
	REPLICAS=$(REPLICAS) bash deploy/cluster.sh

lint: $(DEV_STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy

format: $(DEV_STAMP)
	$(BIN)/ruff check --fix $(LINTED)
	$(BIN)/ruff format $(LINTED)

# One worker per core (pytest-xdist); a test file's tests stay on one worker, so a module's
# server or browser starts once.
test: lint
	$(BIN)/python -m pytest -n auto --dist loadfile --no-loadscope-reorder

train: $(STAMP)
	$(BIN)/python -m models.train

evaluate: $(STAMP)
	$(BIN)/python -m models.evaluate

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean-venv:
	rm -rf $(VENV)
