# dlx: `make run` and `make test` each set up .venv by themselves (Python >= 3.11 needed).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ARGS ?=
PYTEST_ARGS ?=

.PHONY: run test test-fast dev lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# pip byte-compiles every file it installs, about half of the install's time; Python compiles
# what a run imports on first use and caches it. Where PYTHONDONTWRITEBYTECODE forbids that
# cache, pip's compilation is the only one, so it stays.
PIP_INSTALL := $(BIN)/python -m pip install --quiet $(if $(PYTHONDONTWRITEBYTECODE),,--no-compile)

# Stamps: reinstall only when pyproject.toml changes (the install is editable).
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP_INSTALL) -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(PIP_INSTALL) -e '.[dev]'
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/dlx run $(ARGS)

dev: $(VENV)/.installed-dev

# One worker per core (pytest-xdist): the tests are single-threaded (threads=1), so on the
# 2-core CI machine two workers take about half the wall time.
test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -n auto $(PYTEST_ARGS)

# The inner loop: everything but the end-to-end runs of the CLI (marked slow); about a minute.
test-fast: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -n auto -m "not slow" $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/python -m ruff check dlx conf tests

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
