"""Segmentation losses; each has ``forward(logits, target, weight_map=None) -> scalar``."""

from __future__ import annotations

from unetlab.labels import instances_from_binary
from unetlab.losses.base import SegmentationLoss
from unetlab.losses.cldice import ClDiceLoss
from unetlab.losses.cross_entropy import CrossEntropyLoss
from unetlab.losses.deep_supervision import DeepSupervisionLoss
from unetlab.losses.dice import DiceLoss
from unetlab.losses.dice_ce import DiceCELoss
from unetlab.losses.focal import FocalLoss
from unetlab.losses.weight_map import (
    border_weight_map,
    class_balance_weights,
    separate_touching_instances,
)
from unetlab.losses.weighted_ce import WeightedCrossEntropyLoss

__all__ = [
    "ClDiceLoss",
    "CrossEntropyLoss",
    "DeepSupervisionLoss",
    "DiceCELoss",
    "DiceLoss",
    "FocalLoss",
    "SegmentationLoss",
    "WeightedCrossEntropyLoss",
    "border_weight_map",
    "class_balance_weights",
    "instances_from_binary",
    "separate_touching_instances",
]
