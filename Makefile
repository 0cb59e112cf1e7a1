# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test lint typecheck docs check concurrency bench bench-full bench-policies clean venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m libres.demo

test: $(STAMP)
	$(BIN)/python -m pytest --cov=libres --cov-report=term --cov-fail-under=90 $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests

typecheck: $(STAMP)
	$(BIN)/mypy src/libres tests

# The documentation site in site/; any warning fails the build.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

check: lint typecheck test

concurrency: $(STAMP)
	$(BIN)/python -m pytest -m concurrency $(PYTEST_ARGS)

# Ours against the published libres 1.4.0 (own venv, built on first use).
bench: $(STAMP)
	$(BIN)/python -m bench.run --size quick

bench-full: $(STAMP)
	$(BIN)/python -m bench.run --size full --write bench/RESULTS.md

# What holds and buffers cost a booking, against our own plain booking.
bench-policies: $(STAMP)
	$(BIN)/python -m bench.policies --size quick

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage site
