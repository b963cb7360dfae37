"""Multi-class focal loss (Lin et al., 2017)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from unetlab.losses.base import SegmentationLoss


class FocalLoss(SegmentationLoss):
    """``-alpha[y] (1 - p_y)^gamma log p_y``, averaged over non-ignored pixels.

    ``gamma = 0`` without ``alpha`` is plain cross-entropy. With ``alpha`` the sum is
    divided by the number of pixels (as in the focal-loss paper), not by the sum of the
    weights as ``CrossEntropyLoss`` does.

    Args:
        gamma: Focusing parameter, >= 0.
        alpha: One weight per class, or None.
        ignore_index: Target value whose pixels do not contribute.
    """

    def __init__(
        self,
        gamma: float = 2.0,
        alpha: Sequence[float] | None = None,
        ignore_index: int = -100,
    ) -> None:
        super().__init__()
        if gamma < 0:
            raise ValueError(f"gamma={gamma} must be >= 0")
        self.gamma = gamma
        self.ignore_index = ignore_index
        weights = None if alpha is None else torch.as_tensor(list(alpha), dtype=torch.float32)
        self.alpha: Tensor | None
        self.register_buffer("alpha", weights, persistent=False)

    def forward(self, logits: Tensor, target: Tensor, weight_map: Tensor | None = None) -> Tensor:
        """Mean focal loss; ``weight_map`` is not used.

        Args:
            logits: ``(N, C, *spatial)`` raw scores.
            target: ``(N, *spatial)`` class indices.
            weight_map: Ignored.

        Returns:
            Scalar loss.
        """
        self.check_inputs(logits, target)
        target = target.long()
        valid = target != self.ignore_index
        safe_target = torch.where(valid, target, 0)
        log_probs = F.log_softmax(logits.float(), dim=1)
        log_p = log_probs.gather(1, safe_target.unsqueeze(1)).squeeze(1)
        loss = -((1 - log_p.exp()) ** self.gamma) * log_p
        if self.alpha is not None:
            if self.alpha.numel() != logits.shape[1]:
                raise ValueError(
                    f"alpha has {self.alpha.numel()} entries but the logits have "
                    f"{logits.shape[1]} classes; give one weight per class."
                )
            loss = loss * self.alpha.to(loss.device)[safe_target]
        return (loss * valid).sum() / valid.sum().clamp_min(1)
