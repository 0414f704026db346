# The two commands a new user needs: `make demo` and `make test` (and `make docs` for the documentation site).
# Each creates the virtual environment .venv on first use and reuses it afterwards.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip

.PHONY: demo test docs bench clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/activate pyproject.toml
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) install --quiet "torch==2.13.0+cpu" || $(PIP) install --quiet torch --index-url https://download.pytorch.org/whl/cpu
	$(PIP) install --quiet -e ".[test,docs,backends]"
	touch $@

$(VENV)/.installed-docs: $(VENV)/.installed
	$(PIP) install --quiet -e ".[docs]"
	touch $@

demo: $(VENV)/.installed
	$(BIN)/sodinn demo --output demo_output

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest

# the Sphinx site in docs/_build/html: API reference, conventions, tutorials (rendered, not re-run); warnings are errors
docs: $(VENV)/.installed-docs
	$(BIN)/python -m sphinx -W --keep-going -b html docs docs/_build/html

bench: $(VENV)/.installed-test
	$(BIN)/python bench/bench_core.py

clean:
	rm -rf $(VENV) demo_output .pytest_cache .hypothesis docs/_build docs/_generated
