"""Object-level scores of instance segmentations, as the nuclei community reports them.

Predicted and true objects are matched one to one by intersection over union (IoU). At an
IoU threshold ``t`` a pair matches when its IoU is *greater* than ``t`` (the 2018 Data
Science Bowl's rule). For ``t >= 0.5`` such pairs are unique: an object can overlap at most
one other object by more than half of their union. For lower thresholds the pairs are
chosen by an optimal assignment (``scipy.optimize.linear_sum_assignment``), which maximises
the number of matches and, among those, the summed IoU, as StarDist's ``matching`` does.

With ``TP`` matched pairs, ``FP`` unmatched predictions and ``FN`` unmatched true objects:
precision ``TP/(TP+FP)``, recall ``TP/(TP+FN)``, F1 ``2TP/(2TP+FP+FN)`` and
``TP/(TP+FP+FN)`` (the Data Science Bowl's "precision at t", Cellpose's "average
precision", StarDist's "accuracy"), named ``ap``. The Data Science Bowl score is ``ap``
averaged over ``t = 0.5, 0.55, ..., 0.95`` per image and then over images. Panoptic
quality (Kirillov et al. 2019) at ``t = 0.5`` is ``SQ * RQ`` with ``SQ`` the mean IoU of
the matched pairs and ``RQ = TP/(TP+FP/2+FN/2)`` (the F1).

A ratio with ``TP = 0`` is 0 (as in StarDist) even where its denominator is 0 (nothing
predicted, say); only an image with neither true nor predicted objects has no score (NaN)
and is left out of the Data Science Bowl average.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor
from torchmetrics import Metric

IOU_THRESHOLDS = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))
"""The Data Science Bowl's thresholds 0.5, 0.55, ..., 0.95."""

PANOPTIC_THRESHOLD = 0.5
"""IoU threshold of panoptic quality and of the matched-object IoU."""

DENSE_PAIR_LIMIT = 1 << 22
"""Largest ``n_true * n_pred`` counted with a dense ``bincount``; beyond, pairs are sorted."""

LabelImage = np.ndarray | Tensor


@dataclass(frozen=True)
class Overlaps:
    """Every pair of overlapping objects of two label images.

    Attributes:
        true_ids: Label of the true object of each pair.
        pred_ids: Label of the predicted object of each pair.
        iou: IoU of each pair (> 0).
        n_true: Number of true objects.
        n_pred: Number of predicted objects.
    """

    true_ids: np.ndarray
    pred_ids: np.ndarray
    iou: np.ndarray
    n_true: int
    n_pred: int


def object_overlaps(pred_labels: LabelImage, true_labels: LabelImage) -> Overlaps:
    """IoU of every overlapping (true, predicted) object pair, from one contingency table.

    Object ids need not be consecutive. The pixels of both images are counted once: object
    areas with ``bincount``, pair intersections with one ``bincount`` over compact pair
    indices (or a sort when the table would be very large).

    Args:
        pred_labels: Predicted instance labels (2-D or 3-D; 0 = background).
        true_labels: True instance labels of the same shape.

    Returns:
        The overlapping pairs and the object counts.
    """
    pred, true = (
        _check_labels(pred_labels, "pred_labels"),
        _check_labels(true_labels, "true_labels"),
    )
    if pred.shape != true.shape:
        raise ValueError(
            f"pred_labels has shape {pred.shape} but true_labels has shape {true.shape}; "
            "score label images of the same size"
        )
    true_index, true_values = _compact(true)
    pred_index, pred_values = _compact(pred)
    n_true, n_pred = true_values.size - 1, pred_values.size - 1
    true_area = np.bincount(true_index, minlength=n_true + 1)[1:]
    pred_area = np.bincount(pred_index, minlength=n_pred + 1)[1:]
    both = (true_index > 0) & (pred_index > 0)
    codes = (true_index[both] - 1).astype(np.int64) * max(n_pred, 1) + (pred_index[both] - 1)
    if n_true * n_pred <= DENSE_PAIR_LIMIT:
        table = np.bincount(codes, minlength=n_true * n_pred)
        codes = np.flatnonzero(table)
        intersection = table[codes]
    else:
        codes, intersection = np.unique(codes, return_counts=True)
    t, p = np.divmod(codes, max(n_pred, 1))
    union = true_area[t] + pred_area[p] - intersection
    return Overlaps(
        true_values[t + 1], pred_values[p + 1], intersection / union, int(n_true), int(n_pred)
    )


def matched_pairs(overlaps: Overlaps, threshold: float) -> np.ndarray:
    """Indices (into the pairs of ``overlaps``) of the one-to-one matches with IoU > threshold.

    Args:
        overlaps: The overlapping pairs.
        threshold: IoU a pair must exceed.
    """
    above = np.flatnonzero(overlaps.iou > threshold)
    if threshold >= 0.5 or above.size == 0:
        return above
    # Below 0.5 an object may exceed the threshold with several others: maximise the number
    # of matches first and their summed IoU second (StarDist's cost).
    true_rows, true_of_pair = np.unique(overlaps.true_ids[above], return_inverse=True)
    pred_cols, pred_of_pair = np.unique(overlaps.pred_ids[above], return_inverse=True)
    cost = np.zeros((true_rows.size, pred_cols.size))
    scale = 2 * min(true_rows.size, pred_cols.size)
    cost[true_of_pair, pred_of_pair] = -1.0 - overlaps.iou[above] / scale
    rows, cols = linear_sum_assignment(cost)
    pair_of_cell = np.full(cost.shape, -1)
    pair_of_cell[true_of_pair, pred_of_pair] = above
    chosen = pair_of_cell[rows, cols]
    return np.sort(chosen[chosen >= 0])


def matched_objects(
    pred_labels: LabelImage, true_labels: LabelImage, threshold: float = PANOPTIC_THRESHOLD
) -> tuple[np.ndarray, np.ndarray]:
    """Labels of the true and of the predicted objects matched one to one above ``threshold``.

    Objects of either image not listed are missed (true) or extra (predicted).
    """
    overlaps = object_overlaps(pred_labels, true_labels)
    pairs = matched_pairs(overlaps, threshold)
    return overlaps.true_ids[pairs], overlaps.pred_ids[pairs]


def instance_scores(
    pred_labels: LabelImage,
    true_labels: LabelImage,
    thresholds: Sequence[float] = IOU_THRESHOLDS,
) -> dict[str, float]:
    """Object-level scores of one predicted instance-label image (2-D or 3-D).

    Args:
        pred_labels: Predicted instance labels, numpy array or tensor (0 = background).
        true_labels: True instance labels of the same shape.
        thresholds: IoU thresholds; the Data Science Bowl score averages over them.

    Returns:
        For each threshold ``t`` (key suffix ``round(100 t)``, e.g. ``_50``):
        ``precision_t``, ``recall_t``, ``f1_t``, ``ap_t`` (``TP/(TP+FP+FN)``) and the counts
        ``tp_t``, ``fp_t``, ``fn_t``; ``dsb_score``; at IoU 0.5 ``panoptic_quality``,
        ``recognition_quality`` and ``mean_matched_iou`` (the segmentation quality);
        ``n_true`` and ``n_pred``. Scores are NaN for an image with no object in either.
    """
    overlaps = object_overlaps(pred_labels, true_labels)
    counts = match_counts(overlaps, thresholds)
    return scores_from_counts(counts, thresholds, dsb_score=_dsb_score(counts, thresholds))


def match_counts(overlaps: Overlaps, thresholds: Sequence[float] = IOU_THRESHOLDS) -> dict:
    """``tp`` per threshold, the IoU sum of the matches at 0.5 and the object counts."""
    tp = [matched_pairs(overlaps, t).size for t in thresholds]
    panoptic = matched_pairs(overlaps, PANOPTIC_THRESHOLD)
    return {
        "tp": np.asarray(tp, np.int64),
        "tp_panoptic": int(panoptic.size),
        "iou_sum": float(overlaps.iou[panoptic].sum()),
        "n_true": overlaps.n_true,
        "n_pred": overlaps.n_pred,
    }


def scores_from_counts(
    counts: dict, thresholds: Sequence[float], dsb_score: float
) -> dict[str, float]:
    """Scores from (pooled) match counts; see :func:`instance_scores` for the keys."""
    n_true, n_pred = int(counts["n_true"]), int(counts["n_pred"])
    empty = n_true + n_pred == 0
    scores: dict[str, float] = {}
    for threshold, tp in zip(thresholds, np.asarray(counts["tp"]).tolist(), strict=True):
        fp, fn = n_pred - tp, n_true - tp
        suffix = threshold_suffix(threshold)
        scores[f"precision_{suffix}"] = _ratio(tp, tp + fp, empty)
        scores[f"recall_{suffix}"] = _ratio(tp, tp + fn, empty)
        scores[f"f1_{suffix}"] = _ratio(2 * tp, 2 * tp + fp + fn, empty)
        scores[f"ap_{suffix}"] = _ratio(tp, tp + fp + fn, empty)
        scores.update({f"tp_{suffix}": tp, f"fp_{suffix}": fp, f"fn_{suffix}": fn})
    tp = int(counts["tp_panoptic"])
    quality = _ratio(tp, tp + (n_pred - tp + n_true - tp) / 2, empty)
    matched_iou = _ratio(float(counts["iou_sum"]), tp, empty)
    scores["dsb_score"] = float(dsb_score)
    scores["panoptic_quality"] = matched_iou * quality
    scores["recognition_quality"] = quality
    scores["mean_matched_iou"] = matched_iou
    scores["n_true"] = n_true
    scores["n_pred"] = n_pred
    return scores


def threshold_suffix(threshold: float) -> str:
    """Key suffix of an IoU threshold: 0.5 -> ``"50"``, 0.75 -> ``"75"``."""
    return f"{round(100 * threshold):02d}"


class InstanceScores(Metric):
    """Object-level scores accumulated over a split (synced across processes).

    ``update`` takes a batch of label images (the first axis indexes images) and adds, per
    threshold, the matched, predicted and true object counts, the IoU sum of the matches at
    0.5 and, for the Data Science Bowl score, the sum and number of per-image scores. All
    states are sums, so processes combine them by adding.

    ``compute`` returns the keys of :func:`instance_scores`. The ratios come from the counts
    pooled over all images (as StarDist's ``matching_dataset``), except ``dsb_score``, the
    mean of the per-image scores (images with no object in truth and prediction left out).

    Args:
        thresholds: IoU thresholds.
        **kwargs: Passed to ``torchmetrics.Metric``.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    tp: Tensor
    tp_panoptic: Tensor
    iou_sum: Tensor
    n_true: Tensor
    n_pred: Tensor
    dsb_sum: Tensor
    dsb_images: Tensor

    def __init__(self, thresholds: Sequence[float] = IOU_THRESHOLDS, **kwargs) -> None:
        super().__init__(**kwargs)
        self.thresholds = tuple(float(t) for t in thresholds)
        self.add_state("tp", torch.zeros(len(self.thresholds), dtype=torch.long), "sum")
        for name in ("tp_panoptic", "n_true", "n_pred", "dsb_images"):
            self.add_state(name, torch.tensor(0, dtype=torch.long), "sum")
        for name in ("iou_sum", "dsb_sum"):
            self.add_state(name, torch.tensor(0.0, dtype=torch.float64), "sum")

    def update(self, pred_labels: LabelImage, true_labels: LabelImage) -> None:
        """Add a batch ``(N, *spatial)`` of predicted and true label images."""
        if len(pred_labels) != len(true_labels):
            raise ValueError(
                f"pred_labels holds {len(pred_labels)} images but true_labels {len(true_labels)}"
            )
        for pred, true in zip(pred_labels, true_labels, strict=True):
            counts = match_counts(object_overlaps(pred, true), self.thresholds)
            self.tp += torch.as_tensor(counts["tp"], device=self.tp.device)
            self.tp_panoptic += counts["tp_panoptic"]
            self.iou_sum += counts["iou_sum"]
            self.n_true += counts["n_true"]
            self.n_pred += counts["n_pred"]
            dsb = _dsb_score(counts, self.thresholds)
            if not np.isnan(dsb):
                self.dsb_sum += dsb
                self.dsb_images += 1

    def compute(self) -> dict[str, float]:
        """Scores of everything accumulated; see the class docstring."""
        counts = {
            "tp": self.tp.cpu().numpy(),
            "tp_panoptic": int(self.tp_panoptic),
            "iou_sum": float(self.iou_sum),
            "n_true": int(self.n_true),
            "n_pred": int(self.n_pred),
        }
        images = int(self.dsb_images)
        dsb = float(self.dsb_sum) / images if images else float("nan")
        return scores_from_counts(counts, self.thresholds, dsb_score=dsb)


def _dsb_score(counts: dict, thresholds: Sequence[float]) -> float:
    n_true, n_pred = counts["n_true"], counts["n_pred"]
    if n_true + n_pred == 0:
        return float("nan")
    tp = np.asarray(counts["tp"], np.float64)
    return float(np.mean(tp / (n_true + n_pred - tp))) if len(thresholds) else float("nan")


def _ratio(numerator: float, denominator: float, empty: bool) -> float:
    if empty:
        return float("nan")
    return float(numerator / denominator) if numerator > 0 else 0.0


def _check_labels(labels: LabelImage, name: str) -> np.ndarray:
    array = labels.detach().cpu().numpy() if isinstance(labels, Tensor) else np.asarray(labels)
    if array.dtype.kind not in "biu":
        raise ValueError(
            f"{name} has dtype {array.dtype}; expected an integer instance-label image "
            "(0 = background, one id per object), e.g. scipy.ndimage.label(mask)[0]"
        )
    if array.ndim not in (2, 3):
        raise ValueError(
            f"{name} has shape {array.shape}; expected one 2-D image or 3-D volume of labels"
        )
    if array.size and array.dtype.kind == "i" and array.min() < 0:
        raise ValueError(f"{name} has negative labels; use 0 for background and 1..N for objects")
    return array


def _compact(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flat labels renumbered 0..n (0 stays background) and the original id of each number."""
    flat = labels.ravel().astype(np.int64)
    if flat.size == 0:
        return flat, np.zeros(1, np.int64)
    highest = int(flat.max())
    if highest < 4 * flat.size + 1024:
        present = np.bincount(flat, minlength=1) > 0
        present[0] = True
        values = np.flatnonzero(present)
        lookup = np.cumsum(present) - 1
        return lookup[flat], values
    values, index = np.unique(flat, return_inverse=True)
    if values[0] != 0:
        return index + 1, np.concatenate([[0], values])
    return index, values
