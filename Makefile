# One command to demo, one to test, one to check. `make demo` installs only what serving needs
# (the `server` extra); `make test` and `make check` add the test and development tools to the
# same virtualenv.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
SERVE_STAMP := $(VENV)/.installed-serve
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: install demo test check format bench bench-postgres screenshots clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(SERVE_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[server]'
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(SERVE_STAMP)

install: $(SERVE_STAMP)

demo: $(SERVE_STAMP)
	$(BIN)/ayeto serve --demo --db sqlite:///./demo.db

test: $(DEV_STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile

check: $(DEV_STAMP)
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts
	$(BIN)/mypy

format: $(DEV_STAMP)
	$(BIN)/ruff check --fix src tests bench scripts
	$(BIN)/ruff format src tests bench scripts

bench: $(DEV_STAMP)
	$(BIN)/python bench/run.py
	$(BIN)/python bench/search.py --quick

bench-postgres: $(DEV_STAMP)
	$(BIN)/python bench/postgres.py

# The README's pictures of the web view, taken in the system's chromium (apt-get install chromium).
screenshots: $(DEV_STAMP)
	$(BIN)/python scripts/screenshots.py

clean:
	rm -rf $(VENV) demo.db .pytest_cache .mypy_cache .ruff_cache .hypothesis .schemathesis
