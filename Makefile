# The two commands of the README: `make bench` (the default benchmark) and `make test` (the whole suite);
# `make lint` runs ruff (lint + format check) and mypy as CI does; `make test-wheel` builds the wheel and
# installs it into a fresh virtual environment (tests/test_wheel.py, a few minutes; CI runs it).
# Each creates .venv on first use: the CPU torch wheel first, then samplekit with every extra.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: bench test test-wheel lint install clean

$(BIN)/.installed: pyproject.toml plugins/example_plugin/pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[all]'
	$(BIN)/python -m pip install --quiet --no-deps k-diffusion==0.1.1.post1
	$(BIN)/python -m pip install --quiet scipy pandas transformers
	touch $@

install: $(BIN)/.installed

# The default suite's cells are dealt to BENCH_PROCS processes (torchrun, gloo on CPU); rerun to resume.
BENCH_PROCS ?= 2

bench: $(BIN)/.installed
	OMP_NUM_THREADS=1 $(BIN)/torchrun --standalone --nproc-per-node $(BENCH_PROCS) -m samplekit bench --out out/default

test: $(BIN)/.installed
	$(BIN)/python -m pytest -n 2 -q

test-wheel: $(BIN)/.installed
	$(BIN)/python -m pytest -m slow -q tests/test_wheel.py

# ruff and mypy read their settings from pyproject.toml (mypy checks samplekit/ and plugins/).
lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV)
