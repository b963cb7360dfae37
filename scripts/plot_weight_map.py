"""Draw the README picture: the U-Net border weight map over touching synthetic cells.

Usage: python scripts/plot_weight_map.py [output.png]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from unetlab.losses import border_weight_map
from unetlab.visualization import plot_weight_map

DISKS = [  # (row, col, radius): clusters of slightly overlapping cells
    (60, 60, 30),
    (60, 117, 28),
    (112, 85, 26),
    (150, 170, 24),
    (175, 215, 22),
    (200, 60, 30),
]


def touching_disks(shape: tuple[int, int] = (256, 256)) -> np.ndarray:
    """Instance labels of overlapping disks, split by a one-pixel background line."""
    rows, cols = np.indices(shape)
    distances = np.stack([np.hypot(rows - r, cols - c) - radius for r, c, radius in DISKS])
    nearest = distances.argmin(axis=0)
    instances = np.where(distances.min(axis=0) < 0, nearest + 1, 0)
    padded = np.pad(instances, 1)
    neighbours = [padded[1:-1, :-2], padded[1:-1, 2:], padded[:-2, 1:-1], padded[2:, 1:-1]]
    touching = np.zeros(shape, dtype=bool)
    for other in neighbours:
        touching |= (other > 0) & (other < instances)
    instances[touching] = 0
    return instances.astype(np.int32)


def main(output: Path) -> None:
    """Build the synthetic image, compute its weight map and save the figure."""
    rng = np.random.default_rng(0)
    instances = touching_disks()
    image = np.where(instances > 0, 0.75, 0.25) + rng.normal(0.0, 0.05, instances.shape)
    weights = border_weight_map(instances, w0=10.0, sigma=5.0, class_weights="balanced")
    output.parent.mkdir(parents=True, exist_ok=True)
    plot_weight_map(image, weights, instances).savefig(output, dpi=110)
    print(f"wrote {output} (max weight {weights.max():.2f})")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/images/weight_map.png"))
