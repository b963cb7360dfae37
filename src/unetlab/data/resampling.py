"""Resampling anisotropic volumes to a target voxel spacing.

Microscopy and CT volumes often have slices further apart than the pixels within a slice
(e.g. 2 µm in z, 0.5 µm in y and x). With ``data.target_spacing`` every volume is resampled
on loading so that one voxel covers the same physical size along every axis the network
pools: images linearly (order 1), masks and instance labels by nearest neighbour (order 0),
so labels stay labels. Voxels are treated as boxes (``grid_mode``): the resampled volume
covers exactly the same physical extent as the original.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from unetlab.data.volumes import Volume


def check_spacing(spacing: Sequence[float], name: str = "data.target_spacing") -> tuple[float, ...]:
    """Three positive voxel sizes (z, y, x) as floats.

    Raises:
        ValueError: Naming the config key, for the wrong count or a non-positive size.
    """
    sizes = tuple(float(s) for s in spacing)
    if len(sizes) != 3 or min(sizes) <= 0:
        raise ValueError(
            f"{name}={list(spacing)}: give three positive voxel sizes [z, y, x] in the "
            "volumes' unit (e.g. [1.0, 0.5, 0.5]), or null to keep the stored grid"
        )
    return sizes


def resampled_shape(
    shape: Sequence[int], spacing: Sequence[float], target_spacing: Sequence[float]
) -> tuple[int, ...]:
    """Shape of a volume after resampling from ``spacing`` to ``target_spacing`` (at least 1)."""
    return tuple(
        max(1, round(n * s / t)) for n, s, t in zip(shape, spacing, target_spacing, strict=True)
    )


def resize(array: np.ndarray, shape: Sequence[int], order: int) -> np.ndarray:
    """Resample the leading spatial axes of ``array`` to ``shape`` (trailing axes kept).

    Args:
        array: (*spatial) or (*spatial, C) array.
        shape: The new spatial shape.
        order: Spline order: 1 for intensities, 0 (nearest) for labels.

    Returns:
        The resampled array, dtype kept (integer intensities are rounded).
    """
    shape = tuple(int(n) for n in shape)
    spatial = array.shape[: len(shape)]
    if spatial == shape:
        return array
    zoom = [n / m for n, m in zip(shape, spatial, strict=True)]
    zoom += [1.0] * (array.ndim - len(shape))
    if order == 0 or array.dtype.kind == "f":
        return ndimage.zoom(array, zoom, order=order, mode="nearest", grid_mode=True)
    resampled = ndimage.zoom(
        array.astype(np.float32), zoom, order=order, mode="nearest", grid_mode=True
    )
    info = np.iinfo(array.dtype)
    return np.clip(np.rint(resampled), info.min, info.max).astype(array.dtype)


def resampled_affine(
    affine: np.ndarray, old_shape: Sequence[int], new_shape: Sequence[int]
) -> np.ndarray:
    """The affine of a volume resampled from ``old_shape`` to ``new_shape`` (both z, y, x).

    Voxel ``i`` of the new grid is centred at ``(i + 0.5) * f - 0.5`` of the old one, with
    ``f = old / new`` per axis; the affine takes ``(x, y, z)`` indices.
    """
    factors = np.array([o / n for o, n in zip(old_shape, new_shape, strict=True)])[::-1]
    grid = np.eye(4)
    grid[:3, :3] = np.diag(factors)
    grid[:3, 3] = 0.5 * factors - 0.5
    return np.asarray(affine, np.float64) @ grid


def resample_volume(volume: Volume, target_spacing: Sequence[float], order: int) -> Volume:
    """A volume resampled to ``target_spacing``, with its spacing and affine updated.

    Args:
        volume: The volume.
        target_spacing: Voxel size (z, y, x) wanted.
        order: 1 for intensities, 0 for labels.
    """
    shape = resampled_shape(volume.shape, volume.spacing, check_spacing(target_spacing))
    spacing = tuple(s * n / m for s, n, m in zip(volume.spacing, volume.shape, shape, strict=True))
    affine = resampled_affine(volume.affine, volume.shape, shape)
    return Volume(resize(volume.array, shape, order), spacing, affine, volume.unit)
