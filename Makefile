# unetlab: `make train` and `make test` set up .venv on first use (and again when
# pyproject.toml changes), then run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.install-stamp
EXTRAS ?= dev
ARGS ?=
PYTEST_ARGS ?= -m "not slow"

.PHONY: install train test test-all lint format clean bench bench-instances docs

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $(STAMP)

install: $(STAMP)

train: $(STAMP)
	$(BIN)/python train.py $(ARGS)

test: $(STAMP)
	WANDB_MODE=offline MPLBACKEND=Agg $(BIN)/python -m pytest -q $(PYTEST_ARGS)

test-all: PYTEST_ARGS =
test-all: test

# Speed against segmentation_models_pytorch and torchmetrics; rewrites docs/benchmarks.md.
# ARGS="--quick" for a smoke run, ARGS="--device cuda" on a GPU machine.
BENCH_STAMP := $(VENV)/.bench-stamp

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS),bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python scripts/bench_train.py $(ARGS)

# Nuclei instances: unetlab against StarDist for the same CPU time (10 minutes a row, about
# 2 hours in all on 2 cores); rewrites its section of docs/benchmarks.md. StarDist and
# TensorFlow get an environment of their own: they are never dependencies of unetlab.
# ARGS="--quick" for a smoke run, ARGS="--budget SECONDS" for another budget.
STARDIST_VENV := .venv-stardist
STARDIST_STAMP := $(STARDIST_VENV)/.install-stamp
STARDIST_PACKAGES := stardist==0.9.2 tensorflow-cpu==2.21.0 tensorboard

$(STARDIST_STAMP):
	test -x $(STARDIST_VENV)/bin/python || $(PYTHON) -m venv $(STARDIST_VENV)
	$(STARDIST_VENV)/bin/python -m pip install --quiet $(STARDIST_PACKAGES)
	touch $(STARDIST_STAMP)

bench-instances: $(STAMP) $(STARDIST_STAMP)
	WANDB_MODE=offline MPLBACKEND=Agg $(BIN)/python scripts/bench_instances.py \
		--stardist-python $(STARDIST_VENV)/bin/python $(ARGS)

# The documentation site (mkdocs.yml, docs/) into site/; a broken link or missing page fails.
DOCS_STAMP := $(VENV)/.docs-stamp

$(DOCS_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS),docs]'
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

lint: $(STAMP)
	$(BIN)/ruff check src tests scripts train.py
	$(BIN)/ruff format --check src tests scripts train.py

format: $(STAMP)
	$(BIN)/ruff check --fix src tests scripts train.py
	$(BIN)/ruff format src tests scripts train.py

clean:
	rm -rf $(VENV) $(STARDIST_VENV) build site *.egg-info src/*.egg-info .pytest_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
