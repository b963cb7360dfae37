"""Weighted sum of a loss over the several outputs of a deeply supervised network."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn


class DeepSupervisionLoss(nn.Module):
    """Apply ``loss`` to every output of a network that returns several and sum.

    The outputs are ordered from the coarsest auxiliary head to the final output, which
    is the *last* element. Default weights halve per level away from the final output
    (``..., 1/4, 1/2, 1``) and are normalised to sum to 1; given weights are normalised
    the same way. Outputs smaller than the target are upsampled to it (bilinear in 2-D,
    trilinear in 3-D) before the loss. A plain tensor goes straight to ``loss``.

    Args:
        loss: Inner loss with the ``(logits, target, weight_map)`` signature.
        weights: One non-negative weight per output, final output last; None for halving.
    """

    def __init__(self, loss: nn.Module, weights: Sequence[float] | None = None) -> None:
        super().__init__()
        if weights is not None and (any(w < 0 for w in weights) or not any(w > 0 for w in weights)):
            raise ValueError(f"weights={list(weights)} must be non-negative with a positive sum")
        self.loss = loss
        self.weights = None if weights is None else [float(w) for w in weights]

    @property
    def requires_weight_map(self) -> bool:
        """Whether the inner loss needs per-pixel weight maps."""
        return bool(getattr(self.loss, "requires_weight_map", False))

    def make_weight_map(self, instances: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """The inner loss's weight map for one image (see ``requires_weight_map``).

        Args:
            instances: Instance labels or binary/class mask of one image.
            mask: Class mask of the image.

        Returns:
            float32 weight map shaped like ``instances``.
        """
        if not self.requires_weight_map:
            raise AttributeError(f"{type(self.loss).__name__} does not use weight maps")
        return self.loss.make_weight_map(instances, mask)

    def level_weights(self, num_outputs: int) -> list[float]:
        """Normalised weight of each output, final output last.

        Args:
            num_outputs: Number of outputs of the network.

        Returns:
            ``num_outputs`` weights summing to 1.
        """
        if self.weights is None:
            raw = [0.5 ** (num_outputs - 1 - i) for i in range(num_outputs)]
        elif len(self.weights) != num_outputs:
            raise ValueError(
                f"the network returned {num_outputs} outputs but {len(self.weights)} "
                f"deep-supervision weights were given ({self.weights})."
            )
        else:
            raw = self.weights
        total = sum(raw)
        return [w / total for w in raw]

    def forward(
        self,
        logits: Tensor | Sequence[Tensor],
        target: Tensor,
        weight_map: Tensor | None = None,
    ) -> Tensor:
        """Weighted sum of the inner loss over the outputs.

        Args:
            logits: One ``(N, C, *spatial)`` tensor, or a list/tuple of them.
            target: ``(N, *spatial)`` class indices at full resolution.
            weight_map: Optional ``(N, *spatial)`` weights at full resolution.

        Returns:
            Scalar loss.
        """
        if isinstance(logits, Tensor):
            return self.loss(logits, target, weight_map)
        outputs = list(logits)
        if not outputs:
            raise ValueError("deep supervision got an empty list of outputs")
        total = torch.zeros((), device=target.device)
        for weight, output in zip(self.level_weights(len(outputs)), outputs, strict=True):
            if weight == 0:
                continue
            total = total + weight * self.loss(_resize_to(output, target), target, weight_map)
        return total


def _resize_to(logits: Tensor, target: Tensor) -> Tensor:
    spatial = target.shape[1:]
    if logits.shape[2:] == spatial:
        return logits
    mode = {1: "linear", 2: "bilinear", 3: "trilinear"}.get(len(spatial))
    if mode is None:
        raise ValueError(f"cannot resize outputs with {len(spatial)} spatial dimensions")
    return F.interpolate(logits, size=tuple(spatial), mode=mode, align_corners=False)
