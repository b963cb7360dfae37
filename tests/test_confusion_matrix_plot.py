"""The confusion-matrix figure: row-normalised colours, counts annotated, PNG output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from unetlab.visualization import plot_confusion_matrix

MATRIX = np.array([[8, 2, 0], [1, 3, 0], [0, 0, 0]])
NAMES = ["background", "nucleus", "debris"]


def _cell_texts(fig: Figure) -> list[str]:
    return [text.get_text() for text in fig.axes[0].texts]


def test_row_normalised_colours_and_count_annotations(tmp_path: Path):
    fig = plot_confusion_matrix(torch.tensor(MATRIX), NAMES)
    assert isinstance(fig, Figure)
    colours = np.asarray(fig.axes[0].images[0].get_array())
    expected = np.array([[0.8, 0.2, 0.0], [0.25, 0.75, 0.0], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(colours, expected)
    assert _cell_texts(fig) == [str(v) for v in MATRIX.ravel()]
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == NAMES
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == NAMES
    path = tmp_path / "confusion_matrix.png"
    fig.savefig(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_raw_counts_when_not_normalised():
    fig = plot_confusion_matrix(MATRIX, NAMES, normalize=False)
    np.testing.assert_allclose(np.asarray(fig.axes[0].images[0].get_array()), MATRIX)
    assert "row-normalised" not in fig.axes[0].get_title()


def test_many_classes_are_drawn_without_annotations():
    matrix = np.eye(40, dtype=np.int64) * 5
    fig = plot_confusion_matrix(matrix, [f"c{i}" for i in range(40)])
    assert _cell_texts(fig) == []


@pytest.mark.parametrize(
    ("matrix", "names", "message"),
    [
        (np.zeros((2, 3)), ["a", "b"], "square"),
        (np.zeros((2, 2)), ["a"], "1 class names"),
    ],
)
def test_invalid_inputs(matrix, names, message):
    with pytest.raises(ValueError, match=message):
        plot_confusion_matrix(matrix, names)
