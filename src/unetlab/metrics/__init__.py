"""Segmentation metrics: dataset-level mean IoU and the ISBI 2012 EM scores."""

from __future__ import annotations

from unetlab.metrics.em_metrics import (
    info_f_score,
    pixel_error,
    rand_error,
    rand_f_score,
    thin_membranes,
)
from unetlab.metrics.mean_iou import MeanIoU, default_class_names

__all__ = [
    "MeanIoU",
    "default_class_names",
    "info_f_score",
    "pixel_error",
    "rand_error",
    "rand_f_score",
    "thin_membranes",
]
