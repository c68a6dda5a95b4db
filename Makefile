# crowdquant: `make demo` runs a whole tournament, `make test` runs the tests.
# Both bootstrap what they need: .venv, dependencies, generated gRPC stubs, the embedded database.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PROTOS := $(shell find proto -name '*.proto' | sort)
STUBS  := crowdquant/.stubs
BUF    := .tools/node_modules/.bin/buf
PYTEST_ARGS ?=

.PHONY: all demo test lint proto bench clean help
.DEFAULT_GOAL := help

help:
	@echo "make demo   - start the embedded database and all services, run a tournament, print results"
	@echo "make test   - run the whole test suite"
	@echo "make lint   - ruff and buf lint"
	@echo "make proto  - regenerate the gRPC stubs"
	@echo "make bench  - run the benchmarks under bench/"
	@echo "make clean  - stop the embedded database and remove generated files"

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $@

$(STUBS): $(PROTOS) $(STAMP) scripts/gen_protos.py
	$(PY) scripts/gen_protos.py
	@touch $@

proto: $(STAMP)
	$(PY) scripts/gen_protos.py
	@touch $(STUBS)

test: $(STAMP) $(STUBS)
	@bash scripts/install_browser.sh || echo "could not install Chromium: the browser tests will skip"
	$(PY) -m pytest $(PYTEST_ARGS)

demo: $(STAMP) $(STUBS)
	$(VENV)/bin/crowdquant demo $(DEMO_ARGS)

$(BUF):
	npm install --silent --no-audit --no-fund --prefix .tools @bufbuild/buf@^1.50

lint: $(STAMP) $(STUBS) $(BUF)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(BUF) lint

bench: $(STAMP) $(STUBS)
	@for script in bench/*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

clean:
	-@test -x $(VENV)/bin/crowdquant && $(VENV)/bin/crowdquant db stop
	rm -rf $(VENV) .tools .data .pytest_cache .ruff_cache $(STUBS)
	rm -rf crowdquant/common crowdquant/submissions crowdquant/scoring crowdquant/leaderboard crowdquant/payouts
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
