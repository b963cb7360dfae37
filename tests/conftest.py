"""Shared fixtures: the training config composed once per test and shrunk to seconds."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

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


@pytest.fixture
def make_config(tmp_path: Path, data_cache: Path) -> Callable[..., DictConfig]:
    """Compose ``train.yaml`` with tiny settings, writing into ``tmp_path``."""

    def _make(overrides: Sequence[str] = (), tiny: bool = True) -> DictConfig:
        GlobalHydra.instance().clear()
        run_dir = tmp_path / "run"
        paths = [
            f"paths.root_dir={tmp_path}",
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

    yield _make
    GlobalHydra.instance().clear()
