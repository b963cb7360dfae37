"""What a network learns from instance labels: background, object interior, separating border.

Touching objects share no background pixel, so a class map cannot keep them apart. The
``instance_border`` target marks the outermost pixels of every object as a class of its
own, also where two objects touch: the interiors that remain are separated by a border at
least two pixels wide, and become the seeds that post-processing grows back into whole
objects (:mod:`unetlab.instances.postprocess`).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.segmentation import find_boundaries

TARGETS = ("semantic", "instance_border")
"""``semantic``: the mask's classes as stored; ``instance_border``: classes from instances."""

BACKGROUND, INTERIOR, BORDER = 0, 1, 2
INSTANCE_BORDER_CLASSES = ("background", "interior", "border")


def instance_border_classes(instances: np.ndarray, border_width: int = 1) -> np.ndarray:
    """Background (0), interior (1) and border (2) classes of an instance label image.

    Border pixels are the object pixels with a face-neighbour of another label (background
    or another object), thickened inwards to ``border_width`` pixels. Works in 2-D and 3-D.

    Args:
        instances: Integer label image, 0 = background, one id per object.
        border_width: Thickness of the border inside each object, in pixels.

    Returns:
        int16 class image shaped like ``instances``.
    """
    instances = np.asarray(instances)
    if border_width < 1:
        raise ValueError(f"data.border_width={border_width} must be >= 1")
    objects = instances > 0
    border = find_boundaries(instances, connectivity=1, mode="inner")
    if border_width > 1:
        border = ndimage.binary_dilation(border, iterations=border_width - 1) & objects
    classes = objects.astype(np.int16)
    classes[border] = BORDER
    return classes


class InstanceBorderTarget:
    """Turns a decoded sample's instance labels into ``instance_border`` classes.

    Args:
        border_width: Thickness of the border class inside each object, in pixels.
    """

    def __init__(self, border_width: int = 1) -> None:
        if border_width < 1:
            raise ValueError(f"data.border_width={border_width} must be >= 1")
        self.border_width = border_width

    def __call__(
        self, mask: np.ndarray, instances: np.ndarray | None, origin: str
    ) -> tuple[np.ndarray, np.ndarray]:
        """Classes to learn and the objects of the weight map.

        Args:
            mask: Decoded class mask; its negative (ignored) pixels stay ignored.
            instances: Instance labels of the sample.
            origin: The mask file, as named in error messages.

        Returns:
            ``(classes, objects)``: int16 classes, and the interiors with their ids, whose
            gaps the weight map of ``loss=weighted_ce`` weights up.

        Raises:
            ValueError: The sample has no instance labels.
        """
        if instances is None:
            raise ValueError(
                f"{origin}: data.target=instance_border needs instance labels; set "
                "data.mask_encoding=instances (masks holding one id per object) or put "
                "instance labels in an instances/ folder beside masks/"
            )
        classes = instance_border_classes(instances, self.border_width)
        ignored = mask < 0
        classes[ignored] = mask[ignored]
        objects = np.where(classes == INTERIOR, instances, 0).astype(np.int32)
        return classes, objects


def make_target(kind: str, num_classes: int, border_width: int = 1) -> InstanceBorderTarget | None:
    """The target of ``data.target=kind`` (None for ``semantic``: masks as stored).

    Raises:
        ValueError: Unknown kind, or a class count that does not fit it.
    """
    if kind not in TARGETS:
        raise ValueError(f"data.target={kind!r} is not known; use one of {', '.join(TARGETS)}")
    if kind == "semantic":
        return None
    if num_classes != len(INSTANCE_BORDER_CLASSES):
        raise ValueError(
            f"data.target={kind} learns {len(INSTANCE_BORDER_CLASSES)} classes "
            f"({', '.join(INSTANCE_BORDER_CLASSES)}) but model.num_classes={num_classes}; "
            "set model.num_classes=3"
        )
    return InstanceBorderTarget(border_width)
