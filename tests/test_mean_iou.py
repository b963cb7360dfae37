"""MeanIoU against torchmetrics, scikit-learn and hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import confusion_matrix, jaccard_score
from torchmetrics.classification import MulticlassJaccardIndex

from unetlab.metrics import MeanIoU


@st.composite
def segmentation_batches(draw):
    """Random (preds, target, num_classes, ignore_index) with label-map or logit preds."""
    num_classes = draw(st.integers(2, 5))
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 6)), draw(st.integers(1, 6)))
    seed = draw(st.integers(0, 2**31 - 1))
    ignore_index = draw(st.sampled_from([None, 255]))
    as_logits = draw(st.booleans())
    generator = torch.Generator().manual_seed(seed)
    target = torch.randint(0, num_classes, shape, generator=generator)
    if ignore_index is not None:
        ignored = torch.rand(shape, generator=generator) < 0.2
        target[ignored] = ignore_index
    if as_logits:
        preds = torch.randn((shape[0], num_classes, *shape[1:]), generator=generator)
    else:
        preds = torch.randint(0, num_classes, shape, generator=generator)
    return preds, target, num_classes, ignore_index


def _labels(preds: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return preds.argmax(1) if preds.ndim == target.ndim + 1 else preds


@settings(max_examples=40, deadline=None)
@given(segmentation_batches())
def test_matches_sklearn_and_torchmetrics(batch):
    preds, target, num_classes, ignore_index = batch
    metric = MeanIoU(num_classes, ignore_index=ignore_index)
    metric.update(preds, target)
    result = metric.compute()

    labels = _labels(preds, target).flatten().numpy()
    truth = target.flatten().numpy()
    valid = truth != ignore_index if ignore_index is not None else np.ones_like(truth, bool)
    expected_confmat = (
        confusion_matrix(truth[valid], labels[valid], labels=list(range(num_classes)))
        if valid.any()  # scikit-learn refuses empty inputs (every pixel ignored)
        else np.zeros((num_classes, num_classes), dtype=np.int64)
    )
    np.testing.assert_array_equal(result["confusion_matrix"].numpy(), expected_confmat)

    present = (expected_confmat.sum(0) + expected_confmat.sum(1)) > 0
    iou = result["iou"].numpy()
    assert np.array_equal(np.isnan(iou), ~present)
    if valid.any():
        sk_iou = jaccard_score(
            truth[valid],
            labels[valid],
            labels=list(range(num_classes)),
            average=None,
            zero_division=0,
        )
        np.testing.assert_allclose(iou[present], sk_iou[present], rtol=1e-6)

    tm_kwargs = {"num_classes": num_classes, "ignore_index": ignore_index}
    tm_none = MulticlassJaccardIndex(average="none", **tm_kwargs)(_labels(preds, target), target)
    np.testing.assert_allclose(iou[present], tm_none.numpy()[present], rtol=1e-6)
    if present.any():
        tm_macro = MulticlassJaccardIndex(average="macro", **tm_kwargs)(preds, target)
        assert result["miou"].item() == pytest.approx(tm_macro.item(), rel=1e-6)
        accuracy = (labels[valid] == truth[valid]).mean()
        assert result["pixel_accuracy"].item() == pytest.approx(accuracy, rel=1e-6)
    else:
        assert math.isnan(result["miou"].item())


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 4), st.lists(st.integers(0, 2**31 - 1), min_size=2, max_size=4))
def test_several_updates_equal_one_update_on_all_pixels(num_classes, seeds):
    batches = []
    for seed in seeds:
        generator = torch.Generator().manual_seed(seed)
        size = int(torch.randint(1, 6, (1,), generator=generator))
        target = torch.randint(0, num_classes + 1, (1, size, 3), generator=generator)
        target[target == num_classes] = 255
        batches.append((torch.randn(1, num_classes, size, 3, generator=generator), target))
    metric = MeanIoU(num_classes, ignore_index=255)
    for logits, target in batches:
        metric.update(logits, target)
    pooled = MeanIoU(num_classes, ignore_index=255)
    pooled.update(torch.cat([p for p, _ in batches], 2), torch.cat([t for _, t in batches], 1))
    a, b = metric.compute(), pooled.compute()
    assert torch.equal(a["confusion_matrix"], b["confusion_matrix"])
    torch.testing.assert_close(a["miou"], b["miou"], equal_nan=True)


def test_hand_computed_binary_case():
    target = torch.tensor([[[0, 0, 1, 1]]])
    preds = torch.tensor([[[0, 1, 1, 1]]])
    metric = MeanIoU(2)
    metric.update(preds, target)
    result = metric.compute()
    assert result["confusion_matrix"].tolist() == [[1, 1], [0, 2]]
    torch.testing.assert_close(result["iou"], torch.tensor([1 / 2, 2 / 3]))
    torch.testing.assert_close(result["dice"], torch.tensor([2 / 3, 4 / 5]))
    assert result["miou"].item() == pytest.approx(7 / 12)
    assert result["pixel_accuracy"].item() == pytest.approx(3 / 4)
    assert result["confusion_matrix"].dtype == torch.int64


def test_logits_probabilities_and_labels_agree():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 5, 7, generator=generator)
    target = torch.randint(0, 3, (2, 5, 7), generator=generator)
    results = []
    for preds in (logits, logits.softmax(1), logits.argmax(1)):
        metric = MeanIoU(3)
        metric.update(preds, target)
        results.append(metric.compute()["confusion_matrix"])
    assert torch.equal(results[0], results[1])
    assert torch.equal(results[0], results[2])


def test_three_dimensional_inputs():
    target = torch.zeros(1, 2, 2, 2, dtype=torch.long)
    target[0, 1] = 1
    logits = torch.zeros(1, 2, 2, 2, 2)
    logits[0, 1, 1] = 5.0
    logits[0, 1, 0, 0, 0] = 5.0
    metric = MeanIoU(2)
    metric.update(logits, target)
    result = metric.compute()
    assert result["confusion_matrix"].tolist() == [[3, 1], [0, 4]]
    torch.testing.assert_close(result["iou"], torch.tensor([3 / 4, 4 / 5]))


def test_ignore_index_pixels_are_skipped_whatever_the_prediction():
    target = torch.tensor([[[0, 1, 255, 255]]])
    metric = MeanIoU(2, ignore_index=255)
    metric.update(torch.tensor([[[0, 1, 0, 1]]]), target)
    result = metric.compute()
    assert result["confusion_matrix"].tolist() == [[1, 0], [0, 1]]
    assert result["miou"].item() == 1.0


def test_ignore_index_inside_class_range_leaves_that_class_out():
    target = torch.tensor([[[0, 1, 2, 2]]])
    preds = torch.tensor([[[0, 1, 1, 2]]])
    metric = MeanIoU(3, ignore_index=0)
    metric.update(preds, target)
    result = metric.compute()
    assert math.isnan(result["iou"][0].item())
    assert result["miou"].item() == pytest.approx((1 / 2 + 1 / 2) / 2)
    tm = MulticlassJaccardIndex(num_classes=3, ignore_index=0, average="macro")(preds, target)
    assert result["miou"].item() == pytest.approx(tm.item())


def test_absent_classes_are_nan_and_left_out_of_the_mean():
    target = torch.tensor([[[0, 0, 1, 1]]])
    preds = torch.tensor([[[0, 0, 1, 2]]])  # class 2 predicted but absent; class 3 nowhere
    metric = MeanIoU(4)
    metric.update(preds, target)
    result = metric.compute()
    iou = result["iou"]
    assert iou[:3].tolist() == pytest.approx([1.0, 0.5, 0.0])
    assert math.isnan(iou[3].item()) and math.isnan(result["dice"][3].item())
    assert result["miou"].item() == pytest.approx((1.0 + 0.5 + 0.0) / 3)


def test_include_background_false_drops_class_zero_from_the_mean():
    target = torch.tensor([[[0, 0, 1, 1]]])
    preds = torch.tensor([[[0, 1, 1, 1]]])
    metric = MeanIoU(2, include_background=False)
    metric.update(preds, target)
    result = metric.compute()
    assert result["miou"].item() == pytest.approx(2 / 3)
    assert result["iou"][0].item() == pytest.approx(1 / 2)


def test_nothing_accumulated_gives_nan():
    metric = MeanIoU(3, ignore_index=255)
    metric.update(torch.zeros(1, 2, 2, dtype=torch.long), torch.full((1, 2, 2), 255))
    result = metric.compute()
    assert math.isnan(result["miou"].item())
    assert math.isnan(result["pixel_accuracy"].item())
    assert torch.isnan(result["iou"]).all()


def test_reset_clears_the_matrix():
    metric = MeanIoU(2)
    metric.update(torch.tensor([[1, 0]]), torch.tensor([[1, 1]]))
    metric.reset()
    metric.update(torch.tensor([[1, 1]]), torch.tensor([[1, 1]]))
    assert metric.compute()["confusion_matrix"].tolist() == [[0, 0], [0, 2]]


def test_bad_mask_values_name_the_values_and_the_fix():
    metric = MeanIoU(2)
    with pytest.raises(ValueError, match=r"mask has values \{255\}; expected 0\.\.1.*mask_mapping"):
        metric.update(torch.zeros(1, 2, 2, dtype=torch.long), torch.tensor([[[0, 255], [1, 0]]]))
    with pytest.raises(ValueError, match=r"preds has values \{-1\}"):
        metric.update(torch.tensor([[[0, -1]]]), torch.tensor([[[0, 1]]]))


@pytest.mark.parametrize(
    ("preds", "target", "message"),
    [
        (torch.randn(1, 3, 4, 4), torch.zeros(1, 4, 4, dtype=torch.long), "3 channels"),
        (torch.rand(1, 4, 4), torch.zeros(1, 4, 4, dtype=torch.long), "floating point"),
        (torch.randn(1, 2, 4, 4), torch.zeros(1, 4, 5, dtype=torch.long), "shape"),
        (torch.zeros(1, 4, 4, dtype=torch.long), torch.zeros(1, 4, 4), "integer label map"),
        (torch.zeros(4, dtype=torch.long), torch.zeros(1, 2, 2, dtype=torch.long), "shape"),
    ],
)
def test_invalid_inputs_raise(preds, target, message):
    with pytest.raises(ValueError, match=message):
        MeanIoU(2).update(preds, target)


def test_class_names():
    assert MeanIoU(2).class_names == ["class_0", "class_1"]
    assert MeanIoU(3).class_names == ["class_0", "class_1", "class_2"]
    metric = MeanIoU(2, class_names=("cell", "membrane"))
    named = metric.named(torch.tensor([0.25, 0.75]))
    assert list(named) == ["cell", "membrane"]
    assert named["membrane"].item() == 0.75
    with pytest.raises(ValueError, match="one name per class"):
        MeanIoU(3, class_names=["a", "b"])
    with pytest.raises(ValueError, match="at least 2"):
        MeanIoU(1)


def test_ties_and_nan_scores_count_as_argmax_does():
    nan = float("nan")
    logits = torch.tensor(
        [[[[1.0, nan, 0.5, 3.0]], [[1.0, 0.0, nan, 3.0]], [[0.0, 2.0, 0.5, 1.0]]]]
    )
    target = torch.tensor([[[0, 1, 2, 1]]])
    from_scores, from_labels = MeanIoU(3), MeanIoU(3)
    from_scores.update(logits, target)
    from_labels.update(logits.argmax(1), target)
    assert torch.equal(from_scores.confmat, from_labels.confmat)
    assert from_scores.confmat.sum() == 4


def test_an_empty_batch_adds_nothing():
    metric = MeanIoU(2, ignore_index=255)
    metric.update(torch.zeros(0, 2, 4, 4), torch.zeros(0, 4, 4, dtype=torch.long))
    assert metric.confmat.sum() == 0
