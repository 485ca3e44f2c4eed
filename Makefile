# One task runner for people and CI. `make test` and `make demo` each work alone
# on a fresh Debian machine (as root): they install what they need first.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
SANDBOX ?= $(CURDIR)/.sandbox

.PHONY: setup system-deps venv lint typecheck unit integration test demo bench clean

setup: system-deps venv

system-deps:
	./scripts/sandbox-engine install

venv: $(BIN)/bilge

$(BIN)/bilge: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

lint: venv
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: venv
	$(BIN)/mypy src benchmarks

# The unit tests run in two processes (many start bilge or wait on a socket); the
# integration tests share one private engine per process, so they run in one.
# CI draws 300 examples per property test (tests/conftest.py).
unit: venv
	$(BIN)/pytest -q -n 2 tests/unit

integration: setup
	$(BIN)/pytest -q tests/integration

test: setup lint typecheck
	HYPOTHESIS_PROFILE=ci $(BIN)/pytest -q -n 2 tests/unit
	HYPOTHESIS_PROFILE=ci $(BIN)/pytest -q tests/integration

# ENGINE=podman replays the incident on a private Podman service.
ENGINE  ?= docker
demo: setup
	BILGE_DEMO_ENGINE=$(ENGINE) ./scripts/demo

bench: setup
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
