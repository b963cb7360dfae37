"""clDice: soft skeletons as the paper's code makes them, and gaps cost more than pixels."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from unetlab.losses import ClDiceLoss
from unetlab.losses.cldice import soft_skeleton


def reference_skeleton(image: torch.Tensor, iterations: int) -> torch.Tensor:
    """2-D soft skeleton as written in the clDice authors' code (jocpae/clDice)."""

    def erode(x: torch.Tensor) -> torch.Tensor:
        p1 = -F.max_pool2d(-x, (3, 1), (1, 1), (1, 0))
        p2 = -F.max_pool2d(-x, (1, 3), (1, 1), (0, 1))
        return torch.min(p1, p2)

    def dilate(x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(x, (3, 3), (1, 1), (1, 1))

    skeleton = F.relu(image - dilate(erode(image)))
    for _ in range(iterations):
        image = erode(image)
        delta = F.relu(image - dilate(erode(image)))
        skeleton = skeleton + F.relu(delta - skeleton * delta)
    return skeleton


def test_2d_skeleton_matches_the_authors_code() -> None:
    probabilities = torch.rand(2, 3, 24, 20, generator=torch.Generator().manual_seed(0))
    for iterations in (1, 3, 5):
        torch.testing.assert_close(
            soft_skeleton(probabilities, iterations), reference_skeleton(probabilities, iterations)
        )


def test_3d_skeleton_of_a_volume_constant_in_z_is_the_2d_skeleton_of_each_slice() -> None:
    plane = torch.rand(1, 1, 16, 18, generator=torch.Generator().manual_seed(1))
    volume = plane.unsqueeze(2).expand(1, 1, 5, 16, 18).contiguous()
    expected = soft_skeleton(plane, 3).unsqueeze(2).expand_as(volume)
    torch.testing.assert_close(soft_skeleton(volume, 3), expected)


def line_logits(prediction: torch.Tensor) -> torch.Tensor:
    """Confident 2-class logits of a binary ``(H, W)`` prediction, as ``(1, 2, H, W)``."""
    foreground = 20.0 * (2 * prediction.float() - 1)
    return torch.stack([-foreground, foreground])[None]


def test_a_gap_costs_more_than_the_same_pixels_added_alongside() -> None:
    target = torch.zeros(32, 32, dtype=torch.long)
    target[14:17, 2:30] = 1  # a membrane 3 px thick
    gap = target.clone()
    gap[14:17, 15:18] = 0  # 9 pixels missing: the membrane is cut
    thicker = target.clone()
    thicker[17, 10:19] = 1  # 9 pixels too many: still connected
    loss = ClDiceLoss(classes=[1], iterations=2)
    batch = target[None]
    assert loss.cldice(line_logits(target), batch).item() == pytest.approx(0.0, abs=1e-6)
    cut, widened = (loss.cldice(line_logits(p), batch).item() for p in (gap, thicker))
    assert widened == pytest.approx(0.0, abs=1e-6)  # topology kept: both skeletons inside
    assert cut > 0.02
    # Pixel-counting Dice sees the two mistakes alike.
    dice = [loss.region.dice(line_logits(p), batch).item() for p in (gap, thicker)]
    assert dice[0] == pytest.approx(dice[1], abs=0.01)


def test_ignored_pixels_and_bad_settings() -> None:
    logits = torch.randn(1, 2, 8, 8, generator=torch.Generator().manual_seed(2))
    target = torch.randint(0, 2, (1, 8, 8), generator=torch.Generator().manual_seed(3))
    ignored = target.clone()
    ignored[0, :4] = -100
    loss = ClDiceLoss()
    changed = logits.clone()
    changed[0, :, :4] += 5.0  # only where the target is ignored
    torch.testing.assert_close(loss(logits, ignored), loss(changed, ignored))
    with pytest.raises(ValueError, match=r"^loss\.classes=\[2\]: \[2\] are not classes of 2-class"):
        ClDiceLoss(classes=[2])(logits, target)
    with pytest.raises(ValueError, match=r"^loss\.alpha=1\.5 must be in \[0, 1\]$"):
        ClDiceLoss(alpha=1.5)
