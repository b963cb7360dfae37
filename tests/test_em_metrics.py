"""Pixel error and ISBI 2012 Rand error on hand-built membrane maps."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from unetlab.metrics import pixel_error, rand_error, rand_f_score

# 0 = membrane, 1 = cell interior (the challenge's convention: black membranes).
TRUTH = np.array(
    [
        [1, 1, 0, 1, 1],
        [1, 1, 0, 1, 1],
    ]
)


def test_pixel_error_is_the_fraction_of_mismatched_pixels():
    pred = np.array([[0, 1], [1, 1]])
    truth = np.array([[0, 0], [1, 1]])
    assert pixel_error(pred, truth) == 0.25
    assert pixel_error(truth, truth) == 0.0
    assert pixel_error(truth * 255, truth.astype(bool)) == 0.0
    assert pixel_error(1 - truth, truth) == 1.0


def test_identical_segmentations_score_one():
    assert rand_f_score(TRUTH, TRUTH) == 1.0
    assert rand_error(TRUTH, TRUTH) == 0.0


def test_merge_of_two_cells():
    # One predicted segment covers both 4-pixel cells: t = 4^2 + 4^2 = 32, a = 32,
    # b = 8^2 = 64 -> precision 1/2, recall 1, F = 2/3.
    pred = np.ones_like(TRUTH)
    assert rand_f_score(pred, TRUTH) == pytest.approx(2 / 3)
    assert rand_error(pred, TRUTH) == pytest.approx(1 / 3)


def test_predicted_membrane_inside_a_cell_counts_as_singletons():
    # Column 1 predicted as membrane: cell A = 2 pixels in a segment + 2 singletons.
    # t = 2^2 + 2 + 4^2 = 22, a = 32, b = 2^2 + 2 + 4^2 = 22 -> F = 2 * (22/32) / (1 + 22/32).
    pred = np.array(
        [
            [1, 0, 0, 1, 1],
            [1, 0, 0, 1, 1],
        ]
    )
    assert rand_f_score(pred, TRUTH) == pytest.approx(22 / 27)
    assert rand_error(pred, TRUTH) == pytest.approx(5 / 27)


def test_label_image_split_without_membrane():
    # Cell A split into two labelled segments of 2 pixels: t = 4 + 4 + 16 = 24, a = 32,
    # b = 24 -> precision 1, recall 3/4, F = 6/7.
    pred_labels = np.array(
        [
            [1, 2, 0, 3, 3],
            [1, 2, 0, 3, 3],
        ]
    )
    assert rand_error(pred_labels, TRUTH) == pytest.approx(1 / 7)


def test_only_truth_interior_pixels_count():
    # Predicting membrane or interior on the truth's membrane pixels changes nothing
    # unless it joins segments.
    pred = TRUTH.copy()
    pred[0, 2] = 1  # joins both cells through the truth membrane
    assert rand_error(pred, TRUTH) == pytest.approx(1 / 3)
    thick = np.array([[1, 0, 0, 0, 1], [1, 0, 0, 0, 1]])
    labels = np.array([[1, 0, 0, 0, 2], [1, 0, 0, 0, 2]])
    assert rand_error(thick, TRUTH) == pytest.approx(rand_error(labels, TRUTH))


def test_cells_touching_only_diagonally_are_separate_segments():
    truth = np.array([[1, 0], [0, 1]])
    assert rand_f_score(truth, truth) == 1.0
    # Two diagonal pixels = two 4-connected cells; one predicted segment merges them.
    merged = np.array([[1, 1], [0, 1]])
    assert rand_error(merged, truth) == pytest.approx(1 / 3)


def test_membrane_value_one_inverts_the_binary_convention():
    membrane_is_one = 1 - TRUTH
    pred = np.zeros_like(TRUTH)  # everything interior -> one merged segment
    assert rand_error(pred, membrane_is_one, membrane_value=1) == pytest.approx(1 / 3)
    assert rand_error(TRUTH * 255, TRUTH) == 0.0


def test_stack_pools_pair_counts_over_slices():
    # Slice 1 perfect (t = a = b = 32), slice 2 merged (t = a = 32, b = 64):
    # precision 64/96, recall 1 -> F = 0.8, not the mean of the slice errors (1/6).
    truth = np.stack([TRUTH, TRUTH])
    pred = np.stack([TRUTH, np.ones_like(TRUTH)])
    assert rand_error(pred, truth) == pytest.approx(0.2)


def test_truth_without_cells_is_nan():
    empty = np.zeros((3, 3), dtype=np.uint8)
    assert math.isnan(rand_error(np.ones_like(empty), empty))


@pytest.mark.parametrize(
    ("pred", "truth", "message"),
    [
        (np.zeros((2, 2)), np.zeros((2, 2), int), "Threshold probabilities"),
        (np.zeros((2, 3), int), np.zeros((2, 2), int), "does not match"),
        (np.zeros((2,), int), np.zeros((2,), int), "2-D image"),
    ],
)
def test_invalid_inputs(pred, truth, message):
    with pytest.raises(ValueError, match=message):
        rand_error(pred, truth)


def _pairwise_f_score(pred: np.ndarray, truth: np.ndarray) -> float:
    """Brute force over all ordered pairs of truth-interior pixels."""
    truth_labels, _ = ndimage.label(truth > 0)
    pred_labels, _ = ndimage.label(pred > 0)
    inside = truth_labels.ravel() > 0
    t_ids = truth_labels.ravel()[inside]
    p_ids = pred_labels.ravel()[inside].astype(np.int64)
    singles = p_ids == 0
    p_ids[singles] = -1 - np.arange(singles.sum())  # membrane pixels: own segment each
    same_truth = t_ids[:, None] == t_ids[None, :]
    same_pred = p_ids[:, None] == p_ids[None, :]
    both = (same_truth & same_pred).sum()
    precision, recall = both / same_pred.sum(), both / same_truth.sum()
    return 2 * precision * recall / (precision + recall)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(2, 7), st.integers(2, 7))
def test_matches_brute_force_pair_counting(seed, height, width):
    rng = np.random.default_rng(seed)
    truth = (rng.random((height, width)) < 0.7).astype(np.uint8)
    pred = (rng.random((height, width)) < 0.7).astype(np.uint8)
    if not truth.any():
        truth[0, 0] = 1
    assert rand_f_score(pred, truth) == pytest.approx(_pairwise_f_score(pred, truth))
