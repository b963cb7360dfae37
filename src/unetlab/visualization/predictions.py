"""Figures of predictions next to images and ground truth."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure


def display_image(image: np.ndarray) -> np.ndarray:
    """(C, H, W) normalised image -> (H, W) or (H, W, 3) in [0, 1] for display."""
    image = image[0] if image.shape[0] == 1 else np.moveaxis(image[:3], 0, -1)
    low, high = np.percentile(image, (1, 99))
    return np.clip((image - low) / max(high - low, 1e-6), 0, 1)


def plot_predictions(
    images: Sequence[np.ndarray],
    truths: Sequence[np.ndarray],
    predictions: Sequence[np.ndarray],
    names: Sequence[str],
    num_classes: int,
    title: str = "",
) -> Figure:
    """One row per image: image | ground truth | prediction (label maps in one colour map)."""
    rows = len(images)
    figure, axes = plt.subplots(rows, 3, figsize=(9, 3 * rows), squeeze=False)
    for row, (image, truth, prediction, name) in enumerate(
        zip(images, truths, predictions, names, strict=True)
    ):
        panels = (
            (display_image(image), "gray", None, name),
            (truth, "viridis", num_classes - 1, "ground truth"),
            (prediction, "viridis", num_classes - 1, "prediction"),
        )
        for axis, (panel, cmap, vmax, label) in zip(axes[row], panels, strict=True):
            axis.imshow(panel, cmap=cmap, vmin=0, vmax=vmax, interpolation="nearest")
            axis.set_title(label, fontsize=9)
            axis.axis("off")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure
