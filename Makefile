# unetlab: `make train` and `make test` set up .venv on first use (and again when
# pyproject.toml changes), then run.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.install-stamp
EXTRAS ?= dev
ARGS ?=
PYTEST_ARGS ?= -m "not slow"
PYTEST := WANDB_MODE=offline MPLBACKEND=Agg $(BIN)/python -m pytest -q
LINTED := src tests scripts train.py setup.py

.PHONY: install train test test-fast test-all test-min lint format clean bench bench-instances \
	bench-quality docs

$(STAMP): pyproject.toml setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# Replaced by the sweeper in src/hydra_plugins/unetlab_optuna_sweeper (same config names).
	$(BIN)/python -m pip uninstall --quiet --yes hydra-optuna-sweeper
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $(STAMP)

install: $(STAMP)

train: $(STAMP)
	$(BIN)/python train.py $(ARGS)

test: $(STAMP)
	$(PYTEST) $(PYTEST_ARGS)

# Pure functions, shapes, metrics, losses and config composition: under 2 minutes, before
# every commit (the modules are listed in FAST_TESTS of tests/conftest.py).
test-fast: $(STAMP)
	$(PYTEST) -m fast

test-all: PYTEST_ARGS =
test-all: test

# The lowest versions pyproject.toml allows: uv resolves every direct dependency to its
# floor (--resolution lowest-direct) in .venv-min, then a fast subset of the tests runs there.
# torch and torchvision are the exception: the builds of their floors on PyPI are multi-GB
# CUDA downloads, so they are dropped from the resolution (an override whose marker never
# holds) and taken as installed in .venv, reached through a .pth line placed after
# .venv-min's own packages. Their floors rest on the APIs named in pyproject.toml.
VENV_MIN := .venv-min
MIN_STAMP := $(VENV_MIN)/.install-stamp
MIN_TESTS ?= tests/test_optuna.py tests/test_user_configs.py \
	tests/test_data_elastic.py tests/test_data_volume_transforms.py tests/test_mean_iou.py \
	tests/test_resume.py tests/test_inference_io.py tests/test_data_volumes.py \
	tests/test_export.py tests/test_wandb.py

$(MIN_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet uv
	rm -rf $(VENV_MIN)
	$(BIN)/uv venv --quiet --python $(BIN)/python $(VENV_MIN)
	printf 'torch ; sys_platform == "never"\ntorchvision ; sys_platform == "never"\n' \
		> $(VENV_MIN)/overrides.txt
	$(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' \
		> "$$($(VENV_MIN)/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/torch-from-dev-venv.pth"
	$(BIN)/uv pip install --quiet --python $(VENV_MIN)/bin/python --resolution lowest-direct \
		--override $(VENV_MIN)/overrides.txt -e '.[$(EXTRAS)]'
	touch $(MIN_STAMP)

test-min: $(MIN_STAMP)
	$(BIN)/uv pip list --python $(VENV_MIN)/bin/python
	WANDB_MODE=offline MPLBACKEND=Agg $(VENV_MIN)/bin/python -m pytest -q --durations=5 \
		$(PYTEST_ARGS) $(MIN_TESTS)

# Speed against segmentation_models_pytorch and torchmetrics; rewrites docs/benchmarks.md.
# ARGS="--quick" for a smoke run, ARGS="--device cuda" on a GPU machine.
BENCH_STAMP := $(VENV)/.bench-stamp

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS),bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python scripts/bench_train.py $(ARGS)

# Accuracy per CPU minute: unetlab's `experiment=fast` against smp.Unet resnet34, side by side
# (one core and one thread each) for 150, 300 and 600 s on ISBI 2012 and DSB 2018, 2 seeds:
# about 80 minutes on 2 cores; rewrites its section of docs/benchmarks.md.
# ARGS="--quick" for a smoke run, ARGS="--levers" to measure the recipe's levers.
bench-quality: $(BENCH_STAMP)
	WANDB_MODE=offline MPLBACKEND=Agg $(BIN)/python scripts/bench_quality.py $(ARGS)

# Nuclei instances: unetlab against StarDist for the same CPU time (10 minutes a row, rows
# two at a time on one core each, about 55 minutes in all on 2 cores); rewrites its section
# of docs/benchmarks.md. StarDist and TensorFlow get an environment of their own: they are
# never dependencies of unetlab.
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
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)

format: $(STAMP)
	$(BIN)/ruff check --fix $(LINTED)
	$(BIN)/ruff format $(LINTED)

clean:
	rm -rf $(VENV) $(VENV_MIN) $(STARDIST_VENV) build dist site *.egg-info src/*.egg-info .pytest_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
