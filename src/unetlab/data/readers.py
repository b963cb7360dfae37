"""Reading the files of one sample as arrays: 2-D images (or stack pages), or 3-D volumes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from unetlab.data.formats import is_nifti
from unetlab.data.io import read_image, read_mask, read_volume
from unetlab.data.samples import Sample
from unetlab.data.volumes import Volume


@dataclass
class StoredSample:
    """A sample's arrays as stored in its files.

    Attributes:
        image: (*spatial, C) intensities, dtype as stored.
        mask: (*spatial) mask values as stored.
        instances: (*spatial) instance labels, when the dataset has them.
        spacing: Voxel size (z, y, x) of volumes; None for 2-D images.
    """

    image: np.ndarray
    mask: np.ndarray
    instances: np.ndarray | None = None
    spacing: tuple[float, ...] | None = None


class SampleReader(Protocol):
    """Reads the image, mask and instance-label files of a sample."""

    def read(self, sample: Sample) -> StoredSample: ...


class ImageReader:
    """2-D images, or single pages of multi-page TIFF stacks (``Sample.page``)."""

    def read(self, sample: Sample) -> StoredSample:
        """Read image (H, W, C), mask (H, W) and instance labels (H, W)."""
        for path in (sample.image, sample.mask):
            if is_nifti(path):
                raise ValueError(
                    f"{path}: a NIfTI volume, but the data are 2-D; for volumes set "
                    "model.spatial_dims=3 and data.spatial_dims=3"
                )
        image = read_image(sample.image, sample.page)
        mask = read_mask(sample.mask, sample.page)
        instances = None if sample.instances is None else read_mask(sample.instances, sample.page)
        return StoredSample(image, mask, instances)


class VolumeReader:
    """3-D volumes: multi-page TIFF (pages = z) or NIfTI, one volume per file."""

    def read(self, sample: Sample) -> StoredSample:
        """Read image (Z, Y, X, C), mask (Z, Y, X), instance labels and the image's spacing."""
        image = read_volume(sample.image)
        array = image.with_channels()
        mask = _label_volume(read_volume(sample.mask), sample.mask_origin)
        instances = None
        if sample.instances is not None:
            instances = _label_volume(read_volume(sample.instances), str(sample.instances))
        return StoredSample(array, mask, instances, image.spacing)


def _label_volume(volume: Volume, origin: str) -> np.ndarray:
    """The (Z, Y, X) labels of a label volume (a single channel is allowed)."""
    array = volume.array
    if array.ndim == 4:
        if array.shape[-1] != 1:
            raise ValueError(
                f"{origin}: label volume has shape {array.shape}; expected one value per "
                "voxel (Z, Y, X)"
            )
        array = array[..., 0]
    return array


READERS: dict[int, type[SampleReader]] = {2: ImageReader, 3: VolumeReader}
"""The reader of each number of spatial dimensions."""
