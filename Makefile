# Async States: `make run` starts everything on this machine, `make test` runs the suite.
# Only Python 3.11 and PyPI are needed; the virtualenv is made and kept up to date here.

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
# Touched after each install: pip runs again only when pyproject.toml is newer.
STAMP  := $(VENV)/.installed

.PHONY: run test lint check clean distclean venv faults

run: $(STAMP)
	@scripts/run.sh

# Every test on SQLite and, at the same time, the PostgreSQL-marked ones on PostgreSQL
# (scripts/test.sh; TEST_SERIAL=1: one pass after the other).
test: $(STAMP)
	@scripts/test.sh $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

check: $(STAMP)
	@$(BIN)/python manage.py migrate --noinput -v0
	$(BIN)/python manage.py loadtasks --check

venv: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	@echo "Installing dependencies (pyproject.toml is newer than the last install)..."
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

# Caches only; the database and secret key in var/ and the virtualenv stay.
clean:
	rm -rf .pytest_cache .ruff_cache var/static *.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +

# Everything `make run` made: the virtualenv, the database, the secret key.
distclean: clean
	rm -rf $(VENV) var

# The benchmark suite (bench/run.py) against PostgreSQL + Redis on this machine (and RabbitMQ,
# Mosquitto, NATS for broker_events): prints a table and writes bench/results/<date>.json.
# QUICK=1: small counts, a few minutes.
.PHONY: bench
bench: $(STAMP)
	$(BIN)/python -m bench.run $(if $(QUICK),--quick) $(BENCH_ARGS)

# The fault campaign (bench/faults, docs/reliability.md): the project's processes on a private
# PostgreSQL and Redis it starts itself, killed and restarted under load, hostile inputs fed
# to daphne; prints what was lost, duplicated, stuck or leaked and writes
# bench/results/faults-<time>.json. QUICK=1: one fault of each kind (what `make test` runs).
faults: $(STAMP)
	$(BIN)/python -m bench.faults $(if $(QUICK),--quick) $(FAULTS_ARGS)
