"""Augmentations of volumes, as albumentations transforms of ``volume`` and ``mask3d`` targets.

albumentations' 2-D geometric transforms (``HorizontalFlip``, ``VerticalFlip``,
``RandomRotate90``) already act on volumes, every slice alike: flips along x and y and
rotations in the y-x plane. These add what they lack for volumes: a flip along z, an
intensity change, and a 3-D version of the U-Net paper's elastic deformation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from albumentations.core.transforms_interface import (
    BaseTransformInitSchema,
    ImageOnlyTransform,
    Transform3D,
)
from albumentations.core.type_definitions import Targets
from pydantic import Field
from scipy import ndimage

from unetlab.data.transforms.elastic import cubic_upsampling_matrix


class DepthFlip(Transform3D):
    """Mirror a volume and its labels along z (reverse the slice order).

    Args:
        p: Probability of applying the transform.
    """

    _targets = (Targets.VOLUME, Targets.MASK3D)

    def __init__(self, p: float = 0.5) -> None:
        super().__init__(p=p)

    def apply_to_volume(self, volume: np.ndarray, **params: Any) -> np.ndarray:
        """Reverse the first axis."""
        return np.ascontiguousarray(volume[::-1])

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ()


class IntensityScaleShift(ImageOnlyTransform):
    """Brightness and contrast change ``x * (1 + a) + b`` of an image or a volume.

    ``a`` is drawn from ``U(-scale_limit, scale_limit)`` and ``b`` from
    ``U(-shift_limit, shift_limit)``, once per call, for intensities scaled to about [0, 1].

    Args:
        scale_limit: Largest relative change of contrast.
        shift_limit: Largest change of brightness.
        p: Probability of applying the transform.
    """

    class InitSchema(BaseTransformInitSchema):
        scale_limit: float = Field(ge=0)
        shift_limit: float = Field(ge=0)

    def __init__(self, scale_limit: float = 0.1, shift_limit: float = 0.1, p: float = 0.5) -> None:
        super().__init__(p=p)
        self.scale_limit = scale_limit
        self.shift_limit = shift_limit

    def get_params(self) -> dict[str, float]:
        """Draw the scale and the shift."""
        return {
            "scale": 1.0 + self.py_random.uniform(-self.scale_limit, self.scale_limit),
            "shift": self.py_random.uniform(-self.shift_limit, self.shift_limit),
        }

    def apply(self, img: np.ndarray, scale: float, shift: float, **params: Any) -> np.ndarray:
        """Scale and shift every pixel."""
        return (img * scale + shift).astype(img.dtype, copy=False)

    def apply_to_volume(
        self, volume: np.ndarray, scale: float, shift: float, **params: Any
    ) -> np.ndarray:
        """Scale and shift every voxel."""
        return self.apply(volume, scale, shift)

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("scale_limit", "shift_limit")


class ElasticDeformation3D(Transform3D):
    """Smooth random 3-D warp: Gaussian displacements on a coarse grid, cubic upsampling.

    The volume version of :class:`~unetlab.data.transforms.ElasticDeformation`: a
    displacement vector (z, y, x) per point of a ``grid_size`` ** 3 grid spanning the volume,
    drawn from ``N(0, sigma)`` voxels and interpolated by cubic splines to every voxel.
    Volumes are resampled linearly, labels (and every other ``mask3d`` target) by nearest
    neighbour; outside the volume the content is mirrored.

    Args:
        grid_size: Grid points per axis.
        sigma: Standard deviation of the displacements in voxels.
        p: Probability of applying the transform.
    """

    _targets = (Targets.VOLUME, Targets.MASK3D)

    class InitSchema(BaseTransformInitSchema):
        grid_size: int = Field(ge=2)
        sigma: float = Field(ge=0)

    def __init__(self, grid_size: int = 3, sigma: float = 4.0, p: float = 0.5) -> None:
        super().__init__(p=p)
        self.grid_size = grid_size
        self.sigma = sigma

    def get_params_dependent_on_data(
        self, params: dict[str, Any], data: dict[str, Any]
    ) -> dict[str, Any]:
        """Draw the grid displacements and upsample them to sampling coordinates per voxel."""
        shape = data["volume"].shape[:3]
        size = self.grid_size
        grid = self.random_generator.normal(0.0, self.sigma, (3, size, size, size))
        depth, rows, cols = (cubic_upsampling_matrix(n, size) for n in shape)
        coordinates = np.indices(shape, dtype=np.float32)
        for axis in range(3):
            displacement = np.einsum("zi,yj,xk,ijk->zyx", depth, rows, cols, grid[axis])
            coordinates[axis] += displacement.astype(np.float32)
        return {"coordinates": coordinates}

    def apply_to_volume(
        self, volume: np.ndarray, coordinates: np.ndarray, **params: Any
    ) -> np.ndarray:
        """Resample a volume (Z, Y, X) or (Z, Y, X, C) linearly along the field."""
        if volume.ndim == 3:
            return ndimage.map_coordinates(volume, coordinates, order=1, mode="mirror")
        channels = [
            ndimage.map_coordinates(volume[..., c], coordinates, order=1, mode="mirror")
            for c in range(volume.shape[-1])
        ]
        return np.stack(channels, axis=-1)

    def apply_to_mask3d(
        self, mask3d: np.ndarray, coordinates: np.ndarray, **params: Any
    ) -> np.ndarray:
        """Resample labels (any dtype) by nearest neighbour along the field."""
        return ndimage.map_coordinates(mask3d, coordinates, order=0, mode="mirror")

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("grid_size", "sigma")
