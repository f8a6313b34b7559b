# Two commands for a fresh machine with Python 3.11: `make demo` and `make test`.
# Each bootstraps .venv itself and re-installs when pyproject.toml changes.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MANIFEST := dbt_project/target/manifest.json
DBT_FILES := $(shell find dbt_project -path dbt_project/target -prune -o \( -name '*.sql' -o -name '*.yml' -o -name '*.csv' \) -print)
export ATTIVA_HOME := $(CURDIR)
# Dagster keeps its runs, logs and schedules here (gitignored); the instance config is ./dagster.yaml.
export DAGSTER_HOME := $(CURDIR)/.dagster_home

.PHONY: demo test dev lint bench clean install dbt-parse test-postgres test-spark

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

# The dbt manifest Dagster builds its assets from (never parsed at import time).
$(MANIFEST): $(STAMP) $(DBT_FILES)
	env -u DBT_TARGET_PATH $(BIN)/dbt parse --quiet --project-dir dbt_project --profiles-dir dbt_project

dbt-parse: $(MANIFEST)

# Dagster's instance: ./dagster.yaml, with runs and logs beside it in .dagster_home.
INSTANCE := $(DAGSTER_HOME)/dagster.yaml
$(INSTANCE):
	@mkdir -p $(DAGSTER_HOME) && ln -sf ../dagster.yaml $(INSTANCE)

# The whole pipeline as one Dagster run: generate, ingest, dbt + gates, every sync to the sandbox.
demo: $(MANIFEST) $(INSTANCE)
	$(BIN)/python -m demo

test: $(STAMP) $(MANIFEST)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2 --dist loadgroup -m "not postgres and not spark"

# Dagster on its production instance (deploy/dagster.postgres.yaml): a throwaway PostgreSQL server
# (Debian's `postgresql`, installed by .ci/system-packages) and the daemon running a schedule and sensors.
test-postgres: $(STAMP) $(MANIFEST)
	$(BIN)/python -m pytest -m postgres tests/production

# The dbt project and the sync engine on a local Apache Spark, checked against the DuckDB build
# (tests/spark; installs the `spark` extra on first use, needs Java 17).
SPARK_STAMP := $(VENV)/.installed-spark
$(SPARK_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e '.[dev,spark]'
	@touch $(SPARK_STAMP)

test-spark: $(SPARK_STAMP) $(MANIFEST)
	$(BIN)/python -m pytest -m spark tests/spark

# The sandbox on 127.0.0.1:$ATTIVA_SANDBOX_PORT (8765), the marketer's console on 127.0.0.1:$ATTIVA_STUDIO_PORT
# (8767; a first admin's password printed once) and the Dagster UI on 127.0.0.1:$ATTIVA_DAGSTER_PORT (3000),
# everything loaded; Ctrl-C stops all three. The defaults live in activations/settings.py.
dev: $(MANIFEST) $(INSTANCE)
	$(BIN)/attiva sandbox & SANDBOX=$$!; $(BIN)/attiva studio --local & STUDIO=$$!; \
	trap 'kill $$SANDBOX $$STUDIO 2>/dev/null' EXIT INT TERM; \
	ATTIVA_ESP_EVENTS_URL="$${ATTIVA_ESP_EVENTS_URL-$$($(BIN)/python -c "from activations import settings; \
	  from sandbox.server import events_url; print(events_url(f'http://127.0.0.1:{settings.sandbox_port()}'))")}" \
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dagster dev --host 127.0.0.1 \
	  --port $$($(BIN)/python -c "from activations import settings; print(settings.dagster_port())")

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf data .dagster_home dbt_project/target dbt_project/logs
