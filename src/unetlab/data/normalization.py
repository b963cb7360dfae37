"""Intensity scaling and standardisation of images."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def scale_to_unit(image: np.ndarray, percentiles: tuple[float, float] = (0.5, 99.5)) -> np.ndarray:
    """Map raw intensities to about [0, 1] as float32.

    8-bit images are divided by 255; 16-bit and float images are scaled between the given
    per-channel percentiles (robust to hot pixels and a dark background).
    """
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    data = image.astype(np.float32)
    low, high = np.percentile(data, percentiles, axis=(0, 1), keepdims=True)
    return (data - low) / np.maximum(high - low, 1e-6)


def channel_statistics(images: Sequence[np.ndarray]) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation over all pixels of (H, W, C) images."""
    channels = images[0].shape[-1]
    total = np.zeros(channels, np.float64)
    squares = np.zeros(channels, np.float64)
    count = 0
    for image in images:
        pixels = image.reshape(-1, channels).astype(np.float64)
        total += pixels.sum(0)
        squares += (pixels**2).sum(0)
        count += pixels.shape[0]
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean**2, 1e-12))
    return mean.tolist(), std.tolist()


def standardize(image: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """``(image - mean) / std`` per channel, float32."""
    mean_array = np.asarray(mean, np.float32)
    std_array = np.asarray(std, np.float32)
    return ((image - mean_array) / std_array).astype(np.float32)
