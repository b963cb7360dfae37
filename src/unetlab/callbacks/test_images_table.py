"""A W&B table of the test images with their own IoU, to find the worst predictions."""

from __future__ import annotations

import math

import lightning as L
from lightning.pytorch.loggers import WandbLogger

from unetlab.callbacks.prediction_images import (
    middle_slices,
    predicted_batches,
    wandb_segmentation_image,
)
from unetlab.lightning_module import UNetModule
from unetlab.metrics import MeanIoU


class TestImagesTable(L.Callback):
    """Logs the table ``test/images`` to W&B after testing (nothing without a W&B logger).

    One row per test image, worst first: its name, its mean IoU and per-class IoU (over the
    classes present in its truth or prediction, as ``test/miou`` for the whole set) and the
    image with the truth and the prediction as mask layers (volumes: their middle z slice;
    the scores cover the whole volume). Sort or filter the columns in the W&B table to find
    the cases that fail.

    Args:
        max_images: Score at most this many test images (``null``: all).
    """

    __test__ = False  # not a pytest class

    def __init__(self, max_images: int | None = 200) -> None:
        if max_images is not None and max_images < 1:
            raise ValueError(f"callbacks.test_images_table.max_images={max_images} must be >= 1")
        self.max_images = max_images

    def on_test_end(self, trainer: L.Trainer, pl_module: UNetModule) -> None:
        loggers = [lg for lg in trainer.loggers if isinstance(lg, WandbLogger)]
        if not loggers or not trainer.is_global_zero:
            return
        import wandb

        class_names = pl_module.class_names
        columns = ["name", "miou", *(f"iou/{name}" for name in class_names), "image"]
        table = wandb.Table(columns=columns, data=sorted(self._rows(trainer, pl_module), key=_miou))
        for logger in loggers:
            logger.experiment.log(
                {"test/images": table, "trainer/global_step": trainer.global_step}
            )

    def _rows(self, trainer: L.Trainer, module: UNetModule) -> list[list]:
        scores = MeanIoU(
            num_classes=len(module.class_names),
            ignore_index=module.test_iou.ignore_index,
            class_names=module.class_names,
        )
        rows: list[list] = []
        for image, mask, logits, names in predicted_batches(module, trainer.test_dataloaders):
            shown = middle_slices(image, mask, logits.argmax(1), names)
            for index, name in enumerate(names):
                scores.update(logits[index : index + 1], mask[index : index + 1])
                results = scores.compute()
                scores.reset()
                image_2d, truth_2d, prediction_2d = (part[index].numpy() for part in shown[:3])
                picture = wandb_segmentation_image(
                    image_2d, truth_2d, prediction_2d, module.class_names, shown[3][index]
                )
                row = [name, _number(results["miou"]), *map(_number, results["iou"]), picture]
                rows.append(row)
                if self.max_images is not None and len(rows) >= self.max_images:
                    return rows
        return rows


def _number(value) -> float | None:
    """A tensor scalar as float; ``None`` for NaN (a class absent from truth and prediction)."""
    number = float(value)
    return None if math.isnan(number) else number


def _miou(row: list) -> float:
    """Sort key: the row's mean IoU, images without any score last."""
    return math.inf if row[1] is None else row[1]
