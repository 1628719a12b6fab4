# quanta: the two set-up commands are `make demo` and `make test`.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
DEMO_DIR ?= daff-demo
EVENTS ?= 1000000

.PHONY: demo test install lint typecheck unit bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

## make demo: install quanta, generate the Daff Inc. demo mesh and build it
demo: install
	$(BIN)/quanta demo $(DEMO_DIR) --events $(EVENTS) --force

## make test: lint, type-check and the whole test suite
test: install lint typecheck unit

lint: install
	$(BIN)/ruff check src tests benchmarks

typecheck: install
	$(BIN)/mypy

unit: install
	bash scripts/test-deps.sh
	$(BIN)/pytest

## make bench: the speed benchmarks (not part of make test)
bench: install
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .mypy_cache .ruff_cache
