"""Conventions of label images shared by data, losses, metrics and export.

Kept free of the heavier packages so that any of them can import it.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def default_class_names(num_classes: int) -> list[str]:
    """The names of classes nobody named: ``class_0``, ``class_1``, ...

    They name the per-class metrics (``val/iou/class_1``) and the outputs of exported models.
    """
    return [f"class_{i}" for i in range(num_classes)]


def instances_from_binary(mask_binary: np.ndarray) -> np.ndarray:
    """Label the connected components of a binary mask (4-connectivity in 2-D).

    Args:
        mask_binary: Array whose non-zero pixels are foreground.

    Returns:
        int32 label image, 0 = background, objects numbered from 1.
    """
    labels, _ = ndimage.label(np.asarray(mask_binary) > 0)
    return labels.astype(np.int32)
