"""Pictures of predictions on a fixed set of validation and test images."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import lightning as L
import matplotlib.pyplot as plt
import numpy as np
import torch
from lightning.pytorch.loggers import WandbLogger
from torch import Tensor

from unetlab.lightning_module import UNetModule
from unetlab.models.blocks import center_crop_like
from unetlab.visualization.predictions import plot_predictions


class PredictionImages(L.Callback):
    """Saves image | truth | prediction grids as PNG (and to W&B when that logger is on).

    After each validation epoch the first ``num_images`` validation images are drawn to
    ``<dirpath>/val_epoch_<n>.png``; after testing (with the best checkpoint) the first test
    images are drawn to ``<dirpath>/../predictions.png``. Volumes are drawn by their middle
    z slice.

    Args:
        dirpath: Folder for the per-epoch pictures.
        num_images: How many images per picture.
        every_n_epochs: Draw validation pictures every this many epochs.
    """

    def __init__(self, dirpath: str | Path, num_images: int = 4, every_n_epochs: int = 1) -> None:
        self.dirpath = Path(dirpath)
        self.num_images = num_images
        self.every_n_epochs = every_n_epochs
        self.final_path = self.dirpath.parent / "predictions.png"

    def _collect(self, module: UNetModule, loader) -> dict[str, list]:
        collected: dict[str, list] = {"image": [], "mask": [], "prediction": [], "name": []}
        for image, mask, logits, names in predicted_batches(module, loader):
            image, mask, prediction, names = middle_slices(image, mask, logits.argmax(1), names)
            collected["image"] += list(image.numpy())
            collected["mask"] += list(mask.numpy())
            collected["prediction"] += list(prediction.numpy())
            collected["name"] += names
            if len(collected["name"]) >= self.num_images:
                break
        return {key: values[: self.num_images] for key, values in collected.items()}

    def _draw(
        self, trainer: L.Trainer, module: UNetModule, loader, path: Path, key: str, title: str
    ) -> None:
        if not trainer.is_global_zero:
            return
        items = self._collect(module, loader)
        figure = plot_predictions(
            items["image"],
            items["mask"],
            items["prediction"],
            items["name"],
            num_classes=len(module.class_names),
            title=title,
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=80)
        plt.close(figure)
        self._log_wandb(trainer, module, items, key)

    def _log_wandb(self, trainer: L.Trainer, module: UNetModule, items: dict, key: str) -> None:
        loggers = [lg for lg in trainer.loggers if isinstance(lg, WandbLogger)]
        if not loggers:
            return
        media = [
            wandb_segmentation_image(image, truth, pred, module.class_names, name)
            for image, truth, pred, name in zip(
                items["image"], items["mask"], items["prediction"], items["name"], strict=True
            )
        ]
        for logger in loggers:
            logger.experiment.log(
                {f"{key}/predictions": media, "trainer/global_step": trainer.global_step}
            )

    def on_validation_end(self, trainer: L.Trainer, pl_module: UNetModule) -> None:
        if trainer.sanity_checking or (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        path = self.dirpath / f"val_epoch_{trainer.current_epoch:03d}.png"
        title = f"validation, epoch {trainer.current_epoch}"
        self._draw(trainer, pl_module, trainer.val_dataloaders, path, "val", title)

    def on_test_end(self, trainer: L.Trainer, pl_module: UNetModule) -> None:
        title = "test images, tested checkpoint"
        self._draw(trainer, pl_module, trainer.test_dataloaders, self.final_path, "test", title)


def predicted_batches(
    module: UNetModule, loader: Iterable[dict[str, Any]]
) -> Iterator[tuple[Tensor, Tensor, Tensor, list[str]]]:
    """``(image, mask, logits, names)`` of each batch, on the CPU, in evaluation mode.

    Image and mask are cropped to the logits (valid-padding networks predict less).
    """
    was_training = module.training
    module.eval()
    try:
        for batch in loader:
            with torch.no_grad():
                logits = module(batch["image"].to(module.device)).float().cpu()
            image = center_crop_like(batch["image"], logits)
            mask = center_crop_like(batch["mask"], logits)
            yield image, mask, logits, list(batch["name"])
    finally:
        module.train(was_training)


def middle_slices(
    image: Tensor, mask: Tensor, prediction: Tensor, names: list[str]
) -> tuple[Tensor, Tensor, Tensor, list[str]]:
    """Volumes ``(N, C, D, H, W)`` reduced to their middle z slice (2D batches unchanged)."""
    if image.dim() < 5:
        return image, mask, prediction, names
    middle = image.shape[2] // 2
    names = [f"{name} (z={middle})" for name in names]
    return image[:, :, middle], mask[:, middle], prediction[:, middle], names


def wandb_segmentation_image(
    image: np.ndarray, truth: np.ndarray, prediction: np.ndarray, class_names: list[str], name: str
) -> Any:
    """A ``wandb.Image`` of a ``(C, H, W)`` image with truth and prediction as mask layers."""
    import wandb

    labels = dict(enumerate(class_names))
    return wandb.Image(
        np.moveaxis(image, 0, -1) if image.shape[0] == 3 else image[0],
        masks={
            "ground_truth": {"mask_data": truth.astype(np.uint8), "class_labels": labels},
            "prediction": {"mask_data": prediction.astype(np.uint8), "class_labels": labels},
        },
        caption=name,
    )
