# Two commands for a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# What running needs (Vigil, and the agent SDK the example agent and `vigil demo` use) ...
RUN_STAMP := $(VENV)/.installed-run
# ... and on top of it the test, lint and type-check tools and the OpenTelemetry SDK the tests use.
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit bench clean

$(RUN_STAMP): pyproject.toml sdk/python/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e . -e "sdk/python[engines]"
	touch $(RUN_STAMP)

$(STAMP): $(RUN_STAMP)
	$(BIN)/python -m pip install --quiet -e ".[dev]" -e "sdk/python[engines]"
	touch $(STAMP)

run: $(RUN_STAMP)
	$(BIN)/vigil up

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check src sdk/python/src

typecheck: $(STAMP)
	$(BIN)/mypy
	$(BIN)/mypy --strict sdk/python/src

# Tests mostly wait (on processes starting, servers, the network), so more workers than cores pays.
# loadfile keeps a file on one worker: its module fixtures start once, and the NATS-cluster tests,
# which bound failover pauses, do not compete with each other; files are handed out in collection
# order, where tests marked slow come first. Exit code 5 (no tests collected) fails like any other.
TEST_WORKERS ?= 3

test: lint typecheck
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .vigil .pytest_cache .mypy_cache .ruff_cache
