"""Processing a large image in overlapping blocks and merging their objects."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np
from scipy import ndimage

Region = tuple[slice, ...]


def block_regions(
    shape: Sequence[int], block_size: Sequence[int], overlap: int
) -> list[tuple[Region, Region]]:
    """Every block's core and the core widened by ``overlap`` (clipped to the image).

    The cores tile the image without gaps or overlap, in raster order.

    Args:
        shape: Spatial shape of the image.
        block_size: Side of the cores, one per axis.
        overlap: Margin around each core.
    """
    regions = []
    starts = [range(0, n, b) for n, b in zip(shape, block_size, strict=True)]
    for corner in itertools.product(*starts):
        core = tuple(
            slice(s, min(s + b, n)) for s, b, n in zip(corner, block_size, shape, strict=True)
        )
        padded = tuple(
            slice(max(c.start - overlap, 0), min(c.stop + overlap, n))
            for c, n in zip(core, shape, strict=True)
        )
        regions.append((core, padded))
    return regions


def blockwise_labels(
    shape: Sequence[int],
    label_region: Callable[[Region], np.ndarray],
    block_size: Sequence[int],
    overlap: int,
) -> np.ndarray:
    """Instance labels of a large image from labels of its overlapping blocks.

    Each block is labelled with its margin; an object belongs to the block whose core
    holds the first corner of its bounding box, and is copied from there. An object whose
    connected foreground lies within the margin therefore comes out exactly as from
    labelling the whole image at once; larger ones are cut where blocks meet.

    Args:
        shape: Spatial shape of the image.
        label_region: Labels (0 = background, 1..n objects) of the image inside a region.
        block_size: Side of the blocks, one per axis.
        overlap: Margin each block is labelled with, in pixels.

    Returns:
        uint32 labels numbered 1..N.
    """
    if all(n <= b for n, b in zip(shape, block_size, strict=True)):
        return label_region(tuple(slice(0, n) for n in shape)).astype(np.uint32)
    merged = np.zeros(tuple(shape), np.uint32)
    count = 0
    for core, padded in block_regions(shape, block_size, overlap):
        labels = label_region(padded)
        offset = [p.start for p in padded]
        for label, box in enumerate(ndimage.find_objects(labels), start=1):
            if box is None:
                continue
            corner = [o + b.start for o, b in zip(offset, box, strict=True)]
            if not all(c.start <= x < c.stop for c, x in zip(core, corner, strict=True)):
                continue
            count += 1
            target = merged[
                tuple(slice(o + b.start, o + b.stop) for o, b in zip(offset, box, strict=True))
            ]
            target[(labels[box] == label) & (target == 0)] = count
    return merged
