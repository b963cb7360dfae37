"""Instance pictures: outlines, and missed / extra objects as the scores count them."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

from unetlab.metrics import instance_scores
from unetlab.visualization.instances import (
    EXTRA_COLOUR,
    MISSED_COLOUR,
    outline_layer,
    outlines,
    plot_instance_errors,
)


def reference_outlines(labels: np.ndarray) -> np.ndarray:
    """Object pixels with a different label among their 3x3 neighbours inside the image."""
    edges = np.zeros(labels.shape, bool)
    rows, cols = labels.shape
    for r in range(rows):
        for c in range(cols):
            window = labels[max(r - 1, 0) : r + 2, max(c - 1, 0) : c + 2]
            edges[r, c] = labels[r, c] > 0 and bool((window != labels[r, c]).any())
    return edges


def test_outlines_match_reference() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, size=(12, 14)) * (rng.random((12, 14)) < 0.7)
    assert np.array_equal(outlines(labels), reference_outlines(labels))


def two_touching_truths_one_merged_prediction() -> tuple[np.ndarray, np.ndarray]:
    true = np.zeros((20, 20), np.int32)
    true[2:10, 2:8], true[2:10, 8:12], true[14:18, 14:18] = 1, 2, 3
    pred = np.zeros_like(true)
    pred[2:10, 2:12], pred[14:18, 2:6] = 5, 6  # box 1 and 2 merged; an extra box
    return true, pred


def test_missed_and_extra_objects_are_filled_in_their_colour() -> None:
    true, pred = two_touching_truths_one_merged_prediction()
    scores = instance_scores(pred, true)
    # 5 matches 1 (IoU 48/80 = 0.6); 2 and 3 are missed; 6 is extra.
    assert (scores["tp_50"], scores["fn_50"], scores["fp_50"]) == (1, 2, 1)
    missed_layer = outline_layer(true, np.array([2, 3]), MISSED_COLOUR)
    assert np.allclose(missed_layer[5, 9, :3], MISSED_COLOUR) and missed_layer[5, 9, 3] > 0
    assert missed_layer[5, 5, 3] == 0  # the matched object's interior stays clear
    extra_layer = outline_layer(pred, np.array([6]), EXTRA_COLOUR)
    assert np.allclose(extra_layer[15, 3, :3], EXTRA_COLOUR)


@pytest.mark.parametrize("volume", [False, True])
def test_figure_titles_count_what_the_scores_count(volume: bool) -> None:
    true, pred = two_touching_truths_one_merged_prediction()
    image = np.random.default_rng(1).random((1, 20, 20))
    if volume:
        true, pred, image = np.stack([true] * 3), np.stack([pred] * 3), np.stack([image] * 3, 1)
    figure = plot_instance_errors(image, true, pred, "cells")
    titles = [axis.get_title() for axis in figure.axes]
    assert titles[0] == ("cells (z=1)" if volume else "cells")
    assert titles[1] == "truth: 3 objects, 2 missed"
    assert titles[2] == "prediction: 2 objects, 1 extra"
    assert "F1@0.5 0.400" in figure._suptitle.get_text()
    plt.close(figure)
