"""Figures of instance segmentations: true and predicted outlines, missed and extra objects."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from scipy import ndimage

from unetlab.metrics.instances import PANOPTIC_THRESHOLD, instance_scores, matched_objects
from unetlab.visualization.predictions import display_image

MATCHED_COLOUR = (0.1, 0.9, 0.2)
MISSED_COLOUR = (1.0, 0.15, 0.1)
EXTRA_COLOUR = (1.0, 0.2, 1.0)
FILL_ALPHA = 0.35


def outlines(labels: np.ndarray) -> np.ndarray:
    """Pixels of each object that touch another label or the background (inner outlines)."""
    size = (3,) * labels.ndim
    edges = ndimage.grey_dilation(labels, size=size) != ndimage.grey_erosion(labels, size=size)
    return edges & (labels > 0)


def outline_layer(labels: np.ndarray, marked: np.ndarray, marked_colour: tuple) -> np.ndarray:
    """RGBA layer over an image: outlines (matched objects green, marked ones coloured) and marked fills."""
    layer = np.zeros((*labels.shape, 4))
    is_marked = np.isin(labels, marked) & (labels > 0)
    layer[is_marked] = (*marked_colour, FILL_ALPHA)
    edges = outlines(labels)
    layer[edges & ~is_marked] = (*MATCHED_COLOUR, 1.0)
    layer[edges & is_marked] = (*marked_colour, 1.0)
    return layer


def plot_instance_errors(
    image: np.ndarray,
    true_labels: np.ndarray,
    pred_labels: np.ndarray,
    name: str = "",
) -> Figure:
    """Image | true outlines, missed objects filled | predicted outlines, extra objects filled.

    Objects are matched one to one at IoU above 0.5 (see
    :func:`unetlab.metrics.instance_scores`); matched outlines are green, missed true
    objects (false negatives) red and extra predicted objects (false positives) magenta.
    Volumes are matched in 3-D and drawn by their middle z slice.

    Args:
        image: ``(C, *spatial)`` image (normalised values are fine).
        true_labels: True instance labels ``(*spatial)``.
        pred_labels: Predicted instance labels ``(*spatial)``.
        name: Image name, for the title.
    """
    true_labels, pred_labels = np.asarray(true_labels), np.asarray(pred_labels)
    matched_true, matched_pred = matched_objects(pred_labels, true_labels, PANOPTIC_THRESHOLD)
    missed = np.setdiff1d(np.unique(true_labels), np.append(matched_true, 0))
    extra = np.setdiff1d(np.unique(pred_labels), np.append(matched_pred, 0))
    scores = instance_scores(pred_labels, true_labels)
    if true_labels.ndim == 3:
        middle = true_labels.shape[0] // 2
        image, true_labels, pred_labels = image[:, middle], true_labels[middle], pred_labels[middle]
        name = f"{name} (z={middle})"
    shown = display_image(np.asarray(image, np.float32))
    figure, axes = plt.subplots(1, 3, figsize=(12, 4.4))
    panels = (
        (None, name or "image"),
        (
            outline_layer(true_labels, missed, MISSED_COLOUR),
            f"truth: {scores['n_true']} objects, {missed.size} missed",
        ),
        (
            outline_layer(pred_labels, extra, EXTRA_COLOUR),
            f"prediction: {scores['n_pred']} objects, {extra.size} extra",
        ),
    )
    for axis, (layer, label) in zip(axes, panels, strict=True):
        axis.imshow(shown, cmap="gray", interpolation="nearest")
        if layer is not None:
            axis.imshow(layer, interpolation="nearest")
        axis.set_title(label, fontsize=9)
        axis.axis("off")
    figure.legend(
        handles=[
            Patch(color=MATCHED_COLOUR, label=f"matched (IoU > {PANOPTIC_THRESHOLD:g})"),
            Patch(color=MISSED_COLOUR, label="missed (false negative)"),
            Patch(color=EXTRA_COLOUR, label="extra (false positive)"),
        ],
        loc="lower center",
        ncol=3,
        fontsize=8,
        frameon=False,
    )
    figure.suptitle(
        f"F1@0.5 {scores['f1_50']:.3f}   DSB score {scores['dsb_score']:.3f}   "
        f"panoptic quality {scores['panoptic_quality']:.3f}",
        fontsize=10,
    )
    figure.tight_layout(rect=(0, 0.06, 1, 1))
    return figure
