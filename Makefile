# gridlayers: two commands on a fresh machine (Python >= 3.11 and make):
#   make run    run scenarios/default.yaml and print the KPI summary
#   make test   run the test suite
#   make docs   build the documentation site into site/ (mkdocs, --strict)
# Each builds .venv on first use (and again when pyproject.toml changes).

PYTHON ?= python3
VENV   := .venv
STAMP  := $(VENV)/.installed-stamp
DOCS_STAMP := $(VENV)/.docs-stamp
SCENARIO ?= scenarios/default.yaml

.PHONY: run test test-all bench lint docs clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "gridlayers needs Python >= 3.11, found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/gridlayers run $(SCENARIO)

test: $(STAMP)
	$(VENV)/bin/python -m pytest -m "not slow"

test-all: $(STAMP)
	$(VENV)/bin/python -m pytest

bench: $(STAMP)
	$(VENV)/bin/python -m pip install --quiet -e ".[bench]"
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(VENV)/bin/python $$b || exit 1; done

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks

$(DOCS_STAMP): $(STAMP)
	$(VENV)/bin/python -m pip install --quiet -e ".[docs]"
	@touch $(DOCS_STAMP)

# NO_MKDOCS_2_WARNING: mkdocs-material's end-of-life banner (not a build warning)
docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) runs .pytest_cache site
