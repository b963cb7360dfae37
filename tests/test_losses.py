"""Losses against torch.nn.functional references and hand-computed values."""

from __future__ import annotations

import inspect
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import OmegaConf

from unetlab.config_location import CONFIG_DIR
from unetlab.losses import (
    ClDiceLoss,
    CrossEntropyLoss,
    DeepSupervisionLoss,
    DiceCELoss,
    DiceLoss,
    FocalLoss,
    WeightedCrossEntropyLoss,
)

CONF_DIR = Path(CONFIG_DIR, "loss")


def batch(num_classes: int = 3, shape: tuple[int, ...] = (2, 5, 6), seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn((shape[0], num_classes, *shape[1:]), generator=generator)
    target = torch.randint(0, num_classes, shape, generator=generator)
    return logits.requires_grad_(), target


ALL_LOSSES = [
    CrossEntropyLoss(),
    DiceLoss(),
    DiceCELoss(),
    FocalLoss(),
    WeightedCrossEntropyLoss(),
    DeepSupervisionLoss(DiceCELoss()),
    ClDiceLoss(classes=[1, 2]),
]


@pytest.mark.parametrize("loss", ALL_LOSSES, ids=lambda loss: type(loss).__name__)
@pytest.mark.parametrize("shape", [(2, 5, 6), (1, 3, 4, 5)], ids=["2d", "3d"])
def test_common_signature_scalar_and_gradient(loss, shape):
    logits, target = batch(shape=shape)
    weight_map = torch.rand(target.shape) + 0.5
    value = loss(logits, target, weight_map)
    assert value.ndim == 0 and torch.isfinite(value)
    value.backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()
    expected = isinstance(loss, WeightedCrossEntropyLoss)
    assert loss.requires_weight_map is expected


def test_cross_entropy_matches_torch():
    logits, target = batch()
    target[0, 0] = -100
    torch.testing.assert_close(CrossEntropyLoss()(logits, target), F.cross_entropy(logits, target))
    weights = [0.2, 1.0, 3.0]
    torch.testing.assert_close(
        CrossEntropyLoss(class_weights=weights, label_smoothing=0.1)(logits, target),
        F.cross_entropy(logits, target, weight=torch.tensor(weights), label_smoothing=0.1),
    )
    logits, target = batch(seed=1)
    target[target == 2] = 255
    torch.testing.assert_close(
        CrossEntropyLoss(weights, ignore_index=255)(logits, target),
        F.cross_entropy(logits, target, weight=torch.tensor(weights), ignore_index=255),
    )


def test_cross_entropy_hand_computed_and_all_ignored():
    logits = torch.zeros(1, 2, 1, 2)
    target = torch.tensor([[[1, 0]]])
    assert CrossEntropyLoss()(logits, target).item() == pytest.approx(math.log(2))
    # Weighted mean: (3 ln2 + 1 ln2) / (3 + 1) = ln 2.
    assert CrossEntropyLoss([1.0, 3.0])(logits, target).item() == pytest.approx(math.log(2))
    ignored = torch.full((1, 1, 2), -100)
    assert CrossEntropyLoss()(logits, ignored).item() == 0.0
    with pytest.raises(ValueError, match="one weight per class"):
        CrossEntropyLoss([1.0, 2.0, 3.0])(logits, target)


def test_dice_hand_computed():
    logits = torch.zeros(1, 2, 1, 2)  # p = 0.5 everywhere
    target = torch.tensor([[[0, 1]]])
    # Each class: intersection 0.5, sum(p) = 1, sum(g) = 1 -> dice = (1 + s) / (2 + s).
    smooth = 1e-5
    expected = 1 - (1 + smooth) / (2 + smooth)
    assert DiceLoss(smooth=smooth)(logits, target).item() == pytest.approx(expected)
    perfect = torch.tensor([[[[20.0, -20.0]], [[-20.0, 20.0]]]])
    assert DiceLoss()(perfect, target).item() == pytest.approx(0.0, abs=1e-6)


def test_dice_class_empty_in_the_batch_is_not_silently_zeroed():
    target = torch.tensor([[[0, 0, 1, 1]]])  # class 2 absent from the batch
    confident = torch.full((1, 3, 1, 4), -20.0)
    confident[0, 0, 0, :2] = 20.0
    confident[0, 1, 0, 2:] = 20.0
    per_class = DiceLoss().per_class(confident, target)
    assert per_class[2].item() == pytest.approx(0.0, abs=1e-3)  # absent and not predicted
    false_positive = confident.clone()
    false_positive[0, 2, 0, 3] = 40.0  # one pixel predicted as the absent class
    per_class = DiceLoss().per_class(false_positive, target)
    assert per_class[2].item() == pytest.approx(1.0, abs=1e-3)
    assert DiceLoss()(false_positive, target) > DiceLoss()(confident, target) + 0.3


def test_dice_background_and_ignore_index():
    logits, target = batch()
    assert DiceLoss(include_background=False).per_class(logits, target).shape == (2,)
    full = DiceLoss().per_class(logits, target)
    torch.testing.assert_close(DiceLoss(include_background=False)(logits, target), full[1:].mean())
    target[:, 0] = 255
    changed = logits.detach().clone()
    changed[:, :, 0] = torch.randn_like(changed[:, :, 0])
    loss = DiceLoss(ignore_index=255)
    torch.testing.assert_close(loss(logits, target), loss(changed, target))


def test_dice_ce_is_the_weighted_sum():
    logits, target = batch()
    expected = 0.3 * DiceLoss()(logits, target) + 2.0 * CrossEntropyLoss()(logits, target)
    torch.testing.assert_close(DiceCELoss(dice_weight=0.3, ce_weight=2.0)(logits, target), expected)


def test_focal_gamma_zero_is_cross_entropy():
    logits, target = batch()
    target[0, 1] = -100
    torch.testing.assert_close(
        FocalLoss(gamma=0.0)(logits, target), F.cross_entropy(logits, target)
    )


def test_focal_hand_computed():
    logits = torch.zeros(1, 2, 1, 1)  # p_t = 0.5
    target = torch.tensor([[[1]]])
    assert FocalLoss(gamma=2.0)(logits, target).item() == pytest.approx(0.25 * math.log(2))
    alpha = FocalLoss(gamma=2.0, alpha=[1.0, 0.5])(logits, target)
    assert alpha.item() == pytest.approx(0.125 * math.log(2))
    logits, target = batch()
    assert FocalLoss(gamma=2.0)(logits, target) < F.cross_entropy(logits, target)
    with pytest.raises(ValueError, match="gamma"):
        FocalLoss(gamma=-1.0)


def test_weighted_cross_entropy():
    logits, target = batch()
    loss = WeightedCrossEntropyLoss()
    ce = F.cross_entropy(logits, target)
    torch.testing.assert_close(loss(logits, target, torch.ones(target.shape)), ce)
    torch.testing.assert_close(loss(logits, target, torch.full(target.shape, 2.0)), 2 * ce)
    weights = torch.rand(target.shape)
    per_pixel = F.cross_entropy(logits, target, reduction="none")
    torch.testing.assert_close(loss(logits, target, weights), (per_pixel * weights).mean())
    with pytest.raises(ValueError, match="loss=weighted_ce needs per-pixel weight maps"):
        loss(logits, target)
    with pytest.raises(ValueError, match="weight_map shape"):
        loss(logits, target, torch.ones(2, 5, 5))


def test_weighted_cross_entropy_ignores_nan_weights_on_ignored_pixels():
    logits, target = batch()
    weights = torch.ones(target.shape)
    target[0, 0, 0] = -100
    weights[0, 0, 0] = float("nan")
    value = WeightedCrossEntropyLoss()(logits, target, weights)
    torch.testing.assert_close(value, F.cross_entropy(logits, target))


def test_deep_supervision_weights_and_pass_through():
    logits, target = batch()
    inner = CrossEntropyLoss()
    wrapped = DeepSupervisionLoss(inner)
    torch.testing.assert_close(wrapped(logits, target), inner(logits, target))
    assert wrapped.level_weights(3) == pytest.approx([1 / 7, 2 / 7, 4 / 7])
    outputs = [batch(seed=s)[0] for s in (1, 2, 3)]
    expected = sum(
        w * inner(o, target) for w, o in zip([1 / 7, 2 / 7, 4 / 7], outputs, strict=True)
    )
    torch.testing.assert_close(wrapped(outputs, target), expected)
    custom = DeepSupervisionLoss(inner, weights=[1.0, 3.0])
    torch.testing.assert_close(
        custom(tuple(outputs[:2]), target),
        0.25 * inner(outputs[0], target) + 0.75 * inner(outputs[1], target),
    )
    with pytest.raises(ValueError, match="3 outputs but 2"):
        custom(outputs, target)
    with pytest.raises(ValueError, match="non-negative"):
        DeepSupervisionLoss(inner, weights=[0.0, 0.0])


def test_deep_supervision_upsamples_coarse_outputs_and_forwards_weight_maps():
    logits, target = batch(shape=(2, 8, 8))
    coarse = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(5))
    coarse.requires_grad_()
    weight_map = torch.rand(target.shape, generator=torch.Generator().manual_seed(6)) + 0.5
    inner = WeightedCrossEntropyLoss()
    loss = DeepSupervisionLoss(inner)
    assert loss.requires_weight_map
    assert not DeepSupervisionLoss(DiceLoss()).requires_weight_map
    value = loss([coarse, logits], target, weight_map)
    value.backward()
    coarse_grad, final_grad = coarse.grad.clone(), logits.grad.clone()
    # Reference: the coarse output upsampled bilinearly to 8x8, weights 1/3 and 2/3.
    coarse.grad, logits.grad = None, None
    upsampled = F.interpolate(coarse, size=(8, 8), mode="bilinear", align_corners=False)
    expected = inner(upsampled, target, weight_map) / 3 + 2 * inner(logits, target, weight_map) / 3
    expected.backward()
    torch.testing.assert_close(value, expected)
    torch.testing.assert_close(coarse_grad, coarse.grad)
    torch.testing.assert_close(final_grad, logits.grad)
    assert coarse_grad.abs().sum() > 0
    # The weight map reaches every level: doubling it doubles the loss.
    torch.testing.assert_close(loss([coarse, logits], target, 2 * weight_map), 2 * value)
    with pytest.raises(ValueError, match="weighted_ce"):
        loss([coarse, logits], target)
    instances = np.zeros((12, 12), dtype=np.int32)
    instances[2:5, 2:5], instances[2:5, 6:9] = 1, 2
    np.testing.assert_array_equal(
        loss.make_weight_map(instances, instances > 0),
        WeightedCrossEntropyLoss().make_weight_map(instances, instances > 0),
    )
    with pytest.raises(AttributeError, match="does not use weight maps"):
        DeepSupervisionLoss(DiceLoss()).make_weight_map(instances)


@pytest.mark.parametrize(
    ("logits", "target", "message"),
    [
        (torch.randn(2, 1, 4, 4), torch.zeros(2, 4, 4, dtype=torch.long), "C >= 2"),
        (torch.randn(2, 2, 4, 4), torch.zeros(2, 4, 5, dtype=torch.long), "does not match"),
        (torch.randn(2, 2, 4, 4), torch.zeros(2, 4, 4), "integer class indices"),
    ],
)
@pytest.mark.parametrize("loss", ALL_LOSSES[:4], ids=lambda loss: type(loss).__name__)
def test_shape_errors(loss, logits, target, message):
    with pytest.raises(ValueError, match=message):
        loss(logits, target)


@pytest.mark.parametrize("name", ["ce", "dice", "dice_ce", "focal", "weighted_ce", "cldice"])
def test_configs_instantiate_with_every_argument_listed(name):
    config = OmegaConf.load(CONF_DIR / f"{name}.yaml")
    root = OmegaConf.create({"model": {"num_classes": 2}, "loss": config})
    loss = instantiate(root.loss)
    assert loss.requires_weight_map is (name == "weighted_ce")
    arguments = set(config) - {"_target_"}
    assert arguments == set(inspect.signature(type(loss)).parameters)
