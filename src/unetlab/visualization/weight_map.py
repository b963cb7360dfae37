"""Figure of a weight map next to its image."""

from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def plot_weight_map(image: np.ndarray, weight_map: np.ndarray, instances: np.ndarray) -> Figure:
    """Image with object outlines, and the per-pixel weight map beside it.

    Args:
        image: 2-D grey-value image.
        weight_map: 2-D weights from ``border_weight_map``.
        instances: 2-D label image of the objects, outlined on the image.

    Returns:
        A matplotlib Figure (Agg canvas).
    """
    if not image.shape == weight_map.shape == instances.shape or image.ndim != 2:
        raise ValueError(
            "image, weight_map and instances must be 2-D arrays of one shape, got "
            f"{image.shape}, {weight_map.shape}, {instances.shape}"
        )
    fig = Figure(figsize=(9.0, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    image_ax, weight_ax = fig.subplots(1, 2)
    image_ax.imshow(image, cmap="gray")
    image_ax.set_title("image")
    shown = weight_ax.imshow(weight_map, cmap="jet")
    fig.colorbar(shown, ax=weight_ax, label="w(x)")
    weight_ax.set_title("weight map w(x)")
    image_ax.contour(instances > 0, levels=[0.5], colors="tab:orange", linewidths=0.7)
    for ax in (image_ax, weight_ax):
        ax.set_axis_off()
    return fig
