"""Cross-entropy with optional class weights."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from unetlab.losses.base import SegmentationLoss


class CrossEntropyLoss(SegmentationLoss):
    """Pixel-wise cross-entropy, averaged like ``torch.nn.functional.cross_entropy``.

    With class weights the mean is weighted: ``sum_x w[y(x)] ce(x) / sum_x w[y(x)]``
    over non-ignored pixels. A batch whose pixels are all ignored gives 0, not NaN.

    Args:
        class_weights: One weight per class, or None for equal weights.
        ignore_index: Target value whose pixels do not contribute.
        label_smoothing: Amount of label smoothing in [0, 1).
    """

    def __init__(
        self,
        class_weights: Sequence[float] | None = None,
        ignore_index: int = -100,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing={label_smoothing} must be in [0, 1)")
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing
        weights = None
        if class_weights is not None:
            weights = torch.as_tensor(list(class_weights), dtype=torch.float32)
            if weights.ndim != 1 or bool((weights < 0).any()):
                raise ValueError(
                    f"class_weights must be a list of non-negative floats, got {class_weights}"
                )
        self.class_weights: Tensor | None
        self.register_buffer("class_weights", weights, persistent=False)

    def forward(self, logits: Tensor, target: Tensor, weight_map: Tensor | None = None) -> Tensor:
        """Mean cross-entropy; ``weight_map`` is not used.

        Args:
            logits: ``(N, C, *spatial)`` raw scores.
            target: ``(N, *spatial)`` class indices.
            weight_map: Ignored.

        Returns:
            Scalar loss.
        """
        self.check_inputs(logits, target)
        return weighted_mean_cross_entropy(
            logits, target, self.class_weights, self.ignore_index, self.label_smoothing
        )


def weighted_mean_cross_entropy(
    logits: Tensor,
    target: Tensor,
    class_weights: Tensor | None,
    ignore_index: int,
    label_smoothing: float = 0.0,
) -> Tensor:
    """``F.cross_entropy(reduction="mean")`` that returns 0 when every pixel is ignored.

    Args:
        logits: ``(N, C, *spatial)`` raw scores.
        target: ``(N, *spatial)`` class indices.
        class_weights: ``(C,)`` weights or None.
        ignore_index: Target value whose pixels do not contribute.
        label_smoothing: Amount of label smoothing.

    Returns:
        Scalar loss.
    """
    num_classes = logits.shape[1]
    weight = None
    if class_weights is not None:
        if class_weights.numel() != num_classes:
            raise ValueError(
                f"class_weights has {class_weights.numel()} entries but the logits have "
                f"{num_classes} classes; give one weight per class."
            )
        weight = class_weights.to(device=logits.device, dtype=torch.float32)
    target = target.long()
    per_pixel = F.cross_entropy(
        logits.float(),
        target,
        weight=weight,
        ignore_index=ignore_index,
        reduction="none",
        label_smoothing=label_smoothing,
    )
    valid = target != ignore_index
    if weight is None:
        denominator = valid.sum().to(per_pixel.dtype)
    else:
        denominator = (weight[torch.where(valid, target, 0)] * valid).sum()
    return per_pixel.sum() / denominator.clamp_min(torch.finfo(per_pixel.dtype).tiny)
