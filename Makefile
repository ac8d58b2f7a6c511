# Two commands for a new user: `make run` starts the server, `make test` runs the whole suite.
# Both build their own environment from uv.lock; the only prerequisite is Python 3.11.
PYTHON ?= python3.11
TOOLS  := .tools
UV     := $(TOOLS)/bin/uv
UV_VERSION := 0.13.8
export UV_PROJECT_ENVIRONMENT := .venv
export UV_PYTHON := $(PYTHON)

.PHONY: run test lint bench-auth env clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

env: $(UV)
	$(UV) sync --frozen --quiet

run: env  ## start the server on the embedded default (SQLite under ./data), migrating first
	.venv/bin/worthline serve $(ARGS)

test: env  ## the whole suite, on SQLite and (when reachable) PostgreSQL + Redis
	.venv/bin/python -m pytest $(ARGS)

lint: env
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

bench-auth: env
	.venv/bin/python benchmarks/bench_auth_read.py $(ARGS)

clean:
	rm -rf $(TOOLS) .venv .pytest_cache
