"""Segmentation metrics: dataset-level mean IoU and the ISBI 2012 EM metrics."""

from __future__ import annotations

from unetlab.metrics.em_metrics import pixel_error, rand_error, rand_f_score
from unetlab.metrics.mean_iou import MeanIoU, default_class_names

__all__ = ["MeanIoU", "default_class_names", "pixel_error", "rand_error", "rand_f_score"]
