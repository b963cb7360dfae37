"""Fuzzing MeanIoU: any input either gives the reference result or raises ValueError."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from unetlab.metrics import MeanIoU

FUZZ = settings(max_examples=60, deadline=None)


@st.composite
def metric_inputs(draw: st.DrawFn) -> dict:
    num_classes = draw(st.integers(2, 4))
    ignore_index = draw(st.sampled_from([None, 255, -100, 0, num_classes - 1]))
    n, h, w = draw(st.integers(1, 2)), draw(st.integers(1, 5)), draw(st.integers(1, 5))
    values = st.integers(-2, num_classes + 1)
    if ignore_index is not None:
        values = values | st.just(ignore_index)
    target = draw(arrays(np.int64, (n, h, w), elements=values))
    if draw(st.booleans()):  # scores (N, C', H', W'), sometimes with the wrong size
        channels = draw(st.sampled_from([num_classes, num_classes, num_classes + 1]))
        size = draw(st.sampled_from([(h, w), (h, w), (h + 1, w)]))
        preds = draw(
            arrays(
                np.float32,
                (n, channels, *size),
                elements=st.floats(-5, 5, width=32, allow_nan=False),
            )
        )
    else:  # label maps, sometimes out of range or floating point
        preds = draw(arrays(np.int64, (n, h, w), elements=st.integers(-1, num_classes)))
        if draw(st.integers(0, 4)) == 0:
            preds = preds.astype(np.float32)
    if draw(st.integers(0, 6)) == 0:
        target = target.astype(np.float32)
    return {
        "num_classes": num_classes,
        "ignore_index": ignore_index,
        "preds": preds,
        "target": target,
    }


def reference(case: dict) -> np.ndarray | None:
    """The confusion matrix by plain loops, or None where the input is invalid."""
    c, ignore = case["num_classes"], case["ignore_index"]
    preds, target = case["preds"], case["target"]
    if target.dtype.kind == "f":
        return None
    if preds.ndim == 4:
        if preds.shape[1] != c or preds.shape[2:] != target.shape[1:]:
            return None
        labels = preds.argmax(1)
    else:
        if preds.dtype.kind == "f":
            return None
        labels = preds
    matrix = np.zeros((c, c), np.int64)
    for truth, predicted in zip(target.ravel().tolist(), labels.ravel().tolist(), strict=True):
        if ignore is not None and truth == ignore:
            continue
        if not 0 <= truth < c or not 0 <= predicted < c:
            return None
        matrix[truth, predicted] += 1
    return matrix


@FUZZ
@given(metric_inputs())
def test_mean_iou_is_right_or_raises_value_error(case: dict):
    metric = MeanIoU(case["num_classes"], ignore_index=case["ignore_index"])
    expected = reference(case)
    try:
        metric.update(torch.from_numpy(case["preds"]), torch.from_numpy(case["target"]))
    except ValueError as error:
        assert expected is None, f"valid input rejected: {error}"
        assert str(error) and "\n" not in str(error)
        return
    assert expected is not None, "invalid input accepted"
    result = metric.compute()
    assert np.array_equal(result["confusion_matrix"].numpy(), expected)
    present = (expected.sum(0) + expected.sum(1)) > 0
    if case["ignore_index"] is not None and 0 <= case["ignore_index"] < case["num_classes"]:
        present[case["ignore_index"]] = False
    union = expected.sum(0) + expected.sum(1) - np.diag(expected)
    iou = np.diag(expected)[present] / union[present]
    if iou.size:
        assert np.isclose(float(result["miou"]), iou.mean(), atol=1e-6)
    else:
        assert torch.isnan(result["miou"])
