"""Pixel error, V_Rand and V_Info for EM membrane maps, as scored by the ISBI 2012 challenge.

Convention (the challenge's): in a *binary* membrane map the membrane (cell boundary)
is the value ``membrane_value`` (0 by default: black membranes, white cells as in the
challenge's TIFFs) and every other value is cell interior. Cells are the 4-connected
components of the interior, as in the challenge's Fiji scripts
(``trainableSegmentation.metrics``); a *label* image is used as it is, with 0 as the
boundary.

The challenge's final ranking (Arganda-Carreras et al., "Crowdsourcing the creation of
image segmentation algorithms for connectomics", 2015) scores a prediction by its
foreground-restricted Rand score ``V_Rand`` and information-theoretic score ``V_Info``
*after border thinning*, averaged over the slices. Both count only pixels that are cell
interior in the truth; a pixel that the prediction marks as membrane is a segment of its
own. With ``n_ij`` the number of truth-interior pixels in truth cell ``i`` and predicted
cell ``j``, ``n_0`` those predicted as membrane, ``n`` all truth-interior pixels and
``p = count / n``::

    V_Rand = 2 sum p_ij^2 / (sum_i p_i^2 + sum_j p_j^2)       (singletons add p = 1/n each)
    V_Info = 2 I(S; T) / (H(S) + H(T))                          (mutual information, entropies)

the harmonic means of the split and merge scores. Before scoring, the predicted membrane
is thinned to one-pixel-wide lines (``thin_membranes``), so that thick but correctly
placed membranes are not punished. The challenge reports the best score over thresholds
of a probability map; these functions score one binary (or label) prediction, i.e. one
threshold.

Defaults follow the challenge (``thinning=True``, ``pooled=False``: mean over slices).
``thinning=False, pooled=True`` gives the raw prediction's score with the pair counts
summed over the slices of a stack.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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
    thinning: bool = True,
    pooled: bool = False,
) -> float:
    """Foreground-restricted Rand score ``V_Rand`` (1.0 = same segmentation of the cells).

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
        thinning: Thin a binary prediction's membranes to one pixel before scoring (the
            challenge's final scoring). Label images are scored as given.
        pooled: Sum the pair counts over the slices of a stack instead of averaging the
            per-slice scores (the challenge averages).

    Returns:
        V_Rand in (0, 1], or NaN if the truth has no non-membrane pixel.
    """
    pair = (pred_labels_or_binary, truth_labels_or_binary)
    return _score(*pair, membrane_value, thinning, pooled, _Contingency.rand_f_score)


def info_f_score(
    pred_labels_or_binary: np.ndarray,
    truth_labels_or_binary: np.ndarray,
    membrane_value: int = 0,
    thinning: bool = True,
    pooled: bool = False,
) -> float:
    """Foreground-restricted information-theoretic score ``V_Info`` (1.0 = same cells).

    Args:
        pred_labels_or_binary: Prediction, see ``rand_f_score``.
        truth_labels_or_binary: Ground truth, see ``rand_f_score``.
        membrane_value: Value that marks membrane in a binary map.
        thinning: Thin a binary prediction's membranes before scoring.
        pooled: One score over all pixels of a stack instead of the mean over slices.

    Returns:
        V_Info in [0, 1], or NaN if the truth has no non-membrane pixel.
    """
    pair = (pred_labels_or_binary, truth_labels_or_binary)
    return _score(*pair, membrane_value, thinning, pooled, _Contingency.info_f_score)


def rand_error(
    pred_labels_or_binary: np.ndarray,
    truth_labels_or_binary: np.ndarray,
    membrane_value: int = 0,
    thinning: bool = True,
    pooled: bool = False,
) -> float:
    """Rand error ``1 - V_Rand`` (see ``rand_f_score`` for the arguments).

    Returns:
        Rand error in [0, 1), or NaN if the truth has no non-membrane pixel.
    """
    score = rand_f_score(
        pred_labels_or_binary, truth_labels_or_binary, membrane_value, thinning, pooled
    )
    return 1.0 - score


def thin_membranes(membrane: np.ndarray) -> np.ndarray:
    """Thin a 2-D membrane mask to lines one pixel wide, keeping every cell apart.

    Zhang-Suen skeletonization (``skimage.morphology.skeletonize``, the algorithm of
    ImageJ's *Skeletonize*), which keeps the topology: no two cells are joined. The mask
    is mirrored beyond the image border by more than the thickest membrane's half-width
    while thinning, so membranes that run into the border still reach it afterwards.

    Args:
        membrane: Boolean ``(H, W)`` mask, True on membrane.

    Returns:
        Boolean mask of the thinned membrane, a subset of ``membrane``.
    """
    from skimage.morphology import skeletonize

    membrane = np.asarray(membrane, dtype=bool)
    if not membrane.any():
        return membrane
    margin = int(np.ceil(ndimage.distance_transform_edt(membrane).max())) + 1
    inside = (slice(margin, -margin),) * 2
    return skeletonize(np.pad(membrane, margin, mode="symmetric"))[inside]


@dataclass(frozen=True)
class _Contingency:
    """Sizes of the overlaps of truth cells and predicted cells, over truth-interior pixels.

    Attributes:
        joint: Non-zero overlap sizes ``n_ij`` of truth cells and predicted cells.
        truth: Truth cell sizes ``n_i`` (predicted-membrane pixels included).
        pred: Predicted cell sizes ``n_j`` (truth-interior pixels only).
        singletons: ``n_0``, truth-interior pixels predicted as membrane.
    """

    joint: np.ndarray
    truth: np.ndarray
    pred: np.ndarray
    singletons: int

    @classmethod
    def of(cls, pred: np.ndarray, truth: np.ndarray) -> _Contingency:
        """Contingency of two label images (0 = boundary) of the same shape."""
        inside = truth > 0
        truth_ids, pred_ids = truth[inside], pred[inside]
        membrane = pred_ids == 0
        _, truth_sizes = np.unique(truth_ids, return_counts=True)
        _, pred_sizes = np.unique(pred_ids[~membrane], return_counts=True)
        pairs = np.stack([truth_ids[~membrane], pred_ids[~membrane]])
        _, joint = np.unique(pairs, axis=1, return_counts=True)
        return cls(joint, truth_sizes, pred_sizes, int(membrane.sum()))

    @classmethod
    def concatenate(cls, parts: list[_Contingency]) -> _Contingency:
        """One contingency for several slices: their cells are all distinct."""
        return cls(
            np.concatenate([part.joint for part in parts]),
            np.concatenate([part.truth for part in parts]),
            np.concatenate([part.pred for part in parts]),
            sum(part.singletons for part in parts),
        )

    @property
    def size(self) -> int:
        """Number of truth-interior pixels."""
        return int(self.truth.sum())

    def rand_f_score(self) -> float:
        """V_Rand from the ordered pixel pairs (self-pairs included) together in both."""
        if self.size == 0:
            return float("nan")
        together_both = _sum_squares(self.joint) + self.singletons
        together_truth = _sum_squares(self.truth)
        together_pred = _sum_squares(self.pred) + self.singletons
        return 2.0 * together_both / (together_truth + together_pred)

    def info_f_score(self) -> float:
        """V_Info: mutual information over the mean of the two entropies."""
        n = self.size
        if n == 0:
            return float("nan")
        singleton_entropy = self.singletons / n * np.log(n)
        truth_entropy = _entropy(self.truth, n)
        pred_entropy = _entropy(self.pred, n) + singleton_entropy
        joint_entropy = _entropy(self.joint, n) + singleton_entropy
        if truth_entropy + pred_entropy == 0:
            return 1.0  # one cell, predicted as one cell
        mutual_information = truth_entropy + pred_entropy - joint_entropy
        return float(2.0 * mutual_information / (truth_entropy + pred_entropy))


def _sum_squares(sizes: np.ndarray) -> float:
    sizes = sizes.astype(np.float64)
    return float(sizes @ sizes)


def _entropy(sizes: np.ndarray, total: int) -> float:
    p = sizes.astype(np.float64) / total
    return float(-(p * np.log(p)).sum())


def _score(
    pred: np.ndarray,
    truth: np.ndarray,
    membrane_value: int,
    thinning: bool,
    pooled: bool,
    score: Callable[[_Contingency], float],
) -> float:
    pred, truth = _check_pair(pred, truth)
    if pred.ndim == 2:
        pred, truth = pred[None], truth[None]
    if pred.ndim != 3:
        raise ValueError(
            f"expected a 2-D image or a (D, H, W) stack of them, got shape {pred.shape}"
        )
    parts = [
        _Contingency.of(
            _segments(pred_slice, membrane_value, thinning), _segments(truth_slice, membrane_value)
        )
        for pred_slice, truth_slice in zip(pred, truth, strict=True)
    ]
    if pooled:
        return score(_Contingency.concatenate(parts))
    scores = [score(part) for part in parts if part.size > 0]
    return float(np.mean(scores)) if scores else float("nan")


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


def _segments(image: np.ndarray, membrane_value: int, thinning: bool = False) -> np.ndarray:
    """Label image with 0 = boundary: components of a binary map, or the labels as given."""
    if not _is_binary(image):
        if image.min() < 0:
            raise ValueError("label images must be non-negative (0 = boundary)")
        return image.astype(np.int64)
    nonzero = image > 0
    membrane = ~nonzero if membrane_value == 0 else nonzero
    if thinning:
        membrane = thin_membranes(membrane)
    labels, _ = ndimage.label(~membrane)
    return labels.astype(np.int64)
