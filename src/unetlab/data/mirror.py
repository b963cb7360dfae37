"""Mirror padding: regions of an array that may reach beyond its borders.

One implementation serves training patches (:mod:`unetlab.data.patches`), inference tiles
(:mod:`unetlab.inference.tiling`) and the elastic deformation's label resampling.
Mirroring does not repeat the edge pixel (``d c b | a b c d | c b a``), like
``numpy.pad(mode="reflect")``, and keeps mirroring as far as needed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def reflect_indices(indices: np.ndarray, length: int) -> np.ndarray:
    """Fold integer positions into ``0..length-1`` by mirroring at the borders.

    Args:
        indices: Integer positions, any shape (may be negative or beyond ``length``).
        length: Size of the axis.
    """
    indices = np.asarray(indices)
    if length == 1:
        return np.zeros_like(indices)
    period = 2 * (length - 1)
    folded = np.abs(indices) % period
    return np.where(folded >= length, period - folded, folded)


def crop_mirrored(
    array: np.ndarray, starts: Sequence[int], sizes: Sequence[int], first_axis: int = 0
) -> np.ndarray:
    """The region ``starts .. starts + sizes`` of ``array``, mirrored where it leaves it.

    Axes the region does not leave are sliced, so a region inside the array is a view;
    mirrored ones are copies.

    Args:
        array: The array, e.g. (*spatial, C) with ``first_axis=0`` or (C, *spatial) with
            ``first_axis=1``.
        starts: First position along every cropped axis (may be negative).
        sizes: Region size along every cropped axis.
        first_axis: The axis ``starts[0]`` refers to; the next ones follow it.
    """
    region = array
    mirrored = []
    for offset, (start, size) in enumerate(zip(starts, sizes, strict=True)):
        axis = first_axis + offset
        length = array.shape[axis]
        if start >= 0 and start + size <= length:
            index = [slice(None)] * region.ndim
            index[axis] = slice(start, start + size)
            region = region[tuple(index)]
        else:
            mirrored.append((axis, reflect_indices(np.arange(start, start + size), length)))
    for axis, indices in mirrored:
        region = np.take(region, indices, axis=axis)
    return region


def mirror_pad(
    image: np.ndarray, before: Sequence[int], after: Sequence[int] | None = None
) -> np.ndarray:
    """Mirror-pad the spatial axes of ``image`` (C, *spatial), exactly as tiles are read.

    Args:
        image: Array with channels first.
        before: Pixels added before the image along every spatial axis.
        after: Pixels added after it (default: ``before``).
    """
    after = before if after is None else after
    starts = [-b for b in before]
    sizes = [n + b + a for n, b, a in zip(image.shape[1:], before, after, strict=True)]
    return np.ascontiguousarray(crop_mirrored(image, starts, sizes, first_axis=1))
