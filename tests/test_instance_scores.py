"""Object-level scores against a brute-force reference, hand-made cases and split pooling."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from unetlab.metrics import IOU_THRESHOLDS, InstanceScores, instance_scores
from unetlab.metrics import instances as instances_module

LOW_THRESHOLDS = (0.1, 0.25, 0.4, 0.5, 0.7)


def reference_scores(pred: np.ndarray, true: np.ndarray, thresholds) -> dict[str, float]:
    """Per-object masks, explicit loops and an exhaustive search over one-to-one matchings."""
    true_ids = [i for i in np.unique(true) if i != 0]
    pred_ids = [j for j in np.unique(pred) if j != 0]
    iou = np.zeros((len(true_ids), len(pred_ids)))
    for a, i in enumerate(true_ids):
        for b, j in enumerate(pred_ids):
            inter = np.logical_and(true == i, pred == j).sum()
            union = np.logical_or(true == i, pred == j).sum()
            iou[a, b] = inter / union
    n_true, n_pred = len(true_ids), len(pred_ids)

    def best_matching(threshold: float) -> list[float]:
        """IoUs of the matching with the most pairs above threshold, then the largest sum."""
        best: tuple[int, float, list[float]] = (0, 0.0, [])
        small, large = sorted((n_true, n_pred))
        for rows in itertools.permutations(range(large), small):
            pairs = [(r, c) for c, r in enumerate(rows)]
            if n_true <= n_pred:
                pairs = [(c, r) for r, c in pairs]
            kept = [iou[a, b] for a, b in pairs if iou[a, b] > threshold]
            key = (len(kept), sum(kept), kept)
            if key[:2] > best[:2]:
                best = key
        return best[2]

    result: dict[str, float] = {"n_true": n_true, "n_pred": n_pred}
    aps = []
    for t in thresholds:
        tp = len(best_matching(t))
        fp, fn = n_pred - tp, n_true - tp
        suffix = f"{round(100 * t):02d}"
        if n_true + n_pred == 0:
            precision = recall = f1 = ap = math.nan
        else:
            precision = tp / (tp + fp) if tp else 0.0
            recall = tp / (tp + fn) if tp else 0.0
            f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
            ap = tp / (tp + fp + fn) if tp else 0.0
        result.update({f"precision_{suffix}": precision, f"recall_{suffix}": recall})
        result.update({f"f1_{suffix}": f1, f"ap_{suffix}": ap, f"tp_{suffix}": tp})
        aps.append(ap)
    result["dsb_score"] = float(np.mean(aps))
    matched = best_matching(0.5)
    if n_true + n_pred == 0:
        result["panoptic_quality"] = result["mean_matched_iou"] = math.nan
    elif matched:
        sq = float(np.mean(matched))
        rq = len(matched) / (len(matched) + (n_true - len(matched) + n_pred - len(matched)) / 2)
        result["mean_matched_iou"], result["panoptic_quality"] = sq, sq * rq
    else:
        result["panoptic_quality"] = result["mean_matched_iou"] = 0.0
    return result


def assert_scores_match(scores: dict, reference: dict) -> None:
    for key, expected in reference.items():
        assert scores[key] == pytest.approx(expected, nan_ok=True, abs=1e-12), key


def random_blobs(rng: np.random.Generator, shape: tuple[int, ...], count: int) -> np.ndarray:
    """Overlapping random boxes painted in turn, with scattered (non-consecutive) ids."""
    labels = np.zeros(shape, np.int64)
    ids = rng.choice(np.arange(1, 1000), size=count, replace=False)
    for label in ids:
        start = [rng.integers(0, n - 2) for n in shape]
        stop = [s + rng.integers(2, max(3, n // 2)) for s, n in zip(start, shape, strict=True)]
        labels[tuple(slice(a, b) for a, b in zip(start, stop, strict=True))] = label
    return labels


def perturbed(rng: np.random.Generator, labels: np.ndarray) -> np.ndarray:
    """A prediction near ``labels``: shifted, some objects dropped, some pixels relabelled."""
    pred = np.roll(labels, shift=int(rng.integers(-1, 2)), axis=-1)
    dropped = rng.choice(np.unique(labels), size=1)
    pred[np.isin(pred, dropped)] = 0
    noise = rng.random(labels.shape) < 0.1
    pred[noise] = rng.integers(0, 6, size=int(noise.sum())) * 7
    return pred


@pytest.mark.parametrize("seed", range(12))
def test_random_images_match_brute_force_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = (24, 20) if seed % 3 else (6, 10, 9)
    true = random_blobs(rng, shape, count=int(rng.integers(1, 6)))
    pred = perturbed(rng, true) if seed % 2 else random_blobs(rng, shape, int(rng.integers(0, 6)))
    for thresholds in (IOU_THRESHOLDS, LOW_THRESHOLDS):
        scores = instance_scores(pred, true, thresholds)
        assert_scores_match(scores, reference_scores(pred, true, thresholds))


@settings(max_examples=60, deadline=None)
@given(
    arrays(np.uint16, (5, 6), elements=st.integers(0, 5)),
    arrays(np.uint16, (5, 6), elements=st.integers(0, 5)),
)
def test_any_label_pair_matches_brute_force_reference(pred, true) -> None:
    scores = instance_scores(pred, true, LOW_THRESHOLDS + IOU_THRESHOLDS[1:])
    assert_scores_match(scores, reference_scores(pred, true, LOW_THRESHOLDS + IOU_THRESHOLDS[1:]))


def test_sorted_pair_counting_equals_dense_table(monkeypatch) -> None:
    rng = np.random.default_rng(3)
    true = random_blobs(rng, (30, 30), 8)
    pred = perturbed(rng, true)
    dense = instance_scores(pred, true)
    monkeypatch.setattr(instances_module, "DENSE_PAIR_LIMIT", 0)
    assert instance_scores(pred, true) == dense
    # Ids far beyond the number of pixels are renumbered by sorting, with the same result.
    huge = np.where(true > 0, true + 2**40, 0)
    assert instance_scores(pred, huge) == dense


def square(labels: np.ndarray, label: int, rows: slice, cols: slice) -> np.ndarray:
    labels[rows, cols] = label
    return labels


def test_hand_computed_example() -> None:
    # Truth: two 5x5 squares. Prediction: 5x4 inside the first (IoU 20/25 = 0.8), the second
    # exactly (IoU 1) and one extra pixel. At t < 0.8: TP 2, FP 1, FN 0; from 0.8 on (0.8 is
    # not above 0.8): TP 1, FP 2, FN 1.
    true = square(np.zeros((10, 10), int), 1, slice(0, 5), slice(0, 5))
    square(true, 7, slice(5, 10), slice(5, 10))
    pred = square(np.zeros((10, 10), int), 3, slice(0, 5), slice(0, 4))
    square(pred, 2, slice(5, 10), slice(5, 10))
    pred[0, 9] = 9
    scores = instance_scores(pred, true)
    assert (scores["n_true"], scores["n_pred"]) == (2, 3)
    assert scores["precision_50"] == pytest.approx(2 / 3)
    assert scores["recall_50"] == 1.0
    assert scores["f1_50"] == pytest.approx(0.8)
    assert scores["ap_75"] == pytest.approx(2 / 3)
    assert (scores["tp_80"], scores["fp_80"], scores["fn_80"]) == (1, 2, 1)
    assert scores["ap_80"] == pytest.approx(0.25)
    assert scores["dsb_score"] == pytest.approx((6 * 2 / 3 + 4 * 0.25) / 10)
    # StarDist: mean_matched_score = SQ = (0.8 + 1) / 2; panoptic_quality = SQ * F1.
    assert scores["mean_matched_iou"] == pytest.approx(0.9)
    assert scores["recognition_quality"] == pytest.approx(0.8)
    assert scores["panoptic_quality"] == pytest.approx(0.9 * 0.8)


def test_split_object_is_one_match_and_one_false_positive() -> None:
    true = square(np.zeros((10, 10), int), 1, slice(0, 10), slice(0, 10))
    pred = square(np.zeros((10, 10), int), 1, slice(0, 10), slice(0, 6))
    square(pred, 2, slice(0, 10), slice(6, 10))
    scores = instance_scores(pred, true)
    # The larger part has IoU 60/100: a match at 0.5 and 0.55, none above.
    assert (scores["tp_50"], scores["fp_50"], scores["fn_50"]) == (1, 1, 0)
    assert scores["f1_50"] == pytest.approx(2 / 3)
    assert scores["tp_60"] == 0 and scores["f1_60"] == 0.0
    assert scores["dsb_score"] == pytest.approx(2 * 0.5 / 10)
    assert scores["panoptic_quality"] == pytest.approx(0.6 * 2 / 3)
    # Split in exact halves: IoU 0.5 is not above 0.5, so nothing matches.
    halves = square(pred.copy(), 2, slice(0, 10), slice(5, 10))
    halved = instance_scores(halves, true)
    assert (halved["tp_50"], halved["fp_50"], halved["fn_50"]) == (0, 2, 1)
    assert halved["dsb_score"] == 0.0 and halved["panoptic_quality"] == 0.0


def test_merged_pair_matches_at_most_one_object() -> None:
    true = square(np.zeros((10, 10), int), 4, slice(0, 10), slice(0, 7))
    square(true, 5, slice(0, 10), slice(7, 10))
    pred = (true > 0).astype(np.uint8)
    scores = instance_scores(pred, true)
    assert (scores["tp_50"], scores["fp_50"], scores["fn_50"]) == (1, 0, 1)
    assert scores["precision_50"] == 1.0 and scores["recall_50"] == 0.5
    assert scores["tp_70"] == 0  # IoU 0.7 is not above 0.7
    assert scores["dsb_score"] == pytest.approx(4 * 0.5 / 10)
    # Below 0.5 the assignment still pairs the merged object with one truth only.
    low = instance_scores(pred, true, thresholds=(0.2,))
    assert (low["tp_20"], low["fp_20"], low["fn_20"]) == (1, 0, 1)


def test_low_threshold_assignment_maximises_matches_before_iou() -> None:
    # One row of pixels. True A = 0..9, B = 10..13; predicted X = 1..11, Y = 0.
    # IoU: A-X 9/12 = 0.75, A-Y 1/10 = 0.1, B-X 2/13 = 0.15. Above 0.09 the best matching
    # (StarDist's) pairs A-Y and B-X: two matches beat the single better pair A-X.
    true = np.zeros((1, 16), int)
    true[0, 0:10], true[0, 10:14] = 1, 2
    pred = np.zeros((1, 16), int)
    pred[0, 1:12], pred[0, 0] = 5, 6
    scores = instance_scores(pred, true, thresholds=(0.09, 0.5))
    assert (scores["tp_09"], scores["fp_09"], scores["fn_09"]) == (2, 0, 0)
    assert (scores["tp_50"], scores["fp_50"], scores["fn_50"]) == (1, 1, 1)
    assert_scores_match(scores, reference_scores(pred, true, (0.09, 0.5)))


def test_image_without_objects_scores_predictions_as_false_positives() -> None:
    pred = square(np.zeros((8, 8), int), 1, slice(0, 2), slice(0, 2))
    scores = instance_scores(pred, np.zeros((8, 8), int))
    assert (scores["n_true"], scores["n_pred"], scores["fp_50"]) == (0, 1, 1)
    assert scores["precision_50"] == scores["f1_50"] == scores["dsb_score"] == 0.0
    assert scores["panoptic_quality"] == 0.0


def test_image_without_prediction_scores_zero() -> None:
    true = square(np.zeros((8, 8), int), 3, slice(0, 2), slice(0, 2))
    scores = instance_scores(np.zeros((8, 8), np.int32), true)
    assert (scores["n_true"], scores["n_pred"], scores["fn_50"]) == (1, 0, 1)
    assert scores["recall_50"] == scores["f1_50"] == scores["dsb_score"] == 0.0


def test_both_empty_has_no_score_and_is_left_out_of_the_split_average() -> None:
    empty = np.zeros((8, 8), np.uint16)
    scores = instance_scores(empty, empty)
    assert (scores["n_true"], scores["n_pred"]) == (0, 0)
    assert all(math.isnan(scores[k]) for k in ("f1_50", "dsb_score", "panoptic_quality"))
    true = square(np.zeros((8, 8), int), 1, slice(0, 4), slice(0, 4))
    metric = InstanceScores()
    metric.update(
        torch.from_numpy(np.stack([true, empty])), torch.from_numpy(np.stack([true, empty]))
    )
    assert metric.compute()["dsb_score"] == 1.0
    with pytest.warns(UserWarning, match="before the ``update``"):
        assert math.isnan(InstanceScores().compute()["dsb_score"])


def test_volumes_and_tensors_score_like_arrays() -> None:
    rng = np.random.default_rng(7)
    true = random_blobs(rng, (5, 12, 12), 4)
    pred = perturbed(rng, true)
    scores = instance_scores(torch.from_numpy(pred), torch.from_numpy(true.astype(np.int32)))
    assert scores == instance_scores(pred, true)


@pytest.mark.parametrize(
    ("pred", "true", "message"),
    [
        (np.zeros((4, 4)), np.zeros((4, 4), int), "dtype float64"),
        (np.zeros((4, 4), int), np.zeros((4, 5), int), "same size"),
        (-np.ones((4, 4), int), np.zeros((4, 4), int), "negative labels"),
        (np.zeros(4, int), np.zeros(4, int), "2-D image or 3-D volume"),
    ],
)
def test_bad_input_is_named(pred, true, message) -> None:
    with pytest.raises(ValueError, match=message):
        instance_scores(pred, true)


def split_images(seed: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    true = np.stack([random_blobs(rng, (16, 16), int(rng.integers(1, 5))) for _ in range(count)])
    pred = np.stack([perturbed(rng, t) for t in true])
    return pred, true


def test_split_scores_pool_counts_and_average_dsb_per_image() -> None:
    pred, true = split_images(seed=11, count=6)
    per_image = [instance_scores(p, t) for p, t in zip(pred, true, strict=True)]
    metric = InstanceScores()
    metric.update(torch.from_numpy(pred[:4]), torch.from_numpy(true[:4]))
    metric.update(pred[4:], true[4:])
    split = metric.compute()
    tp, n_true, n_pred = (sum(s[k] for s in per_image) for k in ("tp_50", "n_true", "n_pred"))
    assert (split["n_true"], split["n_pred"], split["tp_50"]) == (n_true, n_pred, tp)
    assert split["f1_50"] == pytest.approx(2 * tp / (n_true + n_pred))
    assert split["dsb_score"] == pytest.approx(np.mean([s["dsb_score"] for s in per_image]))
    iou_sum = sum(s["mean_matched_iou"] * s["tp_50"] for s in per_image)
    assert split["panoptic_quality"] == pytest.approx(
        iou_sum / (tp + (n_true + n_pred - 2 * tp) / 2)
    )
    # The states are sums: two halves merged (as processes are synced) give the same scores.
    first, second = InstanceScores(), InstanceScores()
    first.update(pred[:3], true[:3])
    second.update(pred[3:], true[3:])
    first.merge_state(second)
    assert first.compute() == pytest.approx(split, nan_ok=True)


DSB_DEV = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "dsb2018_nuclei_dev"


def loop_true_positives(pred: np.ndarray, true: np.ndarray, threshold: float) -> int:
    """Pairs above a threshold >= 0.5, one object mask at a time (unique by construction)."""
    count = 0
    for label in np.unique(true)[1:]:
        obj = true == label
        for other in np.unique(pred[obj]):
            if other and (obj & (pred == other)).sum() / (obj | (pred == other)).sum() > threshold:
                count += 1
    return count


@pytest.mark.skipif(not DSB_DEV.is_dir(), reason="../shared/data/dsb2018_nuclei_dev is absent")
def test_real_nuclei_masks_against_per_object_loops() -> None:
    from PIL import Image
    from scipy import ndimage

    masks = sorted((DSB_DEV / "masks").glob("*.png"))[:8]
    for path in masks:
        true = np.asarray(Image.open(path))
        assert instance_scores(true, true)["dsb_score"] == 1.0
        merged = ndimage.label(true > 0)[0]  # touching nuclei become one object
        scores = instance_scores(merged, true)
        assert scores["n_true"] == np.unique(true).size - 1
        for t in (0.5, 0.75, 0.9):
            assert scores[f"tp_{round(100 * t)}"] == loop_true_positives(merged, true, t), path
