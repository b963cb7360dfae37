"""Confusion-matrix figure for logging (PNG in the run folder, W&B image)."""

from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import Tensor

MAX_ANNOTATED_CLASSES = 30
"""Above this many classes the cells are not annotated (the numbers would not fit)."""


def plot_confusion_matrix(
    matrix: Tensor | np.ndarray, class_names: list[str], normalize: bool = True
) -> Figure:
    """Draw a confusion matrix (rows = truth, columns = prediction).

    Colours show each row divided by its sum (the fraction of a true class that went to
    each predicted class; the diagonal is the per-class recall) when ``normalize`` is
    True, raw counts otherwise. Every cell is annotated with its pixel count. The figure
    is drawn with the Agg canvas and does not touch pyplot's global state.

    Args:
        matrix: ``(C, C)`` counts.
        class_names: One name per class.
        normalize: Colour by row-normalised fractions instead of counts.

    Returns:
        A matplotlib Figure; save it with ``fig.savefig(path)``.
    """
    counts = matrix.detach().cpu().numpy() if isinstance(matrix, Tensor) else np.asarray(matrix)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        raise ValueError(f"confusion matrix must be square (C, C), got shape {counts.shape}")
    num_classes = counts.shape[0]
    if len(class_names) != num_classes:
        raise ValueError(
            f"got {len(class_names)} class names for a {num_classes}x{num_classes} matrix"
        )
    counts = counts.astype(np.float64)
    if normalize:
        row_sums = counts.sum(axis=1, keepdims=True)
        colours = np.divide(counts, row_sums, out=np.zeros_like(counts), where=row_sums > 0)
        colour_label, vmax = "fraction of true class", 1.0
    else:
        colours = counts
        colour_label, vmax = "pixels", max(float(counts.max()), 1.0)

    side = min(3.0 + 0.6 * num_classes, 20.0)
    fig = Figure(figsize=(side + 1.5, side), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(colours, cmap="Blues", vmin=0.0, vmax=vmax)
    fig.colorbar(image, ax=ax, label=colour_label)
    ticks = np.arange(num_classes)
    ax.set_xticks(ticks, labels=class_names, rotation=45, ha="right")
    ax.set_yticks(ticks, labels=class_names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title("Confusion matrix (row-normalised)" if normalize else "Confusion matrix")
    if num_classes <= MAX_ANNOTATED_CLASSES:
        fontsize = max(5.0, 11.0 - 0.2 * num_classes)
        for row in range(num_classes):
            for col in range(num_classes):
                dark = colours[row, col] > 0.5 * vmax
                ax.text(
                    col,
                    row,
                    f"{int(counts[row, col]):d}",
                    ha="center",
                    va="center",
                    fontsize=fontsize,
                    color="white" if dark else "black",
                )
    return fig
