"""Class labels and probabilities from logits, computed a slab at a time."""

from __future__ import annotations

import numpy as np
import torch

SLAB_ELEMENTS = 1 << 22
"""Logits converted at a time, so no full-size int64 or float32 temporary is made."""


def _slabs(logits: torch.Tensor) -> range:
    """Start of every slab along the first spatial axis of ``logits`` (K, *spatial)."""
    per_row = max(1, logits[:, :1].numel())
    return range(0, logits.shape[1], max(1, SLAB_ELEMENTS // per_row))


def labels_from_logits(logits: torch.Tensor, dtype: type | np.dtype = np.uint8) -> np.ndarray:
    """Class index of every pixel: argmax over classes, or ``logit > 0`` for one class.

    Args:
        logits: (K, *spatial) logits.
        dtype: Unsigned integer type of the result.
    """
    labels = np.empty(logits.shape[1:], dtype)
    step = _slabs(logits).step
    for low in _slabs(logits):
        slab = logits[:, low : low + step]
        best = slab[0] > 0 if slab.shape[0] == 1 else slab.argmax(0)
        labels[low : low + step] = best.numpy()
    return labels


def probabilities_from_logits(logits: torch.Tensor) -> np.ndarray:
    """Per-class probabilities as float16: softmax over classes, or sigmoid for one class.

    Args:
        logits: (K, *spatial) logits.
    """
    probabilities = np.empty(tuple(logits.shape), np.float16)
    step = _slabs(logits).step
    for low in _slabs(logits):
        slab = logits[:, low : low + step]
        slab = torch.sigmoid(slab) if slab.shape[0] == 1 else torch.softmax(slab, dim=0)
        probabilities[:, low : low + step] = slab.half().numpy()
    return probabilities
