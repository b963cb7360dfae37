"""The best checkpoint as a W&B model artifact at the end of training."""

from __future__ import annotations

import lightning as L

from unetlab.wandb_logger import WandbLogger


class ModelArtifact(L.Callback):
    """Uploads the best checkpoint to each ``unetlab`` W&B logger with ``log_model: true``.

    The checkpoint is the best one of the first ``ModelCheckpoint`` that monitors a metric
    (``callbacks.model_checkpoint``); see ``WandbLogger.upload_best_model``. Runs when
    training ends normally, also when a resumed run did not improve on the stored best.
    """

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        monitored = [cb for cb in trainer.checkpoint_callbacks if cb.monitor is not None]
        if not monitored:
            return
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.upload_best_model(monitored[0])
