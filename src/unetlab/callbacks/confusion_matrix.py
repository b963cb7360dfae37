"""Confusion-matrix figure (and W&B chart) after each validation epoch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import matplotlib.pyplot as plt
from lightning.pytorch.loggers import WandbLogger
from torch import Tensor

from unetlab.lightning_module import UNetModule
from unetlab.visualization.confusion_matrix import plot_confusion_matrix


class ConfusionMatrixFigure(L.Callback):
    """Draws the validation confusion matrix to ``<dirpath>/val_epoch_<n>.png`` and W&B.

    W&B receives the picture as ``val/confusion_matrix`` and, beside it, the pixel counts as
    the interactive chart ``val/confusion_matrix_chart`` (W&B's confusion-matrix panel).

    Args:
        dirpath: Folder for the pictures.
    """

    def __init__(self, dirpath: str | Path) -> None:
        self.dirpath = Path(dirpath)

    def on_validation_end(self, trainer: L.Trainer, pl_module: UNetModule) -> None:
        results = pl_module.last_val_results
        if trainer.sanity_checking or not results or not trainer.is_global_zero:
            return
        matrix = results["confusion_matrix"].cpu()
        figure = plot_confusion_matrix(matrix, pl_module.class_names)
        self.dirpath.mkdir(parents=True, exist_ok=True)
        figure.savefig(self.dirpath / f"val_epoch_{trainer.current_epoch:03d}.png", dpi=80)
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                import wandb

                logger.experiment.log(
                    {
                        "val/confusion_matrix": wandb.Image(figure),
                        "val/confusion_matrix_chart": confusion_matrix_chart(
                            matrix, pl_module.class_names
                        ),
                        "trainer/global_step": trainer.global_step,
                    }
                )
        plt.close(figure)


def confusion_matrix_chart(matrix: Tensor, class_names: list[str]) -> Any:
    """W&B's interactive confusion-matrix chart of ``(C, C)`` pixel counts (rows = truth).

    The table and panel are those of ``wandb.plot.confusion_matrix``, which would need one
    entry per pixel instead of the counts.
    """
    import wandb

    rows = [
        [truth, predicted, int(matrix[i, j])]
        for i, truth in enumerate(class_names)
        for j, predicted in enumerate(class_names)
    ]
    table = wandb.Table(columns=["Actual", "Predicted", "nPredictions"], data=rows)
    fields = {"Actual": "Actual", "Predicted": "Predicted", "nPredictions": "nPredictions"}
    return wandb.plot_table(
        "wandb/confusion_matrix/v1", table, fields, {"title": "validation confusion matrix"}
    )
