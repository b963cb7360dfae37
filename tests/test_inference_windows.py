"""Blending windows and their separable weight sums."""

from __future__ import annotations

import numpy as np
import pytest

from unetlab.inference.windows import (
    MIN_WEIGHT,
    blend_window_1d,
    gaussian_window_1d,
    linear_window_1d,
    window_weight_sum,
)


@pytest.mark.parametrize("mode", ["gaussian", "linear"])
@pytest.mark.parametrize("size", [1, 2, 7, 64, 513])
def test_windows_are_symmetric_positive_and_peak_in_the_centre(mode: str, size: int) -> None:
    window = blend_window_1d(mode, size)
    assert window.shape == (size,) and window.dtype == np.float32
    np.testing.assert_allclose(window, window[::-1])
    assert window.min() >= MIN_WEIGHT and window.max() == pytest.approx(1.0)
    assert np.argmax(window) == (size - 1) // 2


def test_gaussian_has_the_requested_sigma_and_linear_is_a_tent() -> None:
    gaussian = gaussian_window_1d(81, sigma_scale=0.125)
    sigma = 0.125 * 81
    expected = np.exp(-0.5 * (round(sigma) / sigma) ** 2)
    assert gaussian[40 + round(sigma)] == pytest.approx(expected, rel=1e-6)
    linear = linear_window_1d(8)
    np.testing.assert_allclose(linear, np.array([1, 3, 5, 7, 7, 5, 3, 1]) / 7, rtol=1e-6)


def test_unknown_mode_lists_the_choices() -> None:
    with pytest.raises(ValueError, match="choose one of gaussian, linear"):
        blend_window_1d("cosine", 8)


def test_separable_weight_sums_equal_brute_force_accumulation() -> None:
    wy, wx = blend_window_1d("gaussian", 12), blend_window_1d("linear", 10)
    starts_y, starts_x = [-3, 5, 13], [-1, 6, 13, 20]
    total = np.zeros((22, 27), np.float64)
    for y in starts_y:
        for x in starts_x:
            tile = np.outer(wy, wx)
            ys, xs = slice(max(y, 0), min(y + 12, 22)), slice(max(x, 0), min(x + 10, 27))
            total[ys, xs] += tile[ys.start - y : ys.stop - y, xs.start - x : xs.stop - x]
    separable = np.outer(window_weight_sum(wy, starts_y, 22), window_weight_sum(wx, starts_x, 27))
    np.testing.assert_allclose(separable, total, rtol=1e-5)
