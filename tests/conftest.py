"""Shared fixtures: the training config composed once per test and shrunk to seconds."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from unetlab.config_location import CONFIG_DIR

ROOT = Path(__file__).resolve().parents[1]

TINY_OVERRIDES = (
    "model.base_channels=4",
    "model.depth=2",
    "data.source.num_images=12",
    "data.source.image_size=32",
    "data.batch_size=4",
    "data.num_workers=0",
    "trainer.max_epochs=1",
    "trainer.accelerator=cpu",
    "trainer.log_every_n_steps=1",
    "trainer.enable_progress_bar=false",
    "~callbacks.rich_progress_bar",
)


ALL = frozenset({"*"})
FAST_TESTS: dict[str, frozenset[str]] = {
    # Pure functions and shapes.
    "test_data_elastic.py": ALL,
    "test_data_normalization.py": ALL,
    "test_data_splits.py": ALL,
    "test_data_volumes.py": ALL,
    "test_inference_io.py": ALL,
    "test_inference_tiling.py": ALL,
    "test_inference_tta.py": ALL,
    "test_inference_windows.py": ALL,
    "test_models.py": ALL,
    "test_resnet_unet.py": ALL,
    "test_size_planner.py": ALL,
    "test_synthetic.py": ALL,
    "test_visualization_instances.py": ALL,
    # Metrics and losses.
    "test_em_metrics.py": ALL,
    "test_instance_scores.py": ALL,
    "test_loss_ignore_index.py": ALL,
    "test_losses.py": ALL,
    "test_mean_iou.py": ALL,
    "test_weight_map.py": ALL,
    # Benchmark page and sweep files.
    "test_benchmark_scripts.py": ALL,
    "test_bench_quality.py": ALL,
    "test_wandb_sweeps.py": frozenset(
        {
            "test_sweep_folder_has_grid_random_and_bayes_examples",
            "test_agent_command_is_plain_hydra_overrides",
        }
    ),
    # Config composition.
    "test_experiments.py": frozenset(
        {
            "test_experiment_composes_and_checks",
            "test_unet_paper_recipe",
            "test_resnet34_recipe",
            "test_synthetic_quick_takes_any_model",
            "test_distributed_trainers_inherit_default",
            "test_slurm_launcher_follows_the_trainer",
            "test_optuna_search_follows_the_monitor",
        }
    ),
    "test_experiments_config_errors.py": frozenset(
        {
            "test_check_config_names_the_key",
            "test_literal_choices_are_listed",
            "test_default_config_passes",
        }
    ),
}
"""The inner loop, ``pytest -m fast``: test module -> its fast tests (``ALL``: every one).

With ``-m fast`` the other modules are not even imported. Keep the selection under two
minutes on two cores: no training, no subprocesses, no export runtimes.
"""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "fast: the inner loop (make test-fast): pure functions, shapes, metrics, losses and "
        "config composition",
    )


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """With ``-m fast`` (or ``-m "fast and ..."``), skip modules that hold no fast test."""
    selection = config.getoption("markexpr", "").split(" and ")
    if selection[0].strip() != "fast" or not collection_path.name.startswith("test_"):
        return None
    if collection_path.suffix == ".py" and collection_path.name not in FAST_TESTS:
        return True
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests listed in :data:`FAST_TESTS` as ``fast`` (unless they are ``slow``)."""
    for item in items:
        chosen = FAST_TESTS.get(item.path.name)
        if chosen is None or item.get_closest_marker("slow"):
            continue
        if chosen is ALL or getattr(item, "originalname", item.name) in chosen:
            item.add_marker(pytest.mark.fast)


def train_command(args: Sequence[str]) -> list[str]:
    """``python train.py ARGS`` with this interpreter."""
    return [sys.executable, str(ROOT / "train.py"), *args]


def command_env() -> dict[str, str]:
    """The environment of command-line tests: W&B offline, unbuffered output, one-line errors."""
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONUNBUFFERED": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    return env


def run_train(args: Sequence[str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run ``python train.py ARGS`` in ``cwd`` and capture its output."""
    return subprocess.run(
        train_command(args),
        cwd=cwd,
        env=command_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def data_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One synthetic-data cache for the whole test session."""
    return tmp_path_factory.mktemp("cache")


def compose_train(
    folder: Path, data_cache: Path, overrides: Sequence[str] = (), tiny: bool = True
) -> DictConfig:
    """``train.yaml`` composed with tiny settings (``tiny``), writing into ``folder``."""
    GlobalHydra.instance().clear()
    run_dir = folder / "run"
    paths = [
        f"paths.root_dir={folder}",
        f"paths.cache_dir={data_cache}",
        f"paths.output_dir={run_dir}",
        f"hydra.run.dir={run_dir}",
    ]
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[*(TINY_OVERRIDES if tiny else ()), *paths, *overrides],
            return_hydra_config=True,
        )
    HydraConfig.instance().set_config(cfg)
    return cfg


@pytest.fixture
def make_config(tmp_path: Path, data_cache: Path) -> Callable[..., DictConfig]:
    """Compose ``train.yaml`` with tiny settings, writing into ``tmp_path``."""

    def _make(overrides: Sequence[str] = (), tiny: bool = True) -> DictConfig:
        return compose_train(tmp_path, data_cache, overrides, tiny)

    yield _make
    GlobalHydra.instance().clear()


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory, data_cache: Path) -> dict[str, Any]:
    """The metrics of one tiny training run, shared by the tests that need a trained model.

    An attention U-Net trained one epoch on synthetic nuclei (``experiment=synthetic_quick``);
    ``ckpt_path`` is its best checkpoint. Tests may add files to the run's folder but must
    not change what is there.
    """
    from unetlab.train import train

    folder = tmp_path_factory.mktemp("trained")
    metrics, _ = train(
        compose_train(folder, data_cache, ["experiment=synthetic_quick", "model=attention_unet"])
    )
    GlobalHydra.instance().clear()
    return metrics
