# The two commands of the README: `make run` and `make test`. Everything else supports them.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
DEV_ENV := DJANGO_DEBUG=1 DR_SANDBOX=1 DR_API_BASE_URL=http://$(HOST):$(PORT)/sandbox/api

.PHONY: run test test-celery test-chaos browser-deps lint bench mutation install migrate clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is needed: install python3.11"; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(DEV_ENV) $(BIN)/python manage.py migrate --noinput

run: migrate
	$(DEV_ENV) $(BIN)/python manage.py ensure_admin
	$(DEV_ENV) $(BIN)/python manage.py serve $(HOST):$(PORT) --open --demo

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

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
	$(BIN)/python bench/admin_pages.py --orders 100000

# Mutation testing of the money rules with mutmut (config in pyproject [tool.mutmut]); slow, not in CI.
# MUTANTS narrows the run, e.g. make mutation MUTANTS='fulfillment.shipments*'; results stay in mutants/.
MUTANTS ?=
mutation: install
	$(BIN)/mutmut run $(MUTANTS)
	$(BIN)/python tests/mutation_score.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) db.sqlite3* staticfiles .pytest_cache mutants
