"""Object-level scores of validation and test batches that carry instance labels."""

from __future__ import annotations

import math
from collections.abc import Callable

import lightning as L
from torch import Tensor, nn

from unetlab.metrics import InstanceScores

LOGGED_SCORES = ("f1_50", "dsb_score", "panoptic_quality", "n_true", "n_pred")
"""Scores logged as ``<stage>/instances/<name>``."""

InstancePredictor = Callable[[Tensor], Tensor]


class InstanceScoreLogging(nn.Module):
    """One :class:`~unetlab.metrics.InstanceScores` per stage, updated and logged.

    Args:
        stages: Stages with their own accumulated scores.
    """

    def __init__(self, stages: tuple[str, ...] = ("val", "test")) -> None:
        super().__init__()
        self.scores = nn.ModuleDict({stage: InstanceScores() for stage in stages})

    def update(
        self,
        stage: str,
        predict: InstancePredictor,
        logits: Tensor,
        true_instances: Tensor,
        ignored: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Add a batch: instance labels predicted from ``logits`` against the true ones.

        Args:
            stage: ``val`` or ``test``.
            predict: ``predict(logits) -> (N, *spatial)`` instance labels.
            logits: Network output ``(N, C, *spatial)``.
            true_instances: True labels ``(N, *spatial)``, cropped like ``logits``.
            ignored: Pixels to leave out (padding, unlabelled); no object is predicted there.

        Returns:
            The predicted and the true labels of the batch, on the CPU.
        """
        predicted = predict(logits).cpu()
        true_instances = true_instances.cpu()
        if ignored is not None:
            predicted = predicted.masked_fill(ignored.cpu(), 0)
        self.scores[stage].update(predicted, true_instances)
        return predicted, true_instances

    def log(self, module: L.LightningModule, stage: str) -> None:
        """Log the stage's scores (when it saw instance labels) and reset them."""
        metric = self.scores[stage]
        if not metric.update_called:
            return
        scores = metric.compute()
        metric.reset()
        for name in LOGGED_SCORES:
            if not math.isnan(scores[name]):
                module.log(f"{stage}/instances/{name}", float(scores[name]))
