"""Shared input checks for the segmentation losses."""

from __future__ import annotations

from torch import Tensor, nn


class SegmentationLoss(nn.Module):
    """Base class: ``forward(logits, target, weight_map=None) -> scalar``.

    Subclasses set ``requires_weight_map`` to True when they need the per-pixel weight
    map that the data pipeline computes and caches.
    """

    requires_weight_map: bool = False

    @staticmethod
    def check_inputs(logits: Tensor, target: Tensor, weight_map: Tensor | None = None) -> None:
        """Raise a ValueError that says what shapes are expected.

        Args:
            logits: ``(N, C, *spatial)`` raw scores, ``C >= 2``.
            target: ``(N, *spatial)`` integer class indices.
            weight_map: Optional ``(N, *spatial)`` per-pixel weights.
        """
        if logits.ndim < 3 or logits.shape[1] < 2:
            raise ValueError(
                f"logits must be (N, C, *spatial) with C >= 2, got shape {tuple(logits.shape)}; "
                "binary segmentation uses 2 output channels (background, foreground)."
            )
        if target.shape != logits.shape[:1] + logits.shape[2:]:
            raise ValueError(
                f"target shape {tuple(target.shape)} does not match logits shape "
                f"{tuple(logits.shape)}; expected (N, *spatial) = "
                f"{tuple(logits.shape[:1] + logits.shape[2:])}."
            )
        if target.is_floating_point():
            raise ValueError(
                f"target must hold integer class indices, got dtype {target.dtype}; "
                "convert it with .long()."
            )
        if weight_map is not None and weight_map.shape != target.shape:
            raise ValueError(
                f"weight_map shape {tuple(weight_map.shape)} does not match target shape "
                f"{tuple(target.shape)}."
            )
