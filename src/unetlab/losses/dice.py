"""Soft Dice loss computed over the whole batch."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from unetlab.losses.base import SegmentationLoss


class DiceLoss(SegmentationLoss):
    """Soft Dice loss, one Dice per class over the whole batch, averaged over classes.

    For class ``c`` with softmax probabilities ``p`` and one-hot target ``g`` summed over
    the batch and all pixels (ignored pixels left out)::

        dice_c = (2 sum(p g) + smooth) / (sum(p) + sum(g) + smooth)

    and the loss is ``mean_c (1 - dice_c)``. Classes empty in the batch are handled, not
    dropped: with ``sum(g) = 0`` the term is ``1 - smooth / (sum(p) + smooth)``, which is 0
    when the network predicts (almost) none of the class and close to 1 as soon as it
    predicts some, so false positives on an absent class are penalised. Because the sums
    run over the whole batch, a class is "empty" only if no image of the batch has it;
    ``DiceCELoss`` adds cross-entropy for a gradient that does not flatten out there.

    Args:
        include_background: If False, class 0 is left out of the mean.
        smooth: Added to numerator and denominator; keeps empty-empty at loss 0.
        ignore_index: Target value whose pixels do not contribute.
    """

    def __init__(
        self, include_background: bool = True, smooth: float = 1e-5, ignore_index: int = -100
    ) -> None:
        super().__init__()
        if smooth <= 0:
            raise ValueError(f"smooth={smooth} must be > 0 so that empty classes are defined")
        self.include_background = include_background
        self.smooth = smooth
        self.ignore_index = ignore_index

    def forward(self, logits: Tensor, target: Tensor, weight_map: Tensor | None = None) -> Tensor:
        """Batch-level soft Dice loss; ``weight_map`` is not used.

        Args:
            logits: ``(N, C, *spatial)`` raw scores.
            target: ``(N, *spatial)`` class indices.
            weight_map: Ignored.

        Returns:
            Scalar loss.
        """
        self.check_inputs(logits, target)
        return self.per_class(logits, target).mean()

    def per_class(self, logits: Tensor, target: Tensor) -> Tensor:
        """``1 - dice_c`` for each class that enters the mean.

        Args:
            logits: ``(N, C, *spatial)`` raw scores.
            target: ``(N, *spatial)`` class indices.

        Returns:
            ``(C,)`` or ``(C - 1,)`` without background.
        """
        num_classes = logits.shape[1]
        target = target.long()
        valid = (target != self.ignore_index).unsqueeze(1)
        probs = logits.float().softmax(dim=1) * valid
        one_hot = F.one_hot(torch.where(valid.squeeze(1), target, 0), num_classes)
        one_hot = one_hot.movedim(-1, 1).to(probs.dtype) * valid
        dims = (0, *range(2, logits.ndim))
        intersection = (probs * one_hot).sum(dims)
        denominator = probs.sum(dims) + one_hot.sum(dims)
        dice = (2 * intersection + self.smooth) / (denominator + self.smooth)
        loss = 1 - dice
        return loss if self.include_background else loss[1:]
