# The two commands of the README: `make demo` and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin

TYPECHECK := dashboards/typecheck

.PHONY: install demo test lint clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# One resolve for everything: installed separately, huggingface_hub pulls a click that breaks faust.
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# The dashboard type check (tests/test_dashboards_typecheck.py) runs tsc from here; npm missing fails the build.
$(TYPECHECK)/node_modules/.package-lock.json: $(TYPECHECK)/package.json $(TYPECHECK)/package-lock.json
	npm ci --no-audit --no-fund --prefix $(TYPECHECK)

demo: install
	$(BIN)/driftwatch demo

test: install $(TYPECHECK)/node_modules/.package-lock.json
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) driftwatch-data .pytest_cache .mypy_cache .ruff_cache $(TYPECHECK)/node_modules $(TYPECHECK)/generated
