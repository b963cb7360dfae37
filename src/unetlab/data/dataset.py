"""In-memory segmentation dataset with albumentations augmentation."""

from __future__ import annotations

from dataclasses import dataclass

import albumentations as A
import numpy as np
import torch
from torch.utils.data import Dataset


@dataclass
class DecodedSample:
    """One decoded, normalised sample held in memory."""

    name: str
    image: np.ndarray  # (H, W, C) float32, normalised
    mask: np.ndarray  # (H, W) int64 class indices
    instances: np.ndarray | None = None  # (H, W) int32 object ids
    weight_map: np.ndarray | None = None  # (H, W) float32 per-pixel loss weights


class SegmentationDataset(Dataset):
    """Serves augmented ``{"image", "mask", "weight_map"?, "name"}`` dicts.

    Args:
        samples: Decoded samples.
        transform: albumentations pipeline applied to image, mask and weight map together.
    """

    def __init__(self, samples: list[DecodedSample], transform: A.Compose | None = None) -> None:
        self.samples = samples
        self.transform = transform
        if transform is not None:
            transform.add_targets({"weight_map": "mask"})

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        sample = self.samples[index]
        image, mask, weight_map = sample.image, sample.mask, sample.weight_map
        if self.transform is not None:
            extra = {} if weight_map is None else {"weight_map": weight_map}
            out = self.transform(image=image, mask=mask, **extra)
            image, mask = out["image"], out["mask"]
            weight_map = out.get("weight_map", weight_map)
        item = {
            "image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),
            "mask": torch.from_numpy(np.ascontiguousarray(mask)).long(),
            "name": sample.name,
        }
        if weight_map is not None:
            item["weight_map"] = torch.from_numpy(np.ascontiguousarray(weight_map)).float()
        return item
