"""The U-Net paper's pixel-weighted cross-entropy."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from unetlab.labels import instances_from_binary
from unetlab.losses.base import SegmentationLoss
from unetlab.losses.weight_map import border_weight_map


class WeightedCrossEntropyLoss(SegmentationLoss):
    """Cross-entropy weighted per pixel by a precomputed weight map.

    ``loss = sum_x w(x) ce(x) / n_valid_pixels``: the paper's energy (eq. 1) divided by
    the number of pixels. The map ``w`` (eq. 2: class balance plus borders between
    touching objects) is made per image by ``make_weight_map`` in the data pipeline,
    cached, and transformed together with image and mask.

    Args:
        w0: Border weight ``w0`` of the weight map.
        sigma: Border width ``sigma`` of the weight map, in pixels.
        class_balance: Whether ``w_c`` balances class frequencies (else ``w_c = 1``).
        num_classes: Number of classes of the masks.
        ignore_index: Target value whose pixels do not contribute.
    """

    requires_weight_map = True

    def __init__(
        self,
        w0: float = 10.0,
        sigma: float = 5.0,
        class_balance: bool = True,
        num_classes: int = 2,
        ignore_index: int = -100,
    ) -> None:
        super().__init__()
        if w0 < 0 or sigma <= 0:
            raise ValueError(f"need w0 >= 0 and sigma > 0, got w0={w0}, sigma={sigma}")
        self.w0 = w0
        self.sigma = sigma
        self.class_balance = class_balance
        self.num_classes = num_classes
        self.ignore_index = ignore_index

    def make_weight_map(self, instances: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """Weight map of one image for this loss's settings.

        Objects come from ``instances`` when it is an instance label image. When it is
        not — a binary map, or the class mask itself (datasets without instance labels)
        — its non-zero pixels are split into connected components, so objects must be
        separated by background to get a border between them.

        Args:
            instances: Integer label image, 0 = background, or a binary/class mask.
            mask: Class mask; defaults to ``instances > 0``.

        Returns:
            float32 array shaped like ``instances``.
        """
        instances = np.asarray(instances)
        is_class_mask = mask is not None and np.array_equal(instances, mask)
        if is_class_mask or (instances.size and instances.max() <= 1):
            instances = instances_from_binary(instances)
        return border_weight_map(
            instances,
            mask,
            w0=self.w0,
            sigma=self.sigma,
            class_weights="balanced" if self.class_balance else None,
            num_classes=self.num_classes,
        )

    def forward(self, logits: Tensor, target: Tensor, weight_map: Tensor | None = None) -> Tensor:
        """Pixel-weighted mean cross-entropy.

        Args:
            logits: ``(N, C, *spatial)`` raw scores.
            target: ``(N, *spatial)`` class indices.
            weight_map: ``(N, *spatial)`` per-pixel weights (required).

        Returns:
            Scalar loss.
        """
        if weight_map is None:
            raise ValueError(
                "loss=weighted_ce needs per-pixel weight maps; the data module must compute "
                "them with loss.make_weight_map (it does so when loss.requires_weight_map is "
                "True) and pass the batch's weight_map to the loss."
            )
        self.check_inputs(logits, target, weight_map)
        target = target.long()
        per_pixel = F.cross_entropy(
            logits.float(), target, ignore_index=self.ignore_index, reduction="none"
        )
        valid = target != self.ignore_index
        weighted = torch.where(valid, per_pixel * weight_map.float(), 0.0)
        return weighted.sum() / valid.sum().clamp_min(1)
