"""Confusion-matrix figure after each validation epoch."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import matplotlib.pyplot as plt
from lightning.pytorch.loggers import WandbLogger

from unetlab.lightning_module import UNetModule
from unetlab.visualization.confusion_matrix import plot_confusion_matrix


class ConfusionMatrixFigure(L.Callback):
    """Draws the validation confusion matrix to ``<dirpath>/val_epoch_<n>.png`` and W&B.

    Args:
        dirpath: Folder for the pictures.
    """

    def __init__(self, dirpath: str | Path) -> None:
        self.dirpath = Path(dirpath)

    def on_validation_end(self, trainer: L.Trainer, pl_module: UNetModule) -> None:
        results = pl_module.last_val_results
        if trainer.sanity_checking or not results or not trainer.is_global_zero:
            return
        figure = plot_confusion_matrix(results["confusion_matrix"].cpu(), pl_module.class_names)
        self.dirpath.mkdir(parents=True, exist_ok=True)
        figure.savefig(self.dirpath / f"val_epoch_{trainer.current_epoch:03d}.png", dpi=80)
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                import wandb

                logger.experiment.log(
                    {
                        "val/confusion_matrix": wandb.Image(figure),
                        "trainer/global_step": trainer.global_step,
                    }
                )
        plt.close(figure)
