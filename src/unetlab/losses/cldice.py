"""clDice (Shit et al., CVPR 2021): a loss that keeps thin structures connected.

Soft Dice and cross-entropy count pixels, so a membrane or vessel broken by a one-pixel gap
costs almost nothing. clDice compares skeletons instead: the predicted skeleton must lie
inside the true structure (topology precision) and the true skeleton inside the predicted
structure (topology sensitivity), so a gap in the prediction is penalised over the whole
length of skeleton it cuts. Skeletons are made differentiable with min- and max-pooling
(soft morphology) and work for 2-D and 3-D logits alike.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from unetlab.losses.base import SegmentationLoss
from unetlab.losses.dice_ce import DiceCELoss

MAX_POOL = {2: F.max_pool2d, 3: F.max_pool3d}


def soft_erode(image: Tensor) -> Tensor:
    """Erosion of ``(N, C, *spatial)`` values in [0, 1] by a cross (one pixel along each axis)."""
    pool, spatial = MAX_POOL[image.ndim - 2], image.ndim - 2
    eroded = []
    for axis in range(spatial):
        kernel = [1] * spatial
        kernel[axis] = 3
        padding = [k // 2 for k in kernel]
        eroded.append(-pool(-image, kernel, stride=1, padding=padding))
    return torch.stack(eroded).amin(0)


def soft_dilate(image: Tensor) -> Tensor:
    """Dilation by a 3x3 (3x3x3) square."""
    return MAX_POOL[image.ndim - 2](image, 3, stride=1, padding=1)


def soft_skeleton(image: Tensor, iterations: int) -> Tensor:
    """Soft skeleton of ``(N, C, *spatial)`` values in [0, 1] (binary in, binary out).

    ``iterations`` erosions peel structures up to about ``2 * iterations + 1`` pixels thick.
    """
    skeleton = F.relu(image - soft_dilate(soft_erode(image)))
    for _ in range(iterations):
        image = soft_erode(image)
        delta = F.relu(image - soft_dilate(soft_erode(image)))
        skeleton = skeleton + F.relu(delta - skeleton * delta)
    return skeleton


class ClDiceLoss(SegmentationLoss):
    """``(1 - alpha) * (Dice + CE) + alpha * (1 - clDice)`` of the thin ``classes``.

    Per class ``c`` with softmax probabilities ``p``, one-hot target ``g`` and soft skeletons
    ``S(.)`` summed over the batch::

        precision = (sum S(p) g + smooth) / (sum S(p) + smooth)
        sensitivity = (sum S(g) p + smooth) / (sum S(g) + smooth)
        clDice = 2 precision sensitivity / (precision + sensitivity)

    Args:
        classes: The classes whose connectivity matters (e.g. ``[1]``, the membrane).
        alpha: Weight of the clDice term in [0, 1]; the rest goes to Dice + cross-entropy.
        iterations: Soft-skeleton iterations, at least half the structures' thickness.
        smooth: Added to numerators and denominators.
        class_weights: Per-class weights of the cross-entropy term.
        ignore_index: Target value whose pixels do not contribute.
    """

    def __init__(
        self,
        classes: Sequence[int] = (1,),
        alpha: float = 0.5,
        iterations: int = 3,
        smooth: float = 1.0,
        class_weights: Sequence[float] | None = None,
        ignore_index: int = -100,
    ) -> None:
        super().__init__()
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"loss.alpha={alpha} must be in [0, 1]")
        if iterations < 1:
            raise ValueError(f"loss.iterations={iterations} must be >= 1")
        if not classes:
            raise ValueError("loss.classes is empty: name the thin structures' classes, e.g. [1]")
        self.classes = [int(c) for c in classes]
        self.alpha = alpha
        self.iterations = iterations
        self.smooth = smooth
        self.ignore_index = ignore_index
        self.region = DiceCELoss(class_weights=class_weights, ignore_index=ignore_index)

    def forward(self, logits: Tensor, target: Tensor, weight_map: Tensor | None = None) -> Tensor:
        """The weighted sum; ``weight_map`` is not used."""
        self.check_inputs(logits, target)
        if logits.ndim - 2 not in MAX_POOL:
            raise ValueError(f"clDice takes 2-D or 3-D logits, got shape {tuple(logits.shape)}")
        outside = [c for c in self.classes if not 0 <= c < logits.shape[1]]
        if outside:
            raise ValueError(
                f"loss.classes={self.classes}: {outside} are not classes of "
                f"{logits.shape[1]}-class logits"
            )
        return (1 - self.alpha) * self.region(logits, target) + self.alpha * self.cldice(
            logits, target
        )

    def cldice(self, logits: Tensor, target: Tensor) -> Tensor:
        """``1 - clDice``, averaged over ``classes``."""
        valid = (target != self.ignore_index).unsqueeze(1)
        probabilities = logits.float().softmax(1)[:, self.classes] * valid
        truth = torch.stack([target == c for c in self.classes], 1).float() * valid
        predicted_skeleton = soft_skeleton(probabilities, self.iterations)
        true_skeleton = soft_skeleton(truth, self.iterations)
        dims = (0, *range(2, logits.ndim))
        precision = ((predicted_skeleton * truth).sum(dims) + self.smooth) / (
            predicted_skeleton.sum(dims) + self.smooth
        )
        sensitivity = ((true_skeleton * probabilities).sum(dims) + self.smooth) / (
            true_skeleton.sum(dims) + self.smooth
        )
        return (1 - 2 * precision * sensitivity / (precision + sensitivity)).mean()
