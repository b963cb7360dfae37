"""Deterministic train / val / test splits."""

from __future__ import annotations

import numpy as np


def ratio_split(
    names: list[str], val_fraction: float, test_fraction: float, seed: int
) -> dict[str, list[str]]:
    """Shuffle ``names`` with ``seed`` and cut off validation and test parts.

    Each non-zero fraction gets at least one item; the training part keeps at least one.
    """
    if not 0 <= val_fraction < 1 or not 0 <= test_fraction < 1:
        raise ValueError(
            f"data.split: val_fraction={val_fraction}, test_fraction={test_fraction}; "
            "each must be in [0, 1)"
        )
    order = np.random.default_rng(seed).permutation(len(names))
    shuffled = [sorted(names)[i] for i in order]
    n_val = max(1, round(val_fraction * len(names))) if val_fraction else 0
    n_test = max(1, round(test_fraction * len(names))) if test_fraction else 0
    if n_val + n_test >= len(names):
        raise ValueError(
            f"data.split: {len(names)} images cannot give {n_val} validation and {n_test} "
            "test images and keep one for training; lower the fractions or add images"
        )
    return {
        "val": sorted(shuffled[:n_val]),
        "test": sorted(shuffled[n_val : n_val + n_test]),
        "train": sorted(shuffled[n_val + n_test :]),
    }
