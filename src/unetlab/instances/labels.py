"""Instance labels from network outputs: one image, a large one in blocks, or a batch."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from unetlab.data.instance_targets import INSTANCE_BORDER_CLASSES, TARGETS
from unetlab.inference.outputs import labels_from_logits
from unetlab.instances.blocks import blockwise_labels
from unetlab.instances.postprocess import (
    DEFAULT_POSTPROCESS,
    InstancePostprocess,
    class_instances,
    watershed_instances,
)

DEFAULT_BLOCKS = {2: (2048, 128), 3: (256, 48)}
"""Block side and overlap by number of spatial axes, when the settings leave them out."""


def checkpoint_target(config: Mapping[str, Any]) -> str:
    """The target a model was trained on (``data.target`` of its run config)."""
    return str((config.get("data") or {}).get("target") or "semantic")


def instance_dtype(labels: np.ndarray) -> np.dtype:
    """uint16 for up to 65,535 objects, uint32 above."""
    return np.dtype(np.uint16 if labels.size == 0 or labels.max() <= 65535 else np.uint32)


def instance_labels(
    logits: torch.Tensor,
    target: str = "semantic",
    options: InstancePostprocess = DEFAULT_POSTPROCESS,
) -> np.ndarray:
    """Objects of one image or volume from the network's stitched logits.

    With ``target=instance_border`` a seeded watershed of the interior probability
    (:func:`watershed_instances`), in overlapping blocks for large images; otherwise the
    connected components of every class but 0.

    Args:
        logits: (K, *spatial) logits of the whole image.
        target: The model's ``data.target``.
        options: Post-processing settings.

    Returns:
        Labels numbered 1..N as uint16, or uint32 above 65,535 objects.
    """
    if target not in TARGETS:
        raise ValueError(f"target={target!r} is not known; use one of {', '.join(TARGETS)}")
    logits = logits.detach().cpu()
    if target == "semantic":
        labels = class_instances(labels_from_logits(logits, np.uint16), options).astype(np.uint32)
    else:
        if logits.shape[0] != len(INSTANCE_BORDER_CLASSES):
            raise ValueError(
                f"target={target} needs {len(INSTANCE_BORDER_CLASSES)} output classes "
                f"({', '.join(INSTANCE_BORDER_CLASSES)}); the network gives {logits.shape[0]}"
            )
        spatial = tuple(logits.shape[1:])
        block, overlap = DEFAULT_BLOCKS[len(spatial)]
        block = options.block_size or block
        overlap = options.block_overlap if options.block_overlap is not None else overlap

        def label_region(region: tuple[slice, ...]) -> np.ndarray:
            probabilities = torch.softmax(logits[(slice(None), *region)].float(), dim=0)
            return watershed_instances(probabilities.numpy(), options)

        labels = blockwise_labels(spatial, label_region, [block] * len(spatial), overlap)
    return labels.astype(instance_dtype(labels), copy=False)


def instances_from_logits(
    logits: torch.Tensor,
    target: str = "semantic",
    options: InstancePostprocess = DEFAULT_POSTPROCESS,
) -> np.ndarray:
    """Objects of every image of a batch (e.g. to score objects during validation).

    Args:
        logits: (N, K, *spatial) logits.
        target: The model's ``data.target``.
        options: Post-processing settings.

    Returns:
        (N, *spatial) int64 labels, numbered 1..n per image.
    """
    return np.stack([instance_labels(item, target, options).astype(np.int64) for item in logits])


def _batch_instances(
    logits: torch.Tensor, target: str, options: InstancePostprocess
) -> torch.Tensor:
    return torch.from_numpy(instances_from_logits(logits, target, options))


def instance_predictor(
    target: str, options: InstancePostprocess = DEFAULT_POSTPROCESS
) -> Callable[[torch.Tensor], torch.Tensor]:
    """``logits (N, K, *spatial) -> labels (N, *spatial)`` with the post-processing of ``target``.

    What the training module scores objects with during validation and test, so that a model
    trained on instance targets is scored on the objects that prediction would write.
    """
    return functools.partial(_batch_instances, target=target, options=options)
