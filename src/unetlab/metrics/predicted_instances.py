"""Instance labels from a class-map network's output: connected components of foreground."""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage
from torch import Tensor


def predicted_instances(logits: Tensor) -> Tensor:
    """One label per connected foreground region of each image of a batch.

    Foreground is every pixel whose most likely class is not class 0 (background); regions
    are face-connected (4-connected in 2-D, 6-connected in 3-D), as ``scipy.ndimage.label``
    joins them by default. Touching objects therefore come out as one.

    Args:
        logits: Network output ``(N, C, *spatial)``.

    Returns:
        int32 labels ``(N, *spatial)`` on the CPU (0 = background, 1..K per image).
    """
    if logits.ndim not in (4, 5):
        raise ValueError(
            f"logits have shape {tuple(logits.shape)}; expected (N, C, H, W) or (N, C, D, H, W)"
        )
    foreground = (logits.argmax(1) != 0).cpu().numpy()
    labels = np.stack([ndimage.label(image)[0] for image in foreground]).astype(np.int32)
    return torch.from_numpy(labels)
