"""Colours that tell neighbouring objects apart in overlays."""

from __future__ import annotations

import colorsys

import numpy as np

GOLDEN_RATIO_CONJUGATE = 0.618033988749895


def object_palette(count: int = 1024) -> np.ndarray:
    """Overlay colours of objects 1..count (row 0, the background, is black).

    Successive ids step the hue by the golden ratio, so objects with nearby ids, which
    are often neighbours, get clearly different colours; ids beyond ``count`` cycle.

    Returns:
        float32 array (count + 1, 3) of RGB values in 0..255.
    """
    hues = (np.arange(count) * GOLDEN_RATIO_CONJUGATE) % 1.0
    values = (0.95, 0.75)
    colours = [colorsys.hsv_to_rgb(h, 0.8, values[i % 2]) for i, h in enumerate(hues)]
    return np.vstack([np.zeros((1, 3)), np.asarray(colours) * 255.0]).astype(np.float32)
