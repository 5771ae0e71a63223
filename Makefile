# Two entry points for a fresh machine: `make demo` (offline audit of the shipped demo models) and `make test`.
# Torch is installed first from a pinned CPU build, so that no multi-GB CUDA build is pulled on a CPU machine;
# on a GPU machine pass your own, e.g. `make install TORCH_SPEC="torch==2.11.0"`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
DEMO_OUT ?= reports/demo

.PHONY: install demo test lint benchmark clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/albert-audit demo --out $(DEMO_OUT)

test: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

benchmark: install
	$(BIN)/python bench/throughput.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
