# civicgrid: `make run` serves the platform with a demo district; `make test` checks everything.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
export DJANGO_SETTINGS_MODULE := civicgrid.settings

.PHONY: run test lint typecheck pytest test-pg bench lock messages clean

## Environment -----------------------------------------------------------------
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Runtime dependencies, exact versions and hashes from the lock.
$(VENV)/.installed: requirements.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

# Test and development tools on top of the runtime lock.
$(VENV)/.installed-dev: requirements-dev.lock $(VENV)/.installed
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes -r requirements-dev.lock
	touch $@

## Run -----------------------------------------------------------------------------
run: $(VENV)/.installed
	$(BIN)/civicgrid migrate --no-input -v 0
	$(BIN)/civicgrid createcachetable
	$(BIN)/civicgrid collectstatic --no-input -v 0
	$(BIN)/civicgrid demo --if-empty
	@echo
	@echo "  civicgrid is at http://$(HOST):$(PORT)/   (Ctrl+C stops it)"
	@echo
	$(BIN)/civicgrid serve --bind $(HOST):$(PORT)

## Checks --------------------------------------------------------------------------
test: lint typecheck pytest

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check civicgrid bench
	$(BIN)/ruff format --check civicgrid bench

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

pytest: $(VENV)/.installed-dev
	@scripts/ensure-chromium
	$(BIN)/pytest -n 2 -q

# The same suite against PostgreSQL (DATABASE_URL must point at it; .ci/run sets it).
test-pg: $(VENV)/.installed-dev
	@scripts/ensure-chromium
	$(BIN)/pytest -n 2 -q

# Benchmarks, a baseline beside every figure (docs/performance.md); e.g. BENCH_ARGS=--quick
bench: $(VENV)/.installed
	$(BIN)/python bench/run.py $(BENCH_ARGS)

## Maintenance -----------------------------------------------------------------------
# Re-resolve the locks from requirements*.in (needs network access to PyPI).
lock: $(BIN)/python
	$(BIN)/pip install --quiet uv
	$(BIN)/uv pip compile --quiet --python-version 3.11 --generate-hashes requirements.in -o requirements.lock
	$(BIN)/uv pip compile --quiet --python-version 3.11 --generate-hashes requirements-dev.in -o requirements-dev.lock

messages: $(VENV)/.installed
	$(BIN)/civicgrid makemessages -l en --ignore=.venv --ignore=bench
	$(BIN)/civicgrid compilemessages --ignore=.venv

clean:
	rm -rf $(VENV) var/static
