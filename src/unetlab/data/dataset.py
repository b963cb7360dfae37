"""In-memory segmentation dataset: patch windows, albumentations augmentation, standardisation."""

from __future__ import annotations

import random
from collections.abc import Sequence

import albumentations as A
import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info

from unetlab.data.decoding import DecodedSample
from unetlab.data.normalization import network_layout
from unetlab.data.patches import PatchSampler, cut_window, paste_into_window

__all__ = ["DecodedSample", "SegmentationDataset", "seed_worker"]

AUGMENTATION_TARGETS = {2: ("image", "mask"), 3: ("volume", "mask3d")}
"""albumentations' names of the image and label targets, by number of spatial axes."""


class SegmentationDataset(Dataset):
    """Serves ``{"image", "mask", "weight_map"?, "instances"?, "name"}`` dicts.

    Each item is cut from a decoded sample (a random patch when ``random_windows``, else
    the whole image with the network's context), augmented with ``transform`` (image in
    [0, 1], mask and weight map together; volumes as albumentations' ``volume`` and
    ``mask3d`` targets), then standardised with ``mean`` / ``std``.

    Args:
        samples: Decoded samples (a list, or a lazily decoding sequence).
        transform: albumentations pipeline applied to image, mask and weight map together.
        mean: Per-channel mean for standardisation (None: images are served as decoded).
        std: Per-channel standard deviation.
        sampler: Window geometry; None serves whole images as they are.
        random_windows: Random training patches (else whole images, for evaluation).
        patches_per_image: Items per sample and epoch with random windows.
        ignore_index: Mask value of padding in whole-image windows.
        seed: Seed of the patch positions and of ``transform`` in this process.
        spatial_dims: 2 for images, 3 for volumes.
        with_instances: Serve every sample's instance labels as ``instances`` (whole
            images only; every sample must have them). Padding gets label 0.
    """

    def __init__(
        self,
        samples: Sequence[DecodedSample],
        transform: A.BasicTransform | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        sampler: PatchSampler | None = None,
        random_windows: bool = False,
        patches_per_image: int = 1,
        ignore_index: int = -100,
        seed: int | None = None,
        spatial_dims: int = 2,
        with_instances: bool = False,
    ) -> None:
        if with_instances and random_windows:
            raise ValueError("instance labels are served with whole images only, not patches")
        if patches_per_image < 1:
            raise ValueError(f"data.patches_per_image={patches_per_image} must be >= 1")
        self.samples = samples
        self.transform = transform
        self.image_key, self.mask_key = AUGMENTATION_TARGETS[spatial_dims]
        self.with_instances = with_instances
        if transform is not None:
            extra_targets = {"weight_map": self.mask_key}
            if with_instances:
                extra_targets["instances"] = self.mask_key
            transform.add_targets(extra_targets)
        self.mean, self.std = mean, std
        self.sampler = sampler
        self.random_windows = random_windows
        self.patches_per_image = patches_per_image if random_windows else 1
        self.ignore_index = ignore_index
        self.reseed(seed)

    def reseed(self, seed: int | None) -> None:
        """Seed patch positions and augmentation (called once per data-loader worker)."""
        self.rng = np.random.default_rng(seed)
        if self.transform is not None:
            # One generator shared by all transforms: set_random_seed gives each transform
            # its own generator with the same seed, so e.g. both flips would always coincide.
            self.transform.set_random_state(np.random.default_rng(seed), random.Random(seed))

    def __len__(self) -> int:
        return len(self.samples) * self.patches_per_image

    def __getitem__(self, index: int) -> dict:
        sample = self.samples[index % len(self.samples)]
        image, mask, weight_map = sample.image, sample.mask, sample.weight_map
        instances = sample.instances if self.with_instances else None
        if self.with_instances and instances is None:
            raise ValueError(f"{sample.name}: no instance labels, but the other images have them")
        if self.sampler is not None:
            shape = image.shape[:-1]
            if self.random_windows:
                window = self.sampler.sample(shape, sample.foreground, self.rng)
            else:
                window = self.sampler.whole_image(shape)
            image, mask, weight_map = cut_window(
                window, image, mask, weight_map, self.ignore_index, self.random_windows
            )
            if instances is not None:
                instances = paste_into_window(window, instances, 0)
        if self.transform is not None:
            extra = {} if weight_map is None else {"weight_map": weight_map}
            if instances is not None:
                extra["instances"] = instances
            try:
                out = self.transform(**{self.image_key: image, self.mask_key: mask}, **extra)
            except Exception as error:
                # Raised in a data-loader worker, the message is all the user sees: name the image.
                raise ValueError(
                    f"{sample.name}: augmentation failed ({type(error).__name__}: {error}); "
                    "check data.train_augmentation for this image's size and type"
                ) from error
            image, mask = out[self.image_key], out[self.mask_key]
            weight_map = out.get("weight_map", weight_map)
            instances = out.get("instances", instances)
        item = {
            "image": torch.from_numpy(network_layout(image, self.mean, self.std)),
            "mask": torch.from_numpy(np.ascontiguousarray(mask, np.int64)),
            "name": sample.name,
        }
        if weight_map is not None:
            item["weight_map"] = torch.from_numpy(np.ascontiguousarray(weight_map, np.float32))
        if instances is not None:
            item["instances"] = torch.from_numpy(np.ascontiguousarray(instances, np.int32))
        return item


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn``: give every worker its own patch and augmentation randomness.

    The seed is the worker's torch seed, which the loader derives from the main process's
    random state, so runs under ``seed_everything`` repeat exactly.
    """
    info = get_worker_info()
    seed = (info.seed if info is not None else torch.initial_seed()) % 2**32
    np.random.seed(seed)
    random.seed(seed)
    if info is not None and isinstance(info.dataset, SegmentationDataset):
        info.dataset.reseed(seed)
