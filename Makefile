# Thin wrappers; the README's first lines are `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
DATA ?= data
STAMP = $(VENV)/.installed

.PHONY: run test lint fmt bench migrate clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	@if test -f $(DATA)/mailhost.toml; then cat $(DATA)/demo-logins.txt 2>/dev/null || true; \
	else $(BIN)/mailhost --data-dir $(DATA) init --demo; fi
	$(BIN)/mailhost --data-dir $(DATA) serve

test: lint
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

fmt: $(STAMP)
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

migrate: $(STAMP)
	$(BIN)/mailhost --data-dir $(DATA) init

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
