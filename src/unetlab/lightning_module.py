"""``UNetModule``: the LightningModule that trains and evaluates any segmentation network."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn
from torchmetrics import MaxMetric, MeanMetric

from unetlab.budget_schedule import BudgetSchedule, budget_progress, budget_shape
from unetlab.checkpoint import CONFIG_KEY, DATA_KEY
from unetlab.instance_logging import InstanceScoreLogging
from unetlab.labels import default_class_names
from unetlab.metrics import (
    MeanIoU,
    info_f_score,
    pixel_error,
    predicted_instances,
    rand_f_score,
)
from unetlab.models.blocks import center_crop_like

OptimizerFactory = Callable[..., torch.optim.Optimizer]
SchedulerFactory = Callable[..., Any]


class UNetModule(L.LightningModule):
    """Trains a segmentation network with a configurable loss, optimizer and schedule.

    Logs ``train/loss``, ``val/loss``, ``val/miou``, ``val/miou_best``, ``val/iou/<class>``,
    ``val/dice/<class>``, ``val/pixel_accuracy`` and the same under ``test/``; for data with
    instance labels also ``val/instances/f1_50``, ``val/instances/dsb_score``,
    ``val/instances/panoptic_quality`` (and ``test/...``) of the instances that
    ``predicted_instances(logits)`` finds (connected components of the foreground; the run
    builder assigns what prediction writes: the watershed of instance-target models, the
    components of each class, without small ones, of class-map models).

    Args:
        net: The network (a plain ``nn.Module`` returning logits, or a list of logits for deep
            supervision in training mode).
        loss: Loss with signature ``loss(logits, target, weight_map=None)``.
        optimizer: Partial optimizer, called with the parameters.
        scheduler: Partial LR scheduler, called with the optimizer, or ``None``.
        num_classes: Number of classes.
        class_names: One name per class, used in metric names.
        monitor: Metric the plateau scheduler watches (same as checkpointing).
        ignore_index: Label value excluded from the metrics.
        run_config: The run's resolved config (plain dict), stored in every checkpoint so the
            model can be rebuilt from it alone.
        em_membrane_class: For EM membrane data, the class index of membrane: test runs then
            also report the ISBI 2012 challenge's scores, averaged over the test images:
            ``test/pixel_error``, ``test/v_rand`` and ``test/v_info`` (foreground-restricted
            scores after membrane thinning, as the challenge ranks) and
            ``test/v_rand_unthinned`` (the same Rand score of the raw prediction).
    """

    def __init__(
        self,
        net: nn.Module,
        loss: nn.Module,
        optimizer: OptimizerFactory,
        scheduler: SchedulerFactory | None = None,
        num_classes: int = 2,
        class_names: Sequence[str] | None = None,
        monitor: str = "val/miou",
        ignore_index: int | None = None,
        run_config: dict | None = None,
        em_membrane_class: int | None = None,
    ) -> None:
        super().__init__()
        self.net = net
        self.loss = loss
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler or None
        self.monitor = monitor
        self.run_config = run_config
        self.class_names = list(class_names or default_class_names(num_classes))
        metric_args = {
            "num_classes": num_classes,
            "ignore_index": ignore_index,
            "class_names": self.class_names,
        }
        self.val_iou = MeanIoU(**metric_args)
        self.test_iou = MeanIoU(**metric_args)
        self.train_loss = MeanMetric()
        self.val_loss = MeanMetric()
        self.test_loss = MeanMetric()
        self.val_miou_best = MaxMetric()
        # Saved in checkpoints, so a resumed run keeps the best value of the epochs before.
        self.val_miou_best.persistent(True)
        self.em_membrane_class = em_membrane_class
        self.test_em_scores = nn.ModuleDict(
            {name: MeanMetric() for name in ("pixel_error", "v_rand", "v_info", "v_rand_unthinned")}
        )
        self.last_val_results: dict[str, Tensor] = {}
        self.last_test_results: dict[str, Tensor] = {}
        self.instance_scores = InstanceScoreLogging()
        self.predicted_instances: Callable[[Tensor], Tensor] = predicted_instances

    def forward(self, x: Tensor) -> Tensor:
        out = self.net(x)
        return out[-1] if isinstance(out, (list, tuple)) else out

    def _step(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        outputs = self.net(batch["image"])
        final = outputs[-1] if isinstance(outputs, (list, tuple)) else outputs
        target = center_crop_like(batch["mask"], final)
        weight_map = batch.get("weight_map")
        if weight_map is not None:
            weight_map = center_crop_like(weight_map, final)
        loss = self.loss(outputs, target, weight_map)
        return loss, final, target

    def on_train_start(self) -> None:
        self.val_iou.reset()
        self.val_loss.reset()

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss, _, _ = self._step(batch)
        self.train_loss(loss.detach())
        self.log("train/loss", self.train_loss, on_step=True, on_epoch=True, prog_bar=True)
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        loss, logits, target = self._step(batch)
        self.val_loss(loss)
        self.val_iou.update(logits, target)
        self.log("val/loss", self.val_loss, on_epoch=True, prog_bar=True)
        self._update_instance_scores("val", batch, logits, target)

    def on_validation_epoch_end(self) -> None:
        results = self.val_iou.compute()
        self.val_iou.reset()
        self.last_val_results = results
        self._log_results("val", results)
        self.instance_scores.log(self, "val")
        if not self.trainer.sanity_checking:
            self.val_miou_best(results["miou"])
            self.log("val/miou_best", self.val_miou_best.compute(), prog_bar=True)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> dict[str, Tensor] | None:
        loss, logits, target = self._step(batch)
        self.test_loss(loss)
        self.test_iou.update(logits, target)
        self.log("test/loss", self.test_loss, on_epoch=True)
        if self.em_membrane_class is not None:
            self._update_em_metrics(logits.argmax(1), target)
        return self._update_instance_scores("test", batch, logits, target)

    def _update_instance_scores(
        self, stage: str, batch: dict[str, Tensor], logits: Tensor, target: Tensor
    ) -> dict[str, Tensor] | None:
        """Object-level scores of a batch with instance labels; its labels for pictures."""
        if "instances" not in batch:
            return None
        ignore = self.val_iou.ignore_index
        predicted, true = self.instance_scores.update(
            stage,
            self.predicted_instances,
            logits,
            center_crop_like(batch["instances"], logits),
            None if ignore is None else target == ignore,
        )
        return {"predicted_instances": predicted, "true_instances": true}

    def _update_em_metrics(self, prediction: Tensor, target: Tensor) -> None:
        """Per-image ISBI 2012 scores on binary maps (0 = membrane).

        Each image is cropped to the bounding box of its labelled (not ignored) pixels, so
        padding that the data pipeline marked as ignored does not count.
        """
        ignore = self.val_iou.ignore_index
        for predicted, true in zip(prediction.cpu(), target.cpu(), strict=True):
            if ignore is not None:
                rows = torch.nonzero((true != ignore).any(1)).flatten()
                cols = torch.nonzero((true != ignore).any(0)).flatten()
                if rows.numel() == 0:
                    continue
                box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
                predicted, true = predicted[box], true[box]
            cells_predicted = (predicted != self.em_membrane_class).numpy()
            cells_true = (true != self.em_membrane_class).numpy()
            scores = {
                "pixel_error": pixel_error(cells_predicted, cells_true),
                "v_rand": rand_f_score(cells_predicted, cells_true),
                "v_info": info_f_score(cells_predicted, cells_true),
                "v_rand_unthinned": rand_f_score(cells_predicted, cells_true, thinning=False),
            }
            for name, value in scores.items():
                if not math.isnan(value):
                    self.test_em_scores[name].update(value)
        for name, metric in self.test_em_scores.items():
            self.log(f"test/{name}", metric, on_epoch=True)

    def on_test_epoch_end(self) -> None:
        results = self.test_iou.compute()
        self.test_iou.reset()
        self.last_test_results = results
        self._log_results("test", results)
        self.instance_scores.log(self, "test")

    def _log_results(self, stage: str, results: dict[str, Tensor]) -> None:
        self.log(f"{stage}/miou", results["miou"], prog_bar=True)
        self.log(f"{stage}/pixel_accuracy", results["pixel_accuracy"])
        for name, iou, dice in zip(self.class_names, results["iou"], results["dice"], strict=True):
            if not torch.isnan(iou):
                self.log(f"{stage}/iou/{name}", iou)
                self.log(f"{stage}/dice/{name}", dice)

    def configure_optimizers(self) -> dict[str, Any]:
        """The optimizer and its schedule.

        Runs limited by ``trainer.max_epochs`` use the configured scheduler as it is. Under a
        time budget (``trainer.max_time``), or with ``max_epochs=-1``, cosine, poly and
        one-cycle schedules follow the fraction of the budget spent instead, updated every
        step (see :mod:`unetlab.budget_schedule`).
        """
        trainable = [p for p in self.parameters() if p.requires_grad]
        optimizer = self.optimizer_factory(params=trainable)
        if self.scheduler_factory is None:
            return {"optimizer": optimizer}
        shape = budget_shape(self.scheduler_factory)
        progress = budget_progress(self.trainer) if shape is not None else None
        if shape is not None and progress is not None:
            scheduler = BudgetSchedule(optimizer, shape, progress)
        else:
            keywords = getattr(self.scheduler_factory, "keywords", {})
            extra = {}
            if "steps_per_epoch" in keywords and keywords["steps_per_epoch"] is None:
                extra["steps_per_epoch"] = math.ceil(
                    self.trainer.estimated_stepping_batches / max(1, self.trainer.max_epochs)
                )
            scheduler = self.scheduler_factory(optimizer=optimizer, **extra)
        per_step = isinstance(scheduler, (torch.optim.lr_scheduler.OneCycleLR, BudgetSchedule))
        return {
            "optimizer": optimizer,
            "lr_scheduler": {
                "scheduler": scheduler,
                "monitor": self.monitor,
                "interval": "step" if per_step else "epoch",
            },
        }

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.run_config is not None:
            checkpoint[CONFIG_KEY] = self.run_config
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is not None:
            checkpoint[DATA_KEY] = {
                "mean": list(datamodule.mean or []),
                "std": list(datamodule.std or []),
                "class_names": self.class_names,
            }
