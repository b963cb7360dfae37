"""From class probabilities or class labels to one label per object."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.segmentation import relabel_sequential, watershed

from unetlab.data.instance_targets import BACKGROUND, INTERIOR


@dataclass(frozen=True)
class InstancePostprocess:
    """Settings that turn network outputs into instance labels.

    Attributes:
        foreground_threshold: A pixel is foreground where ``1 - p(background)`` exceeds it.
        seed_threshold: Seeds are the connected regions where ``p(interior)`` exceeds it.
        smoothing: Standard deviation in pixels of a Gaussian blur of ``p(interior)``
            before seeding and flooding (0 = none): noisy maps then give fewer false seeds.
        min_seed_size: Seeds smaller than this many pixels (voxels) are dropped.
        min_size: Objects smaller than this many pixels (voxels) are removed.
        fill_holes: Fill background enclosed by a single object.
        block_size: Side of the blocks large images are processed in, one per axis or one
            for all; None = 2048 for images, 256 for volumes.
        block_overlap: Margin each block sees around it; objects narrower than it come
            out as in one-shot processing. None = 128 for images, 48 for volumes.
    """

    foreground_threshold: float = 0.5
    seed_threshold: float = 0.5
    smoothing: float = 0.0
    min_seed_size: int = 0
    min_size: int = 10
    fill_holes: bool = True
    block_size: int | None = None
    block_overlap: int | None = None

    def __post_init__(self) -> None:
        for name in ("foreground_threshold", "seed_threshold"):
            value = getattr(self, name)
            if not 0 < value < 1:
                raise ValueError(f"postprocess.{name}={value} must be in (0, 1)")
        for name in ("smoothing", "min_seed_size", "min_size"):
            if getattr(self, name) < 0:
                raise ValueError(f"postprocess.{name}={getattr(self, name)} must be >= 0")


DEFAULT_POSTPROCESS = InstancePostprocess()


def watershed_instances(
    probabilities: np.ndarray, options: InstancePostprocess = DEFAULT_POSTPROCESS
) -> np.ndarray:
    """Objects from ``instance_border`` probabilities by a seeded watershed.

    Seeds are the connected interior regions (of the blurred ``p(interior)`` with
    ``options.smoothing``, at least ``options.min_seed_size`` large); they grow over
    ``1 - p(interior)`` inside the foreground, so the border pixels between touching objects
    are shared out between them. Foreground regions without a seed become objects of their
    own.

    Args:
        probabilities: (3, *spatial) probabilities of background, interior and border.
        options: Thresholds, minimum size and hole filling.

    Returns:
        int32 labels numbered 1..N (0 = background).
    """
    foreground = probabilities[BACKGROUND] < 1.0 - options.foreground_threshold
    interior = probabilities[INTERIOR].astype(np.float32)
    if options.smoothing > 0:
        interior = ndimage.gaussian_filter(interior, options.smoothing)
    seeds, count = ndimage.label((interior > options.seed_threshold) & foreground)
    if options.min_seed_size > 0:
        seeds = remove_small_objects(seeds, options.min_seed_size)
        count = int(seeds.max())
    labels = watershed(-interior, seeds, mask=foreground)
    unseeded, _ = ndimage.label(foreground & (labels == 0))
    labels = np.where(unseeded > 0, unseeded + count, labels).astype(np.int32)
    return finish_objects(labels, options)


def class_instances(
    class_labels: np.ndarray, options: InstancePostprocess = DEFAULT_POSTPROCESS
) -> np.ndarray:
    """Objects of a class map: the connected components of every class but 0.

    Touching objects of one class merge: this is what a model trained on class masks
    gives.

    Args:
        class_labels: (*spatial) class indices.
        options: Minimum size (hole filling is not applied: holes may be other classes).

    Returns:
        int32 labels numbered 1..N (0 = background).
    """
    labels = np.zeros(class_labels.shape, np.int32)
    count = 0
    for value in np.unique(class_labels):
        if value == 0:
            continue
        components, found = ndimage.label(class_labels == value)
        labels[components > 0] = components[components > 0] + count
        count += found
    return remove_small_objects(labels, options.min_size)


def finish_objects(labels: np.ndarray, options: InstancePostprocess) -> np.ndarray:
    """Remove small objects, fill holes, number the objects 1..N."""
    labels = remove_small_objects(labels, options.min_size)
    if options.fill_holes:
        fill_object_holes(labels)
    return labels


def remove_small_objects(labels: np.ndarray, min_size: int) -> np.ndarray:
    """Labels without objects of fewer than ``min_size`` pixels, renumbered 1..N (int32)."""
    sizes = np.bincount(labels.ravel())
    small = sizes < min_size
    small[0] = False
    if small.any():
        labels = np.where(small[labels], 0, labels)
    return relabel_sequential(labels)[0].astype(np.int32)


def fill_object_holes(labels: np.ndarray) -> None:
    """Give every background region enclosed by a single object to that object (in place)."""
    holes, count = ndimage.label(ndimage.binary_fill_holes(labels > 0) & (labels == 0))
    if count == 0:
        return
    # Every hole's neighbours: the labels of the pixels its one-pixel dilation reaches.
    reach = ndimage.grey_dilation(holes, footprint=ndimage.generate_binary_structure(holes.ndim, 1))
    rim = (reach > 0) & (holes == 0)
    pairs = np.unique(np.stack([reach[rim], labels[rim]]), axis=1)
    hole_ids, neighbours = np.unique(pairs[0], return_counts=True)
    owner = np.zeros(count + 1, labels.dtype)
    single = hole_ids[neighbours == 1]
    owner[single] = pairs[1][np.isin(pairs[0], single)]
    filled = owner[holes]
    np.copyto(labels, filled, where=filled > 0)
