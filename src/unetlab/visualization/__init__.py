"""Figures for logging and documentation."""

from __future__ import annotations

from unetlab.visualization.confusion_matrix import plot_confusion_matrix
from unetlab.visualization.instances import plot_instance_errors
from unetlab.visualization.weight_map import plot_weight_map

__all__ = ["plot_confusion_matrix", "plot_instance_errors", "plot_weight_map"]
