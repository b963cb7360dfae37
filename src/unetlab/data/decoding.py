"""Decoding and checking one sample: files -> normalised image, class mask, weight map.

Images and volumes go the same way; volumes can be resampled to ``target_spacing`` after
the checks (see :mod:`unetlab.data.resampling`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from unetlab.data.io import describe
from unetlab.data.masks import MaskEncoding
from unetlab.data.normalization import (
    DEFAULT_PERCENTILES,
    check_intensity_scaling,
    unit_image,
)
from unetlab.data.readers import READERS
from unetlab.data.resampling import check_spacing, resampled_shape, resize
from unetlab.data.samples import Sample
from unetlab.labels import instances_from_binary

WeightMapFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
TargetFn = Callable[[np.ndarray, np.ndarray | None, str], tuple[np.ndarray, np.ndarray]]


@dataclass
class DecodedSample:
    """One decoded sample held in memory.

    Attributes:
        name: Sample name.
        image: (*spatial, C) float32, scaled to about [0, 1] (standardised when served);
            spatial is (H, W) for images, (Z, Y, X) for volumes.
        mask: (*spatial) class indices (int16; ``ignore_index`` where unlabelled).
        instances: (*spatial) int32 object ids, when the dataset has them.
        weight_map: (*spatial) float32 per-pixel loss weights, when the loss needs them.
        foreground: Flat indices of pixels of a class other than 0, for oversampling.
    """

    name: str
    image: np.ndarray
    mask: np.ndarray
    instances: np.ndarray | None = None
    weight_map: np.ndarray | None = None
    foreground: np.ndarray | None = None

    @property
    def nbytes(self) -> int:
        """Memory held by the arrays."""
        arrays = (self.image, self.mask, self.instances, self.weight_map, self.foreground)
        return sum(a.nbytes for a in arrays if a is not None)


class SampleDecoder:
    """Reads a sample's files, checks them against the config and decodes them.

    Every check raises a one-line ``ValueError`` that names the file and the fix.

    Args:
        in_channels: Channels every image must have (``model.in_channels``).
        encoding: How mask values become classes.
        object_class: Class whose connected components are the objects of the weight map
            when the dataset has no instance labels.
        percentiles: Percentiles that scale 16-bit and float images to [0, 1].
        intensity_scaling: ``by_dtype`` or ``per_image`` (:func:`scale_to_unit`).
        weight_map_fn: ``weight_map_fn(objects, mask)``, or None when the loss needs no map.
        keep_foreground: Whether to store foreground pixel indices.
        spatial_dims: 2 for images (and stack pages), 3 for volumes.
        target_spacing: Voxel size (z, y, x) volumes are resampled to; None keeps them.
        target: ``target(mask, instances, origin) -> (classes, objects)``, which turns
            instance labels into the classes to learn (``data.target``); None keeps the mask.
    """

    def __init__(
        self,
        in_channels: int,
        encoding: MaskEncoding,
        object_class: int = 1,
        percentiles: tuple[float, float] = DEFAULT_PERCENTILES,
        weight_map_fn: WeightMapFn | None = None,
        keep_foreground: bool = False,
        spatial_dims: int = 2,
        target_spacing: Sequence[float] | None = None,
        target: TargetFn | None = None,
        intensity_scaling: str = "by_dtype",
    ) -> None:
        self.target = target
        self.intensity_scaling = check_intensity_scaling(intensity_scaling)
        self.reader = READERS[spatial_dims]()
        self.target_spacing = None if target_spacing is None else check_spacing(target_spacing)
        self.in_channels = in_channels
        self.encoding = encoding
        self.object_class = object_class
        self.percentiles = tuple(percentiles)
        self.weight_map_fn = weight_map_fn
        self.keep_foreground = keep_foreground

    def decode(self, sample: Sample, with_weight_map: bool = True) -> DecodedSample:
        """Read, check and decode one sample.

        Args:
            sample: Where the files are.
            with_weight_map: Compute the weight map (when the loss needs one).
        """
        stored = self.reader.read(sample)
        self._check_image(sample, stored.image, stored.mask)
        mask, instances = self.encoding(stored.mask, sample.mask_origin)
        if stored.instances is not None:
            instances = stored.instances.astype(np.int32)
            if instances.shape != mask.shape:
                raise ValueError(
                    f"{sample.instances}: instance labels are {describe_shape(instances.shape)} "
                    f"but the mask {sample.mask_origin} is {describe_shape(mask.shape)}; they "
                    "must match pixel for pixel"
                )
        shape = None
        if self.target_spacing is not None and stored.spacing is not None:
            shape = resampled_shape(mask.shape, stored.spacing, self.target_spacing)
            mask = resize(mask, shape, order=0)
            instances = None if instances is None else resize(instances, shape, order=0)
        image = unit_image(stored.image, self.percentiles, shape, self.intensity_scaling)
        objects = instances
        if self.target is not None:
            mask, objects = self.target(mask, instances, sample.mask_origin)
        weight_map = None
        if with_weight_map and self.weight_map_fn is not None:
            weight_map = self._weight_map(mask, objects)
        foreground = None
        if self.keep_foreground:
            foreground = np.flatnonzero(mask > 0).astype(np.int32)
        return DecodedSample(
            sample.name,
            image,
            mask,
            instances,
            weight_map,
            foreground,
        )

    def _check_image(self, sample: Sample, image: np.ndarray, mask: np.ndarray) -> None:
        channels = image.shape[-1]
        if channels != self.in_channels:
            fix = f"set model.in_channels={channels}"
            if channels == 4:
                fix += " or save the images without alpha channel"
            elif self.in_channels == 1:
                fix += " or convert the images to grayscale"
            raise ValueError(
                f"{sample.image_origin}: image has {channels} channels but model.in_channels="
                f"{self.in_channels}; {fix}"
            )
        if image.shape[:-1] != mask.shape:
            raise ValueError(
                f"{sample.mask_origin}: mask is {describe_shape(mask.shape)} but its image "
                f"{describe(sample.image, sample.page)} is {describe_shape(image.shape[:-1])}; "
                "masks must match their images pixel for pixel (resize or re-export the mask)"
            )

    def _weight_map(self, mask: np.ndarray, objects: np.ndarray | None) -> np.ndarray:
        assert self.weight_map_fn is not None
        ignored = mask < 0
        labelled = np.where(ignored, 0, mask).astype(np.int64)
        if objects is None:
            objects = instances_from_binary(mask == self.object_class)
        weight_map = np.asarray(self.weight_map_fn(objects, labelled), np.float32)
        weight_map[ignored] = 0.0
        return weight_map


class LazySamples(Sequence[DecodedSample]):
    """Samples decoded again on every access (for datasets too large to keep in memory).

    Args:
        decoder: The decoder.
        samples: Where the files are.
    """

    def __init__(self, decoder: SampleDecoder, samples: Sequence[Sample]) -> None:
        self.decoder = decoder
        self.samples = list(samples)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> DecodedSample:  # type: ignore[override]
        return self.decoder.decode(self.samples[index])


def describe_shape(shape: tuple[int, ...]) -> str:
    """A spatial shape as width x height (x depth)."""
    return "x".join(str(n) for n in reversed(shape))
