"""Ignored pixels give no loss and no gradient in every loss, as configured from ``data``."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from unetlab.losses import DeepSupervisionLoss
from unetlab.losses.deep_supervision import _resize_to

IGNORE = 255
LOSSES = ["ce", "dice", "dice_ce", "focal", "weighted_ce"]


def labelled_batch(seed: int = 0):
    """Logits, the true target, the target with its first two columns ignored, a weight map."""
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn((2, 2, 6, 7), generator=generator)
    target = torch.randint(0, 2, (2, 6, 7), generator=generator)
    ignored = target.clone()
    ignored[..., :2] = IGNORE
    weight_map = torch.rand((2, 6, 7), generator=generator) + 0.5
    return logits, target, ignored, weight_map


def configured_loss(make_config, name: str):
    cfg = make_config([f"loss={name}", f"data.ignore_index={IGNORE}"])
    loss = instantiate(cfg.loss)
    assert loss.ignore_index == IGNORE
    return loss


@pytest.mark.parametrize("name", LOSSES)
def test_ignored_pixels_give_no_gradient_and_no_loss(make_config, name):
    loss = configured_loss(make_config, name)
    logits, target, ignored, weight_map = labelled_batch()
    logits.requires_grad_()
    value = loss(logits, ignored, weight_map)
    value.backward()
    assert logits.grad is not None
    assert torch.count_nonzero(logits.grad[..., :2]) == 0
    assert torch.count_nonzero(logits.grad[..., 2:]) > 0
    # The reference: the same loss on the image with the ignored columns cut away.
    kept = loss(logits[..., 2:], target[..., 2:], weight_map[..., 2:])
    torch.testing.assert_close(value, kept)


@pytest.mark.parametrize("name", LOSSES)
def test_deep_supervision_ignores_the_same_pixels(make_config, name):
    loss = DeepSupervisionLoss(configured_loss(make_config, name))
    logits, target, ignored, weight_map = labelled_batch(seed=1)
    coarse = torch.randn((2, 2, 3, 4), generator=torch.Generator().manual_seed(2))
    final, coarse = logits.requires_grad_(), coarse.requires_grad_()
    value = loss([coarse, final], ignored, weight_map)
    value.backward()
    assert torch.count_nonzero(final.grad[..., :2]) == 0
    coarse_grad = coarse.grad.clone()

    coarse.grad, final.grad = None, None
    weights = loss.level_weights(2)
    kept = sum(
        weight
        * loss.loss(_resize_to(output, target)[..., 2:], target[..., 2:], weight_map[..., 2:])
        for weight, output in zip(weights, [coarse, final], strict=True)
    )
    kept.backward()
    torch.testing.assert_close(value, kept)
    # The coarse head gets exactly the gradient of the kept pixels.
    torch.testing.assert_close(coarse_grad, coarse.grad)


def test_default_ignore_index_follows_the_data_default(make_config):
    cfg = make_config(["loss=dice_ce"])
    assert instantiate(cfg.loss).dice.ignore_index == cfg.data.ignore_index == -100
