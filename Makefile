# The README's two commands: `make run` (the demo on the embedded SQLite default)
# and `make test` (the whole suite on SQLite and PostgreSQL). Both start with
# `make setup`, which is idempotent and quick when nothing changed.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup system run test lint bench clean-demo

setup: system $(STAMP)

# Debian packages the commands and tests need (WordNet, Chromium, PostgreSQL).
system:
	@bash scripts/setup-system.sh

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	@# The local CPU build of torch first: a bare `torch` would pull CUDA wheels.
	$(PY) -m pip install -q --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install -q --disable-pip-version-check -e '.[train,dask,test,bench,privacy,interop]'
	@touch $(STAMP)

run: setup
	@bash scripts/demo.sh

test: setup
	@bash scripts/ensure-postgres.sh
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: setup
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done
