"""Instance segmentation: targets from instance labels, and objects from network outputs."""

from __future__ import annotations

from unetlab.data.instance_targets import (
    INSTANCE_BORDER_CLASSES,
    TARGETS,
    InstanceBorderTarget,
    instance_border_classes,
    make_target,
)
from unetlab.instances.colours import object_palette
from unetlab.instances.labels import (
    checkpoint_target,
    instance_dtype,
    instance_labels,
    instance_predictor,
    instances_from_logits,
)
from unetlab.instances.postprocess import InstancePostprocess, class_instances, watershed_instances

__all__ = [
    "INSTANCE_BORDER_CLASSES",
    "TARGETS",
    "InstanceBorderTarget",
    "InstancePostprocess",
    "checkpoint_target",
    "class_instances",
    "instance_border_classes",
    "instance_dtype",
    "instance_labels",
    "instance_predictor",
    "instances_from_logits",
    "make_target",
    "object_palette",
    "watershed_instances",
]
