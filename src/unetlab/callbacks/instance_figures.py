"""One picture per test image of its true and predicted objects, missed and extra marked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import matplotlib.pyplot as plt
from lightning.pytorch.loggers import WandbLogger

from unetlab.lightning_module import UNetModule
from unetlab.models.blocks import center_crop_like
from unetlab.visualization.instances import plot_instance_errors


class InstanceFigures(L.Callback):
    """Saves ``<dirpath>/<image name>.png`` for test images with instance labels.

    Uses the predicted and true instance labels that ``UNetModule.test_step`` returns for
    batches carrying ``instances``; nothing is drawn for data without them. The pictures are
    also logged to W&B (key ``test/instances``) when that logger is on.

    Args:
        dirpath: Folder of the pictures (created when the first one is drawn).
        max_images: Draw at most this many test images per process (``None``: all).
    """

    def __init__(self, dirpath: str | Path, max_images: int | None = 64) -> None:
        self.dirpath = Path(dirpath)
        self.max_images = max_images
        self.saved: list[tuple[Path, str]] = []

    def on_test_start(self, trainer: L.Trainer, pl_module: UNetModule) -> None:
        self.saved = []

    def on_test_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: UNetModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if not isinstance(outputs, dict) or "predicted_instances" not in outputs:
            return
        predicted, true = outputs["predicted_instances"], outputs["true_instances"]
        images = center_crop_like(batch["image"], predicted[:, None]).float().cpu()
        for image, true_labels, predicted_labels, name in zip(
            images, true, predicted, batch["name"], strict=True
        ):
            if self.max_images is not None and len(self.saved) >= self.max_images:
                return
            figure = plot_instance_errors(
                image.numpy(), true_labels.numpy(), predicted_labels.numpy(), name
            )
            path = self.dirpath / f"{name}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            figure.savefig(path, dpi=80)
            plt.close(figure)
            self.saved.append((path, name))

    def on_test_end(self, trainer: L.Trainer, pl_module: UNetModule) -> None:
        if not self.saved or not trainer.is_global_zero:
            return
        paths, names = zip(*self.saved, strict=True)
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image(
                    key="test/instances", images=[str(p) for p in paths], caption=list(names)
                )
