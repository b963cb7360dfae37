"""The U-Net border weight map: touching disks and squares, exactness and edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from unetlab.losses import (
    WeightedCrossEntropyLoss,
    border_weight_map,
    class_balance_weights,
    instances_from_binary,
    separate_touching_instances,
)


def two_touching_disks(radius: int = 15, gap: int = 1) -> np.ndarray:
    """Two disks on row 40 separated by a ``gap``-pixel background line."""
    rows, cols = np.indices((80, 120))
    instances = np.zeros((80, 120), dtype=np.int32)
    left_centre = 40
    right_centre = left_centre + 2 * radius + gap + 1
    instances[np.hypot(rows - 40, cols - left_centre) <= radius] = 1
    instances[np.hypot(rows - 40, cols - right_centre) <= radius] = 2
    return instances


def brute_force(instances: np.ndarray, w0: float = 10.0, sigma: float = 5.0) -> np.ndarray:
    """Eq. 2 with one full-image distance transform per object."""
    mask = (instances > 0).astype(np.int64)
    weights = class_balance_weights(mask, 2)[mask]
    ids = [i for i in np.unique(instances) if i > 0]
    if len(ids) >= 2:
        distances = np.sort(
            np.stack([ndimage.distance_transform_edt(instances != i) for i in ids]), 0
        )
        border = w0 * np.exp(-((distances[0] + distances[1]) ** 2) / (2 * sigma**2))
        weights = weights + np.where(instances == 0, border, 0.0)
    return weights


def test_weights_peak_in_the_gap_and_equal_class_weight_far_away():
    instances = two_touching_disks()
    mask = (instances > 0).astype(np.int64)
    weights = border_weight_map(instances, w0=10.0, sigma=5.0)
    w_c = class_balance_weights(mask, 2)

    peak = np.unravel_index(weights.argmax(), weights.shape)
    assert instances[peak] == 0
    assert peak == (40, 56)  # the middle of the one-pixel gap between the disks
    # In the gap d1 = d2 = 1: w = w_c(background) + 10 exp(-(1 + 1)^2 / 50).
    assert weights[peak] == pytest.approx(w_c[0] + 10.0 * math.exp(-4 / 50), rel=1e-5)
    assert weights[0, 0] == pytest.approx(w_c[0], abs=1e-6)
    assert weights[:, -5:] == pytest.approx(w_c[0], abs=1e-6)
    np.testing.assert_allclose(weights[mask == 1], w_c[1], rtol=1e-6)
    assert weights.dtype == np.float32


def test_cropped_distances_match_the_full_computation():
    rng = np.random.default_rng(0)
    instances = ndimage.label(ndimage.binary_opening(rng.random((96, 96)) < 0.55))[0]
    assert instances.max() > 5
    np.testing.assert_allclose(border_weight_map(instances), brute_force(instances), atol=2e-6)


def test_no_border_term_with_zero_or_one_object():
    empty = np.zeros((20, 20), dtype=np.int32)
    np.testing.assert_array_equal(border_weight_map(empty, class_weights=None), 1.0)
    single = empty.copy()
    single[5:10, 5:10] = 3
    weights = border_weight_map(single, class_weights=None)
    np.testing.assert_array_equal(weights, 1.0)


def two_touching_squares() -> np.ndarray:
    """Squares 1 (columns 2-6) and 2 (columns 7-11) on rows 3-8, touching without a gap."""
    instances = np.zeros((12, 14), dtype=np.int32)
    instances[3:9, 2:7] = 1
    instances[3:9, 7:12] = 2
    return instances


def test_touching_instances_get_border_weight_on_their_contact_line():
    touching = two_touching_squares()
    weights = border_weight_map(touching, w0=10.0, sigma=5.0, class_weights=None)
    # Column 6 becomes the one-pixel line between the squares: d1 = d2 = 1 there.
    contact = weights[3:9, 6]
    np.testing.assert_allclose(contact, 1.0 + 10.0 * math.exp(-4 / 50), rtol=1e-6)
    assert weights[3:9, 6].min() > weights[3:9, 5].max() + 8.0
    np.testing.assert_allclose(weights[3:9, 3:6], 1.0)  # inside the objects: w_c only
    # The same map as squares drawn with a one-pixel gap, computed by brute force.
    gapped = touching.copy()
    gapped[:, 6] = 0
    mask = (gapped > 0).astype(np.int64)
    border = brute_force(gapped) - class_balance_weights(mask, 2)[mask]
    np.testing.assert_allclose(weights, 1.0 + border, atol=2e-6)


def test_separate_touching_instances_keeps_gaps_and_background():
    touching = two_touching_squares()
    separated = separate_touching_instances(touching)
    assert set(np.unique(separated[:, 6])) == {0}
    np.testing.assert_array_equal(np.delete(separated, 6, axis=1), np.delete(touching, 6, axis=1))
    disks = two_touching_disks()
    np.testing.assert_array_equal(separate_touching_instances(disks), disks)


def test_class_balance_weights():
    mask = np.array([[0, 0], [0, 1]])
    np.testing.assert_allclose(class_balance_weights(mask, 2), [2 / 3, 2.0])
    assert class_balance_weights(mask, 2)[mask].mean() == pytest.approx(1.0)
    np.testing.assert_allclose(class_balance_weights(mask, 3), [2 / 3, 2.0, 0.0])
    with pytest.raises(ValueError, match=r"mask has values \{2\}"):
        class_balance_weights(np.array([0, 2]), 2)


def test_class_weight_options():
    instances = np.array([[0, 1], [0, 0]])
    np.testing.assert_allclose(border_weight_map(instances, class_weights=None), 1.0)
    given = border_weight_map(instances, class_weights=np.array([0.5, 4.0]))
    np.testing.assert_allclose(given, [[0.5, 4.0], [0.5, 0.5]])
    with pytest.raises(ValueError, match="'balanced'"):
        border_weight_map(instances, class_weights="inverse")
    with pytest.raises(ValueError, match="non-negative integer"):
        border_weight_map(instances.astype(float))


def test_instances_from_binary_and_make_weight_map_on_a_class_mask():
    mask = (two_touching_disks() > 0).astype(np.int64)
    instances = instances_from_binary(mask)
    assert instances.max() == 2 and instances.dtype == np.int32
    loss = WeightedCrossEntropyLoss(w0=10.0, sigma=5.0)
    # A data set without instance labels hands over the class mask as "instances".
    np.testing.assert_allclose(loss.make_weight_map(mask, mask), border_weight_map(instances, mask))
    unbalanced = WeightedCrossEntropyLoss(class_balance=False).make_weight_map(instances, mask)
    assert unbalanced[0, 0] == pytest.approx(1.0)
