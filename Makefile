# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint install bench results clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m scripts.run_stack

lint: $(STAMP)
	$(BIN)/ruff check backend worker tests bench scripts
	$(BIN)/mypy

test: $(STAMP) lint
	$(BIN)/python -m scripts.ensure_browser
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	for script in bench/*.py; do $(BIN)/python $$script || exit 1; done

# Trains the five variants on real CIFAR-10 through the service; reuses runs already stored.
# RESULTS_ARGS passes options on, e.g. `make results RESULTS_ARGS=--fresh` to train anew.
results: $(STAMP)
	CURVELAB_CIFAR10_PATH=$${CURVELAB_CIFAR10_PATH:-$(CURDIR)/../shared/datasets/cifar10-jpeg.tar.gz} \
	$(BIN)/python -m scripts.results $(RESULTS_ARGS)

clean:
	rm -rf $(VENV) var
