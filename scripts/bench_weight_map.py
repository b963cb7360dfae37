"""Cost of the U-Net border weight map next to the plain computation it replaces.

Usage: python scripts/bench_weight_map.py [--size 512] [--spacing 50] [--repeats 3]

Times ``border_weight_map`` (one distance transform per object, cropped to a window
around it) on a grid of disks, and, in the same run on the same image, the direct
computation of eq. 2 with one full-image distance transform per object. Prints both
times (best of ``--repeats``) and their ratio; the cropped version should be several
times faster, more so the more objects there are.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
from scipy import ndimage

from unetlab.losses import border_weight_map, class_balance_weights


def disk_grid(size: int, spacing: int) -> np.ndarray:
    """Disks of radius ``spacing // 2 - 2`` on a square grid, numbered from 1."""
    rows, cols = np.indices((size, size))
    instances = np.zeros((size, size), dtype=np.int32)
    centres = range(spacing // 2, size, spacing)
    for label, (r, c) in enumerate(((r, c) for r in centres for c in centres), start=1):
        instances[np.hypot(rows - r, cols - c) < spacing // 2 - 2] = label
    return instances


def full_image_weight_map(instances: np.ndarray, w0: float = 10.0, sigma: float = 5.0):
    """Eq. 2 with one full-image Euclidean distance transform per object."""
    mask = (instances > 0).astype(np.int64)
    weights = class_balance_weights(mask, 2)[mask]
    ids = np.unique(instances[instances > 0])
    distances = np.sort(np.stack([ndimage.distance_transform_edt(instances != i) for i in ids]), 0)
    border = w0 * np.exp(-((distances[0] + distances[1]) ** 2) / (2 * sigma**2))
    return weights + np.where(instances == 0, border, 0.0)


def best_time(function: Callable[[], object], repeats: int) -> float:
    """Shortest wall-clock time of ``repeats`` calls, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--spacing", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    instances = disk_grid(args.size, args.spacing)
    cropped = best_time(lambda: border_weight_map(instances), args.repeats)
    full = best_time(lambda: full_image_weight_map(instances), args.repeats)
    difference = np.abs(border_weight_map(instances) - full_image_weight_map(instances)).max()
    print(f"{instances.max()} objects in {args.size}x{args.size}, max difference {difference:.1e}")
    print(f"border_weight_map (cropped windows): {cropped * 1000:.1f} ms")
    print(f"full-image distance transforms:      {full * 1000:.1f} ms")
    print(f"speed-up: {full / cropped:.1f}x")


if __name__ == "__main__":
    main()
