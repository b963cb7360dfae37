"""Weighted sum of soft Dice and cross-entropy."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from unetlab.losses.base import SegmentationLoss
from unetlab.losses.cross_entropy import CrossEntropyLoss
from unetlab.losses.dice import DiceLoss


class DiceCELoss(SegmentationLoss):
    """``dice_weight * DiceLoss + ce_weight * CrossEntropyLoss``.

    Args:
        dice_weight: Factor of the Dice term.
        ce_weight: Factor of the cross-entropy term.
        class_weights: Per-class weights of the cross-entropy term.
        include_background: Whether class 0 enters the Dice mean.
        smooth: Smoothing of the Dice term.
        ignore_index: Target value whose pixels do not contribute to either term.
        label_smoothing: Label smoothing of the cross-entropy term.
    """

    def __init__(
        self,
        dice_weight: float = 1.0,
        ce_weight: float = 1.0,
        class_weights: Sequence[float] | None = None,
        include_background: bool = True,
        smooth: float = 1e-5,
        ignore_index: int = -100,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        if dice_weight < 0 or ce_weight < 0:
            raise ValueError(
                f"dice_weight={dice_weight} and ce_weight={ce_weight} must be non-negative"
            )
        self.dice_weight = dice_weight
        self.ce_weight = ce_weight
        self.ignore_index = ignore_index
        self.dice = DiceLoss(include_background, smooth, ignore_index)
        self.cross_entropy = CrossEntropyLoss(class_weights, ignore_index, label_smoothing)

    def forward(self, logits: Tensor, target: Tensor, weight_map: Tensor | None = None) -> Tensor:
        """Weighted sum of both terms; ``weight_map`` is not used.

        Args:
            logits: ``(N, C, *spatial)`` raw scores.
            target: ``(N, *spatial)`` class indices.
            weight_map: Ignored.

        Returns:
            Scalar loss.
        """
        return self.dice_weight * self.dice(logits, target) + self.ce_weight * self.cross_entropy(
            logits, target
        )
