"""Figure of a volume: three orthogonal slices with ground truth and prediction drawn over them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def orthogonal_slices(volume: np.ndarray, centre: Sequence[int]) -> list[np.ndarray]:
    """The y-x, z-x and z-y slices of a (Z, Y, X, ...) array through the voxel ``centre``."""
    z, y, x = (int(c) for c in centre)
    return [volume[z], volume[:, y], volume[:, :, x]]


def plot_orthogonal_slices(
    image: np.ndarray,
    prediction: np.ndarray,
    truth: np.ndarray | None = None,
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    centre: Sequence[int] | None = None,
    title: str = "",
) -> Figure:
    """The y-x, z-x and z-y planes of a volume, with the predicted classes over them.

    Classes other than 0 are tinted and outlined (prediction in orange); the ground truth,
    when given, is outlined in cyan on a second row.

    Args:
        image: (Z, Y, X) intensities.
        prediction: (Z, Y, X) predicted classes.
        truth: (Z, Y, X) true classes, or None.
        spacing: Voxel size (z, y, x): the planes are drawn to physical scale.
        centre: The voxel the planes pass through (default: the volume's centre).
        title: Title of the figure.

    Returns:
        A matplotlib Figure (Agg canvas).
    """
    if (
        image.ndim != 3
        or image.shape != prediction.shape
        or (truth is not None and truth.shape != image.shape)
    ):
        raise ValueError(
            "image, prediction and truth must be (Z, Y, X) arrays of one shape, got "
            f"{image.shape}, {prediction.shape}, {None if truth is None else truth.shape}"
        )
    centre = [n // 2 for n in image.shape] if centre is None else centre
    low, high = np.percentile(image, (1, 99.5))
    shown = np.clip((image - low) / max(high - low, 1e-6), 0, 1)
    rows = [("prediction", prediction, "tab:orange")]
    if truth is not None:
        rows.insert(0, ("ground truth", truth, "cyan"))
    _, y, x = image.shape
    sz, sy, sx = spacing
    widths = [x * sx, x * sx, y * sy]
    fig = Figure(figsize=(10.0, 3.6 * len(rows)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(rows), 3, squeeze=False, width_ratios=widths)
    aspects = [sy / sx, sz / sx, sz / sy]
    names = [f"y-x at z={centre[0]}", f"z-x at y={centre[1]}", f"z-y at x={centre[2]}"]
    image_planes = orthogonal_slices(shown, centre)
    for row, (label, labels, colour) in zip(axes, rows, strict=True):
        label_planes = orthogonal_slices(labels, centre)
        for index, ax in enumerate(row):
            plane, plane_labels, aspect = image_planes[index], label_planes[index], aspects[index]
            ax.imshow(plane, cmap="gray", vmin=0, vmax=1, aspect=aspect, interpolation="nearest")
            foreground = np.ma.masked_where(plane_labels == 0, plane_labels)
            ax.imshow(foreground, cmap="autumn", alpha=0.35, aspect=aspect, interpolation="nearest")
            ax.contour(plane_labels > 0, levels=[0.5], colors=colour, linewidths=0.8)
            ax.set_title(f"{label}, {names[index]}", fontsize=9)
            ax.set_axis_off()
    if title:
        fig.suptitle(title)
    return fig
