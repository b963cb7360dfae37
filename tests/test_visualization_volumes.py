"""The orthogonal-slices figure of volumes."""

from __future__ import annotations

import numpy as np
import pytest

from unetlab.visualization.volumes import orthogonal_slices, plot_orthogonal_slices


def test_orthogonal_slices_pass_through_the_centre() -> None:
    volume = np.arange(4 * 5 * 6).reshape(4, 5, 6)
    across_z, across_y, across_x = orthogonal_slices(volume, (1, 2, 3))
    assert across_z.shape == (5, 6) and across_y.shape == (4, 6) and across_x.shape == (4, 5)
    assert across_z[2, 3] == across_y[1, 3] == across_x[1, 2] == volume[1, 2, 3]


def test_figure_has_a_row_per_label_volume_and_checks_shapes() -> None:
    labels = np.zeros((6, 12, 10), np.uint8)
    labels[2:5, 3:8, 2:6] = 1
    image = labels + np.random.default_rng(0).normal(0, 0.1, labels.shape)
    figure = plot_orthogonal_slices(image, labels, labels, spacing=(2.0, 1.0, 1.0))
    assert len(figure.axes) == 6
    assert len(plot_orthogonal_slices(image, labels).axes) == 3
    with pytest.raises(ValueError, match="arrays of one shape"):
        plot_orthogonal_slices(image, labels[:3])
