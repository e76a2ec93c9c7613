# Two commands a new user needs: `make demo` and `make test`. Both build .venv from the lock file first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
COMPAT_DUCKDB := 1.4.0
COMPAT := $(VENV)/compat/duckdb-$(COMPAT_DUCKDB)

.PHONY: demo test lint lock dev clean

demo: $(STAMP)
	$(BIN)/pfd demo --with-errors

test: $(STAMP) $(COMPAT)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check pfd_pipeline tests
	$(BIN)/ruff format --check pfd_pipeline tests

dev: $(STAMP)
	mkdir -p data/warehouse/dagster_home
	DAGSTER_HOME=$(CURDIR)/data/warehouse/dagster_home $(BIN)/dagster dev -w workspace.yaml

# The venv is rebuilt whenever the lock file or the package metadata changes.
$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# An older DuckDB client, kept apart from the venv's, for the test that the published file
# opens in DuckDB 1.4 (BI drivers lag behind).
$(COMPAT): $(STAMP)
	rm -rf $(COMPAT)
	$(BIN)/python -m pip install --quiet --no-deps --target $(COMPAT) duckdb==$(COMPAT_DUCKDB)

# Re-pin every dependency after editing pyproject.toml (needs pip-tools in the venv).
lock: $(STAMP)
	$(BIN)/python -m pip install --quiet pip-tools
	$(BIN)/pip-compile --quiet --extra dev --strip-extras --no-emit-index-url --no-emit-find-links \
		-o requirements.lock pyproject.toml

clean:
	rm -rf $(VENV) data/landing data/warehouse .pytest_cache
