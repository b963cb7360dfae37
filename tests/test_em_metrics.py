"""Pixel error and the ISBI 2012 scores V_Rand and V_Info on hand-built membrane maps,
against scikit-image and scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage
from skimage.metrics import adapted_rand_error, variation_of_information
from sklearn.metrics import mutual_info_score

from unetlab.metrics import info_f_score, pixel_error, rand_error, rand_f_score, thin_membranes

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
    assert rand_f_score(pred, TRUTH, thinning=False) == pytest.approx(22 / 27)
    assert rand_error(pred, TRUTH, thinning=False) == pytest.approx(5 / 27)


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
    assert rand_error(thick, TRUTH, thinning=False) == pytest.approx(rand_error(labels, TRUTH))


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


def test_stack_averages_slices_or_pools_pair_counts():
    # Slice 1 perfect (t = a = b = 32), slice 2 merged (t = a = 32, b = 64, F = 2/3).
    # The challenge averages the slice scores: (1 + 2/3) / 2; pooled counts give
    # precision 64/96, recall 1 -> F = 0.8.
    truth = np.stack([TRUTH, TRUTH])
    pred = np.stack([TRUTH, np.ones_like(TRUTH)])
    assert rand_f_score(pred, truth) == pytest.approx(5 / 6)
    assert rand_f_score(pred, truth, thinning=False, pooled=True) == pytest.approx(0.8)
    # V_Info of the merged slice: one predicted segment, so I = 0 and V_Info = 0.
    assert info_f_score(pred, truth) == pytest.approx(0.5)
    # Pooled: one score over both slices, whose cells are all distinct.
    truth_labels = np.array([[1, 1, 0, 2, 2]] * 2 + [[3, 3, 0, 4, 4]] * 2)
    pred_labels = np.array([[1, 1, 0, 2, 2]] * 2 + [[3, 3, 3, 3, 3]] * 2)
    assert info_f_score(pred, truth, thinning=False, pooled=True) == pytest.approx(
        _info_reference(pred_labels, truth_labels), abs=1e-12
    )


def test_truth_without_cells_is_nan():
    empty = np.zeros((3, 3), dtype=np.uint8)
    assert math.isnan(rand_error(np.ones_like(empty), empty))
    assert math.isnan(info_f_score(np.ones_like(empty), empty))


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
    assert rand_f_score(pred, truth, thinning=False) == pytest.approx(
        _pairwise_f_score(pred, truth)
    )


def _with_singletons(pred_labels: np.ndarray) -> np.ndarray:
    """Predicted membrane (label 0) pixels become segments of one pixel each."""
    labels = pred_labels.astype(np.int64).copy()
    membrane = labels == 0
    labels[membrane] = labels.max() + 1 + np.arange(membrane.sum())
    return labels


def _rand_reference(pred_labels: np.ndarray, truth_labels: np.ndarray) -> float:
    """V_Rand from scikit-image's adapted Rand error.

    scikit-image counts unordered pairs of distinct pixels (``n_ij (n_ij - 1)``) where the
    challenge counts ordered pairs with self-pairs (``n_ij^2``): its sums are ours minus
    ``n``. Its ``precision`` is ``t / a`` (truth marginals), which the challenge calls
    recall (scikit-image issue 6485), and its ``recall`` is ``t / b``.
    """
    pred_labels = _with_singletons(pred_labels)
    _, sk_precision, sk_recall = adapted_rand_error(truth_labels, pred_labels, ignore_labels=(0,))
    n = int((truth_labels > 0).sum())
    truth_sizes = np.bincount(truth_labels[truth_labels > 0])
    together_truth = float(truth_sizes @ truth_sizes)
    together_both = n + sk_precision * (together_truth - n)
    together_pred = n + (together_both - n) / sk_recall
    return 2 * together_both / (together_truth + together_pred)


def _info_reference(pred_labels: np.ndarray, truth_labels: np.ndarray) -> float:
    """V_Info = 2 I / (H(S) + H(T)) from scikit-learn's mutual information (nats) and
    scikit-image's conditional entropies (bits): H(T) = I + H(T|S), H(S) = I + H(S|T)."""
    pred_labels = _with_singletons(pred_labels)
    inside = truth_labels > 0
    mutual = mutual_info_score(truth_labels[inside], pred_labels[inside])
    truth_given_pred, pred_given_truth = variation_of_information(
        truth_labels, pred_labels, ignore_labels=(0,)
    )
    conditional = (truth_given_pred + pred_given_truth) * math.log(2)
    return 2 * mutual / (2 * mutual + conditional)


def _cells(binary: np.ndarray) -> np.ndarray:
    return ndimage.label(binary > 0)[0]


def thick_membrane_case() -> tuple[np.ndarray, np.ndarray]:
    """Two 20x10 cells parted by a one-pixel membrane (column 10), predicted 5 pixels thick."""
    truth = np.ones((20, 21), dtype=np.uint8)
    truth[:, 10] = 0
    pred = np.ones_like(truth)
    pred[:, 8:13] = 0
    return pred, truth


def test_thick_predicted_membrane_is_thinned_before_scoring():
    pred, truth = thick_membrane_case()
    # Raw: 80 truth-interior pixels are predicted membrane (singletons), the predicted
    # cells have 160 pixels each: t = b = 2 * 160^2 + 80, a = 2 * 200^2.
    t, a = 2 * 160**2 + 80, 2 * 200**2
    assert rand_f_score(pred, truth, thinning=False) == pytest.approx(2 * t / (a + t))
    # V_Info raw: n = 400, H(T) = log 2, H(S) = H(S, T) = -2 (0.4 log 0.4) + 80/400 log 400.
    h_truth = math.log(2)
    h_pred = -2 * 0.4 * math.log(0.4) + 0.2 * math.log(400)
    assert info_f_score(pred, truth, thinning=False) == pytest.approx(
        2 * h_truth / (h_truth + h_pred)
    )
    # Thinned, the membrane is column 10 again: a perfect score.
    np.testing.assert_array_equal(thin_membranes(pred == 0), truth == 0)
    assert rand_f_score(pred, truth) == 1.0
    assert info_f_score(pred, truth) == pytest.approx(1.0)
    assert rand_f_score(pred, truth, thinning=False) == pytest.approx(0.78123, abs=1e-5)
    assert info_f_score(pred, truth, thinning=False) == pytest.approx(0.52822, abs=1e-5)


def random_membranes(seed: int, shape=(40, 48)) -> np.ndarray:
    """A binary map with membranes of random thickness (0 = membrane, 1 = cell)."""
    rng = np.random.default_rng(seed)
    cells = np.zeros(shape, dtype=np.int32)
    cells[rng.integers(0, shape[0], 12), rng.integers(0, shape[1], 12)] = np.arange(1, 13)
    nearest = ndimage.distance_transform_edt(
        cells == 0, return_distances=False, return_indices=True
    )
    regions = cells[tuple(nearest)]
    membrane = ndimage.morphological_gradient(regions, size=3) > 0
    for _ in range(rng.integers(0, 3)):
        membrane = ndimage.binary_dilation(membrane)
    return (~membrane).astype(np.uint8)


@pytest.mark.parametrize("seed", range(6))
def test_scores_match_scikit_image_and_scikit_learn(seed):
    truth = random_membranes(seed)
    pred = random_membranes(seed + 100)
    truth_labels = _cells(truth)
    raw_labels = _cells(pred)
    thinned_labels = ndimage.label(~thin_membranes(pred == 0))[0]
    assert rand_f_score(pred, truth, thinning=False) == pytest.approx(
        _rand_reference(raw_labels, truth_labels), abs=1e-12
    )
    assert rand_f_score(pred, truth) == pytest.approx(
        _rand_reference(thinned_labels, truth_labels), abs=1e-12
    )
    assert info_f_score(pred, truth, thinning=False) == pytest.approx(
        _info_reference(raw_labels, truth_labels), abs=1e-12
    )
    assert info_f_score(pred, truth) == pytest.approx(
        _info_reference(thinned_labels, truth_labels), abs=1e-12
    )


@pytest.mark.parametrize("seed", range(6))
def test_thinning_keeps_every_cell_apart_and_leaves_thin_lines(seed):
    membrane = random_membranes(seed) == 0
    thinned = thin_membranes(membrane)
    assert not (thinned & ~membrane).any()
    # Lines one pixel wide: thinning them again changes nothing (but lines that run
    # along the image border, which part no cells) ...
    inner = (slice(1, -1), slice(1, -1))
    np.testing.assert_array_equal(thin_membranes(thinned)[inner], thinned[inner])
    assert thinned.sum() < 0.6 * membrane.sum()
    # ... and no two cells are joined: every thinned cell holds exactly one raw cell.
    raw, thinned_cells = _cells(~membrane), _cells(~thinned)
    for label in range(1, thinned_cells.max() + 1):
        inside = np.unique(raw[(thinned_cells == label) & (raw > 0)])
        assert inside.size == 1, label
