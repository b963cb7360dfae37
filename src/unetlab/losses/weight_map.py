"""The U-Net paper's per-pixel weight map (class balance plus separation borders).

Ronneberger et al. (2015), eq. 2::

    w(x) = w_c(x) + w0 * exp(-(d1(x) + d2(x))^2 / (2 sigma^2))

``w_c`` balances the class frequencies, ``d1`` and ``d2`` are the distances to the border
of the nearest and second-nearest object. The border term is added on background
pixels only (the thin gaps that separate touching objects); inside objects ``w = w_c``.
Objects that touch without a background gap are first parted by a one-pixel line
(``separate_touching_instances``), so their contact line gets the border weight too.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

BORDER_TOLERANCE = 1e-6
"""Largest border weight that may be left out by cropping the distance transforms."""


def separate_touching_instances(instances: np.ndarray) -> np.ndarray:
    """Turn the contact line between differently labelled objects into background.

    A pixel of an object becomes 0 where a face neighbour (4-connectivity in 2-D,
    6 in 3-D) belongs to an object with a larger label, so two touching objects end
    up one pixel apart and objects that already have a gap are left as they are.

    Args:
        instances: Integer label image, 0 = background.

    Returns:
        A copy with the contact pixels set to 0.
    """
    footprint = ndimage.generate_binary_structure(instances.ndim, 1)
    largest_neighbour = ndimage.maximum_filter(instances, footprint=footprint, mode="nearest")
    separated = instances.copy()
    separated[(instances > 0) & (largest_neighbour > instances)] = 0
    return separated


def class_balance_weights(mask: np.ndarray, num_classes: int) -> np.ndarray:
    """Per-class weights ``n_pixels / (n_present_classes * n_pixels_of_class)``.

    The weighted pixels then average to 1 over the image. Classes absent from the mask
    get weight 0 (no pixel uses it).

    Args:
        mask: Integer class mask with values in ``0..num_classes - 1``.
        num_classes: Number of classes.

    Returns:
        float64 array of shape ``(num_classes,)``.
    """
    mask = _check_mask(mask, num_classes)
    counts = np.bincount(mask.ravel(), minlength=num_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(num_classes, dtype=np.float64)
    weights[present] = mask.size / (present.sum() * counts[present])
    return weights


def border_weight_map(
    instances: np.ndarray,
    mask: np.ndarray | None = None,
    w0: float = 10.0,
    sigma: float = 5.0,
    class_weights: np.ndarray | str | None = "balanced",
    num_classes: int = 2,
) -> np.ndarray:
    """Weight map of eq. 2 of the U-Net paper for one image.

    Distances are Euclidean in pixels, from ``scipy.ndimage.distance_transform_edt``,
    computed per object inside a window around it that is just wide enough for the
    border term to stay exact up to ``BORDER_TOLERANCE``; the cost grows with the
    objects' area, not with ``n_objects * n_pixels``. With fewer than two objects there
    is no border term. Touching objects are parted first (``separate_touching_instances``):
    their contact line counts as background for the border term.

    Args:
        instances: Integer label image (2-D or 3-D), 0 = background, one id per object.
        mask: Class mask of the same shape; defaults to ``instances > 0``.
        w0: Border weight ``w0``.
        sigma: Border width ``sigma`` in pixels.
        class_weights: ``"balanced"`` (``class_balance_weights`` of this mask), an array
            of one weight per class, or None for ``w_c = 1``.
        num_classes: Number of classes of ``mask``.

    Returns:
        float32 array shaped like ``instances``.
    """
    instances = np.asarray(instances)
    if instances.dtype.kind not in "iub" or (instances.size and instances.min() < 0):
        raise ValueError(
            f"instances must be a non-negative integer label image, got dtype {instances.dtype}; "
            "use instances_from_binary(mask) for a binary mask."
        )
    if sigma <= 0:
        raise ValueError(f"sigma={sigma} must be > 0")
    mask = (instances > 0).astype(np.int64) if mask is None else _check_mask(mask, num_classes)
    if mask.shape != instances.shape:
        raise ValueError(
            f"mask shape {mask.shape} does not match instances shape {instances.shape}"
        )
    weights = _class_weight_map(mask, class_weights, num_classes)
    if w0 > 0:
        weights += _border_term(separate_touching_instances(instances), w0, sigma)
    return weights.astype(np.float32)


def _check_mask(mask: np.ndarray, num_classes: int) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.dtype.kind not in "iub":
        raise ValueError(f"mask must hold integer class indices, got dtype {mask.dtype}")
    mask = mask.astype(np.int64)
    bad = np.unique(mask[(mask < 0) | (mask >= num_classes)])
    if bad.size:
        raise ValueError(
            f"mask has values {set(bad.tolist())}; expected 0..{num_classes - 1}. "
            "Set data.mask_mapping to map mask values to class indices."
        )
    return mask


def _class_weight_map(
    mask: np.ndarray, class_weights: np.ndarray | str | None, num_classes: int
) -> np.ndarray:
    if class_weights is None:
        return np.ones(mask.shape, dtype=np.float64)
    if isinstance(class_weights, str):
        if class_weights != "balanced":
            raise ValueError(
                f"class_weights={class_weights!r} is not valid; use 'balanced', an array "
                "of one weight per class, or None."
            )
        per_class = class_balance_weights(mask, num_classes)
    else:
        per_class = np.asarray(class_weights, dtype=np.float64)
        if per_class.shape != (num_classes,):
            raise ValueError(
                f"class_weights has shape {per_class.shape}; expected ({num_classes},)"
            )
    return per_class[mask]


def _border_term(instances: np.ndarray, w0: float, sigma: float) -> np.ndarray:
    """``w0 exp(-(d1 + d2)^2 / (2 sigma^2))`` on background pixels, 0 elsewhere."""
    ids, compact = np.unique(instances, return_inverse=True)
    compact = compact.reshape(instances.shape)
    if ids[0] != 0:
        compact += 1
    border = np.zeros(instances.shape, dtype=np.float64)
    if (ids > 0).sum() < 2:
        return border
    # Beyond this distance from the second-nearest object the term is below tolerance.
    radius = math.ceil(sigma * math.sqrt(2.0 * math.log(max(w0 / BORDER_TOLERANCE, 1.0))))
    nearest = np.full(instances.shape, np.inf)
    second = np.full(instances.shape, np.inf)
    for label, box in enumerate(ndimage.find_objects(compact), start=1):
        if box is None:
            continue
        window = tuple(
            slice(max(s.start - radius, 0), min(s.stop + radius, size))
            for s, size in zip(box, instances.shape, strict=True)
        )
        distance = ndimage.distance_transform_edt(compact[window] != label)
        near, far = nearest[window], second[window]
        np.minimum(far, np.maximum(near, distance), out=far)
        np.minimum(near, distance, out=near)
    gap = (compact == 0) & np.isfinite(second)
    border[gap] = w0 * np.exp(-((nearest[gap] + second[gap]) ** 2) / (2.0 * sigma**2))
    return border
