"""Report a trial's monitored metric to Optuna and stop the trial when the pruner says so."""

from __future__ import annotations

import logging

import lightning as L
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.trainer.states import TrainerFn

log = logging.getLogger(__name__)


class OptunaPruning(L.Callback):
    """In a trial of ``hparams_search=optuna``, report ``monitor`` after each validation.

    The value goes to the trial as the intermediate value of the epoch; when the study's
    pruner (``hydra/sweeper/pruner``) prunes the trial, training stops at the end of the epoch
    and the sweeper records the trial as pruned. Outside such a trial it does nothing.

    Args:
        monitor: The logged metric to report, e.g. ``val/miou``.
    """

    def __init__(self, monitor: str) -> None:
        self.monitor = monitor
        self.trial = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit" or not trainer.is_global_zero or not HydraConfig.initialized():
            return
        from hydra_plugins.unetlab_optuna_sweeper._ask_tell import running_trial

        self.trial = running_trial(HydraConfig.get())

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING:
            return
        prune = False
        value = trainer.callback_metrics.get(self.monitor)
        if self.trial is not None and value is not None:
            from hydra_plugins.unetlab_optuna_sweeper._ask_tell import PRUNED

            self.trial.report(float(value), step=trainer.current_epoch)
            prune = self.trial.should_prune()
            if prune:
                self.trial.set_user_attr(PRUNED, True)
                log.info(
                    "Trial %d pruned after epoch %d (%s=%.4f)",
                    self.trial.number,
                    trainer.current_epoch,
                    self.monitor,
                    float(value),
                )
        if trainer.strategy.broadcast(prune, src=0):
            trainer.should_stop = True
