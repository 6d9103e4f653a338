# The two commands of the README: `make run` and `make test`. Everything else supports them.
#
# Dependencies are pinned in uv.lock and installed by uv (the version below, bootstrapped from PyPI
# with pip when no uv of that version is on PATH): `make install` makes .venv match the lock exactly,
# `make lock` refreshes the lock from pyproject.toml.

# Python: the first of these that runs and is 3.11 to 3.13, unless `make PYTHON=/path/to/python3.x`.
PYTHON_CANDIDATES := python3.11 python3.12 python3.13 python3
PYTHON_VERSION_OF := import sys; v = sys.version_info[:2]; (3, 11) <= v <= (3, 13) or sys.exit(1); print("%d.%d" % v)
ifeq ($(origin PYTHON),undefined)
FOUND_PYTHON := $(shell for p in $(PYTHON_CANDIDATES); do \
	v=$$($$p -c '$(PYTHON_VERSION_OF)' 2>/dev/null) && { echo "$$p $$v"; break; }; done)
PYTHON := $(word 1,$(FOUND_PYTHON))
PYTHON_VERSION := $(word 2,$(FOUND_PYTHON))
PYTHON_MISSING := No Python 3.11 to 3.13 found (tried $(PYTHON_CANDIDATES)): install one or run make PYTHON=/path/to/python3.x
else
PYTHON_VERSION := $(shell $(PYTHON) -c '$(PYTHON_VERSION_OF)' 2>/dev/null)
PYTHON_MISSING := PYTHON=$(PYTHON) does not run or is not Python 3.11 to 3.13
endif
CHECK_PYTHON = @test -n "$(PYTHON_VERSION)" || { echo "$(PYTHON_MISSING)" >&2; exit 1; }
# The interpreter itself (not a pyenv shim) for uv.
PYTHON_EXE = "$$($(PYTHON) -c 'import sys; print(sys.executable)')"

VENV := .venv
BIN := $(VENV)/bin
# Named after the Python version so that another PYTHON= rebuilds .venv with it.
STAMP := $(VENV)/.installed-$(PYTHON_VERSION)
RUN_STAMP := $(VENV)/.installed-run-$(PYTHON_VERSION)
HOST ?= 127.0.0.1
PORT ?= 8000
DEV_ENV := DJANGO_DEBUG=1 DR_SANDBOX=1 DR_API_BASE_URL=http://$(HOST):$(PORT)/sandbox/api
# mypy's Django plugin loads the settings, which need the development environment (and the sandbox app).
MYPY := DJANGO_DEBUG=1 DR_SANDBOX=1 $(BIN)/mypy

# uv: the one on PATH when it is this version, else this version from PyPI into .tools/.
UV_VERSION := 0.13.9
TOOLS := .tools
ifeq ($(word 2,$(shell uv --version 2>/dev/null)),$(UV_VERSION))
UV := uv
UV_BOOTSTRAP :=
else
UV := $(TOOLS)/uv-$(UV_VERSION)/bin/uv
UV_BOOTSTRAP := $(UV)
endif
LOCK_HINT := (if uv says uv.lock needs to be updated: run make lock, then commit uv.lock with pyproject.toml)
# Only the Python chosen above (uv never downloads one), always into .venv.
UV_ENV := UV_PYTHON_DOWNLOADS=never UV_PROJECT_ENVIRONMENT=$(VENV)

.PHONY: run test test-fast test-celery test-chaos browser-deps lint typecheck bench mutation install lock migrate clean

# pip --target needs no venv (and is allowed on an externally managed Python); a Python without pip
# lends a venv's.
$(TOOLS)/uv-$(UV_VERSION)/bin/uv:
	$(CHECK_PYTHON)
	rm -rf $(TOOLS)/uv-$(UV_VERSION) $(TOOLS)/pip
	if $(PYTHON) -m pip --version >/dev/null 2>&1; then pip="$(PYTHON) -m pip"; \
	else $(PYTHON) -m venv $(TOOLS)/pip && pip="$(TOOLS)/pip/bin/python -m pip"; fi && \
	$$pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps --target $(TOOLS)/uv-$(UV_VERSION) uv==$(UV_VERSION)
	@test -x $@

# Exactly what uv.lock pins, dev extras included, nothing else (uv removes what the lock does not
# list), compiled to bytecode as pip would. --locked never changes uv.lock: when pyproject.toml asks
# for something the lock lacks, it stops and `make lock` is needed.
$(STAMP): pyproject.toml uv.lock | $(UV_BOOTSTRAP)
	$(CHECK_PYTHON)
	$(UV_ENV) $(UV) sync --locked --extra dev --compile-bytecode --python $(PYTHON_EXE) \
		|| { echo "$(LOCK_HINT)" >&2; exit 1; }
	touch $(STAMP) $(RUN_STAMP)

# What the server imports and nothing more, for `make run` on a fresh machine: the runtime part of
# the lock at the locked versions, leaving the rest of .venv as it is (--inexact); the project itself
# runs from this directory.
$(RUN_STAMP): pyproject.toml uv.lock | $(UV_BOOTSTRAP)
	$(CHECK_PYTHON)
	$(UV_ENV) $(UV) sync --locked --inexact --no-install-project --compile-bytecode --python $(PYTHON_EXE) \
		|| { echo "$(LOCK_HINT)" >&2; exit 1; }
	touch $(RUN_STAMP)

# Resolve pyproject.toml into uv.lock for every platform and Python 3.11 to 3.13, keeping each pin
# that still fits; `make lock UPGRADE=1` moves everything to the newest versions allowed. After a
# merge just run it again: .gitattributes leaves a conflicted uv.lock as this branch had it, and a
# lock with conflict markers is first taken from this branch's side.
lock: | $(UV_BOOTSTRAP)
	$(CHECK_PYTHON)
	@if grep -q '^<<<<<<< ' uv.lock 2>/dev/null; then git checkout --ours -- uv.lock 2>/dev/null || rm -f uv.lock; fi
	$(UV_ENV) $(UV) lock $(if $(UPGRADE),--upgrade) --python $(PYTHON_EXE)

install: $(STAMP)

migrate: $(RUN_STAMP)
	$(DEV_ENV) $(BIN)/python manage.py migrate --noinput

run: migrate
	$(DEV_ENV) $(BIN)/python manage.py ensure_admin
	$(DEV_ENV) $(BIN)/python manage.py serve $(HOST):$(PORT) --open --demo

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The unit tests: no transactional database, live server, browser, Celery or chaos (tests/conftest.py
# marks those `slow`).
test-fast: install
	$(BIN)/python -m pytest -m "not slow" -n 2 $(PYTEST_ARGS)

test-celery: install
	CELERY_BROKER_URL=$${CELERY_BROKER_URL:-redis://127.0.0.1:6379/15} $(BIN)/python -m pytest -m celery $(PYTEST_ARGS)

# The chaos suite: real processes (gunicorn, Celery workers) on PostgreSQL and Redis, faults injected.
test-chaos: install
	DATABASE_URL=$${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test} \
	CELERY_BROKER_URL=$${CELERY_BROKER_URL:-redis://127.0.0.1:6379/15} \
	$(BIN)/python -m pytest -m chaos tests/reliability $(PYTEST_ARGS)

# Debian's chromium for the browser tests (Playwright's own browser download cannot work here).
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core >/dev/null; \
		else echo "install chromium (apt-get install chromium) to run the browser tests"; fi; }

# Every benchmark in bench/, one after the other; each writes bench/results/<name>.json.
bench: install
	$(BIN)/python bench/webhook_ingest.py --events 3000 --concurrency 8
	$(BIN)/python bench/flow_latency.py --orders 40
	$(BIN)/python bench/catalog_push.py --pairs 1000
	$(BIN)/python bench/admin_pages.py --orders 100000 --events 10000000
	$(BIN)/python bench/pipeline_throughput.py --orders 500 --workers 3
	$(BIN)/python bench/pipeline_throughput.py --orders 300 --workers 3 --rate-limit 40

# Mutation testing of the money rules with mutmut (config in pyproject [tool.mutmut]); slow, not in CI.
# MUTANTS narrows the run, e.g. make mutation MUTANTS='fulfillment.shipments*'; results stay in mutants/.
MUTANTS ?=
mutation: install
	$(BIN)/mutmut run $(MUTANTS)
	$(BIN)/python tests/mutation_score.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(MYPY)

typecheck: install
	$(MYPY)

clean:
	rm -rf $(VENV) $(TOOLS) db.sqlite3* staticfiles .pytest_cache .mypy_cache mutants
