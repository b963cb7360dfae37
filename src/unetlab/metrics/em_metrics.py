"""Pixel error and Rand error for EM membrane maps, as scored by the ISBI 2012 challenge.

Convention (the challenge's): in a *binary* membrane map the membrane (cell boundary)
is the value ``membrane_value`` (0 by default: black membranes, white cells as in the
challenge's TIFFs) and every other value is cell interior. For the Rand error the cell
interior is split into 4-connected components, one segment per component, exactly as the
challenge's Fiji script does (``trainableSegmentation.metrics.RandError``); a *label*
image is used as it is, with 0 as the boundary.

The Rand score is the foreground-restricted Rand F-score of Arganda-Carreras et al.,
"Crowdsourcing the creation of image segmentation algorithms for connectomics" (2015):
pixel pairs are counted only among pixels that are cell interior in the truth; a pixel
the prediction marks as membrane counts as a segment of its own. With ``n_ij`` the
number of truth-interior pixels in truth segment ``i`` and predicted segment ``j >= 1``
and ``n_0`` the number of truth-interior pixels predicted as membrane::

    t = sum_ij n_ij^2 + n_0           (pairs together in both)
    a = sum_i (sum_j n_ij + n_i0)^2   (pairs together in the truth)
    b = sum_j (sum_i n_ij)^2 + n_0    (pairs together in the prediction)
    precision = t / b, recall = t / a, F = 2 precision recall / (precision + recall)

and the Rand error is ``1 - F``. A stack ``(D, H, W)`` is scored slice by slice (2-D
components) with ``t``, ``a`` and ``b`` summed over slices, as the Fiji script does.
The challenge reports the best F-score over thresholds of a probability map; these
functions score one binary (or label) prediction, i.e. one threshold.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def pixel_error(pred_binary: np.ndarray, truth_binary: np.ndarray) -> float:
    """Fraction of pixels whose binary label differs (the challenge's pixel error).

    This is the squared Euclidean distance between the two binary maps divided by the
    number of pixels. Values greater than 0 are one class and 0 the other, so
    ``{0, 1}`` and ``{0, 255}`` maps can be mixed.

    Args:
        pred_binary: Predicted binary map, 2-D image or stack of any shape.
        truth_binary: Ground-truth binary map of the same shape.

    Returns:
        Pixel error in [0, 1].
    """
    pred, truth = _check_pair(pred_binary, truth_binary)
    return float(np.mean((pred > 0) != (truth > 0)))


def rand_f_score(
    pred_labels_or_binary: np.ndarray,
    truth_labels_or_binary: np.ndarray,
    membrane_value: int = 0,
) -> float:
    """Foreground-restricted Rand F-score (1.0 = same segmentation of the cells).

    Args:
        pred_labels_or_binary: Prediction ``(H, W)`` or stack ``(D, H, W)``: a binary
            membrane map (bool, or only values ``{0, 1}`` or ``{0, 255}``), whose
            non-membrane pixels are split into 4-connected segments, or an integer label
            image with 0 as the boundary.
        truth_labels_or_binary: Ground truth of the same shape, in either form.
        membrane_value: Which value of a binary map is membrane: 0 (the challenge's
            data: black membrane) or the non-zero value (use 1 if the network's class 1
            is membrane). Ignored for label images. An integer image with only the
            values ``{0, 1}`` counts as binary, so its 1-region is split into components.

    Returns:
        F-score in (0, 1], or NaN if the truth has no non-membrane pixel.
    """
    pred, truth = _check_pair(pred_labels_or_binary, truth_labels_or_binary)
    if pred.ndim == 2:
        pred, truth = pred[None], truth[None]
    if pred.ndim != 3:
        raise ValueError(
            f"expected a 2-D image or a (D, H, W) stack of them, got shape {pred.shape}"
        )
    together_both = together_truth = together_pred = 0
    for pred_slice, truth_slice in zip(pred, truth, strict=True):
        t, a, b = _pair_counts(
            _segments(pred_slice, membrane_value), _segments(truth_slice, membrane_value)
        )
        together_both += t
        together_truth += a
        together_pred += b
    if together_truth == 0:
        return float("nan")
    precision = together_both / together_pred
    recall = together_both / together_truth
    return float(2 * precision * recall / (precision + recall))


def rand_error(
    pred_labels_or_binary: np.ndarray,
    truth_labels_or_binary: np.ndarray,
    membrane_value: int = 0,
) -> float:
    """Rand error as the ISBI 2012 challenge defines it: ``1 - rand_f_score``.

    Args:
        pred_labels_or_binary: Prediction, see ``rand_f_score``.
        truth_labels_or_binary: Ground truth, see ``rand_f_score``.
        membrane_value: Value that marks membrane in a binary map.

    Returns:
        Rand error in [0, 1), or NaN if the truth has no non-membrane pixel.
    """
    return 1.0 - rand_f_score(pred_labels_or_binary, truth_labels_or_binary, membrane_value)


def _check_pair(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, truth = np.asarray(pred), np.asarray(truth)
    if pred.shape != truth.shape:
        raise ValueError(f"prediction shape {pred.shape} does not match truth shape {truth.shape}")
    for name, array in (("prediction", pred), ("truth", truth)):
        if array.dtype.kind not in "biu":
            raise ValueError(
                f"{name} has dtype {array.dtype}; expected a binary or integer label map. "
                "Threshold probabilities first, e.g. (prob > 0.5)."
            )
    return pred, truth


def _is_binary(image: np.ndarray) -> bool:
    if image.dtype == bool:
        return True
    values = set(np.unique(image).tolist())
    return values <= {0, 1} or values <= {0, 255}


def _segments(image: np.ndarray, membrane_value: int) -> np.ndarray:
    """Label image with 0 = boundary: components of a binary map, or the labels as given."""
    if not _is_binary(image):
        if image.min() < 0:
            raise ValueError("label images must be non-negative (0 = boundary)")
        return image.astype(np.int64)
    nonzero = image > 0
    interior = nonzero if membrane_value == 0 else ~nonzero
    labels, _ = ndimage.label(interior)
    return labels.astype(np.int64)


def _pair_counts(pred: np.ndarray, truth: np.ndarray) -> tuple[int, int, int]:
    """Ordered pixel pairs together in both, in the truth, and in the prediction."""
    inside = truth.ravel() > 0
    truth_ids = truth.ravel()[inside]
    pred_ids = pred.ravel()[inside]
    if truth_ids.size == 0:
        return 0, 0, 0
    truth_values, truth_ids = np.unique(truth_ids, return_inverse=True)
    pred_values, pred_ids = np.unique(pred_ids, return_inverse=True)
    n_truth, n_pred = truth_values.size, pred_values.size
    joint = np.bincount(truth_ids * n_pred + pred_ids, minlength=n_truth * n_pred)
    joint = joint.astype(np.int64).reshape(n_truth, n_pred)
    membrane_column = pred_values == 0
    singletons = int(joint[:, membrane_column].sum())
    segment_counts = joint[:, ~membrane_column]
    together_both = int((segment_counts**2).sum()) + singletons
    together_truth = int((joint.sum(1) ** 2).sum())
    together_pred = int((segment_counts.sum(0) ** 2).sum()) + singletons
    return together_both, together_truth, together_pred
