"""Blending windows that weight overlapping tile predictions.

Windows are separable: the weight of a tile pixel is the product of one 1-D window per
spatial axis. On a regular grid of tiles the summed weight of every image pixel is then
the product of 1-D sums too, so no full-size weight image has to be accumulated.
"""

from __future__ import annotations

import numpy as np

BLEND_MODES = ("gaussian", "linear")

MIN_WEIGHT = 1e-3
"""Smallest weight relative to the window's peak, so image pixels at tile borders stay defined."""


def gaussian_window_1d(size: int, sigma_scale: float = 0.125) -> np.ndarray:
    """Gaussian centred on the tile, ``sigma = sigma_scale * size``, largest weight 1.

    Args:
        size: Tile size along the axis.
        sigma_scale: Standard deviation as a fraction of the tile size (nnU-Net and MONAI
            use 1/8).
    """
    centre = (size - 1) / 2
    sigma = max(sigma_scale * size, 1e-6)
    positions = np.arange(size, dtype=np.float64)
    window = np.exp(-0.5 * ((positions - centre) / sigma) ** 2)
    return np.maximum(window / window.max(), MIN_WEIGHT).astype(np.float32)


def linear_window_1d(size: int) -> np.ndarray:
    """Tent that rises linearly from the tile borders to 1 in the centre.

    Args:
        size: Tile size along the axis.
    """
    positions = (np.arange(size, dtype=np.float64) + 0.5) / size
    window = 1.0 - np.abs(2.0 * positions - 1.0)
    return np.maximum(window / window.max(), MIN_WEIGHT).astype(np.float32)


def blend_window_1d(mode: str, size: int) -> np.ndarray:
    """The 1-D window of a blending mode.

    Args:
        mode: ``gaussian`` or ``linear``.
        size: Tile size along the axis.
    """
    if mode == "gaussian":
        return gaussian_window_1d(size)
    if mode == "linear":
        return linear_window_1d(size)
    raise ValueError(f"blend={mode!r} is not supported; choose one of {', '.join(BLEND_MODES)}")


def window_weight_sum(window: np.ndarray, starts: list[int], length: int) -> np.ndarray:
    """Summed window weight at every position of an axis covered by tiles at ``starts``.

    Args:
        window: 1-D window of one tile.
        starts: Start of every tile along the axis (may be negative or run past the end).
        length: Length of the axis.
    """
    total = np.zeros(length, np.float32)
    for start in starts:
        low, high = max(start, 0), min(start + window.size, length)
        total[low:high] += window[low - start : high - start]
    return total
