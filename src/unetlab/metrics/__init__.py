"""Segmentation metrics: dataset-level mean IoU, the ISBI 2012 EM scores, object-level scores."""

from __future__ import annotations

from unetlab.metrics.em_metrics import (
    info_f_score,
    pixel_error,
    rand_error,
    rand_f_score,
    thin_membranes,
)
from unetlab.metrics.instances import IOU_THRESHOLDS, InstanceScores, instance_scores
from unetlab.metrics.mean_iou import MeanIoU, default_class_names
from unetlab.metrics.predicted_instances import predicted_instances

__all__ = [
    "IOU_THRESHOLDS",
    "InstanceScores",
    "MeanIoU",
    "default_class_names",
    "info_f_score",
    "instance_scores",
    "pixel_error",
    "predicted_instances",
    "rand_error",
    "rand_f_score",
    "thin_membranes",
]
