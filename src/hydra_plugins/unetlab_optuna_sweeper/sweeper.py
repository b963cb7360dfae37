"""``OptunaSweeper``, the Hydra plugin; the work is done in ``_ask_tell``.

Hydra imports every plugin module at start-up, so this one imports Optuna only when a sweep
is set up.
"""

from __future__ import annotations

from typing import Any

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class OptunaSweeper(Sweeper):
    """Hydra sweeper over Optuna's ask and tell; its arguments: ``config.OptunaSweeperConf``."""

    def __init__(self, **options: Any) -> None:
        from hydra_plugins.unetlab_optuna_sweeper._ask_tell import AskTellSweep

        self.sweep_runner = AskTellSweep(**options)

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.sweep_runner.setup(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> None:
        self.sweep_runner.sweep(arguments)
