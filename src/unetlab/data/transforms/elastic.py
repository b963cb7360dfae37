"""The U-Net paper's elastic deformation as an albumentations transform.

Ronneberger et al. (2015), sec. 3.1: "smooth deformations using random displacement
vectors on a coarse 3 by 3 grid. The displacements are sampled from a Gaussian
distribution with 10 pixels standard deviation. Per-pixel displacements are then computed
using bicubic interpolation."
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import cv2
import numpy as np
from albumentations.core.transforms_interface import BaseTransformInitSchema, DualTransform
from albumentations.core.type_definitions import Targets
from pydantic import Field
from scipy import ndimage

from unetlab.data.mirror import reflect_indices

CV2_MAX_CHANNELS = 4
CV2_REMAP_DTYPES = (np.uint8, np.int8, np.uint16, np.int16, np.int32, np.float32, np.float64)


@lru_cache(maxsize=64)
def cubic_upsampling_matrix(size: int, grid_size: int) -> np.ndarray:
    """Matrix ``M`` (size, grid_size) with ``M @ v`` = cubic spline through the grid values ``v``.

    The grid points sit evenly from the first pixel (0) to the last (``size - 1``).
    """
    if size == 1:
        return np.full((1, grid_size), 1.0 / grid_size)
    matrix = ndimage.zoom(
        np.eye(grid_size), (size / grid_size, 1), order=3, mode="mirror", grid_mode=False
    )
    matrix.setflags(write=False)
    return matrix


def _outer_sum(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """``left @ right.T`` for thin matrices, as float32 outer products (no BLAS threads)."""
    left, right = left.astype(np.float32), right.astype(np.float32)
    total = np.multiply.outer(left[:, 0], right[:, 0])
    for k in range(1, left.shape[1]):
        total += np.multiply.outer(left[:, k], right[:, k])
    return total


class ElasticDeformation(DualTransform):
    """Smooth random warp: Gaussian displacements on a coarse grid, upsampled bicubically.

    Displacements (one y and one x component per grid point) are drawn from
    ``N(0, sigma)`` pixels on a ``grid_size`` x ``grid_size`` grid spanning the image,
    and interpolated by cubic splines to a per-pixel field. Images are resampled with
    ``interpolation`` (bilinear by default), masks and every other mask-type target
    (instance labels, weight maps) by nearest neighbour, so labels stay labels. Outside
    the image the content is mirrored.

    Args:
        grid_size: Grid points per axis (3 in the paper).
        sigma: Standard deviation of the displacements in pixels (10 in the paper).
        interpolation: OpenCV interpolation of images (``cv2.INTER_LINEAR`` = 1,
            ``cv2.INTER_CUBIC`` = 2).
        p: Probability of applying the transform.
    """

    _targets = (Targets.IMAGE, Targets.MASK)

    class InitSchema(BaseTransformInitSchema):
        grid_size: int = Field(ge=2)
        sigma: float = Field(ge=0)
        interpolation: int = Field(ge=0)

    def __init__(
        self,
        grid_size: int = 3,
        sigma: float = 10.0,
        interpolation: int = cv2.INTER_LINEAR,
        p: float = 0.5,
    ) -> None:
        super().__init__(p=p)
        self.grid_size = grid_size
        self.sigma = sigma
        self.interpolation = interpolation

    def get_params_dependent_on_data(
        self, params: dict[str, Any], data: dict[str, Any]
    ) -> dict[str, Any]:
        """Draw the grid displacements and upsample them to per-pixel sampling maps."""
        height, width = params["shape"][:2]
        grid = self.random_generator.normal(0.0, self.sigma, (2, self.grid_size, self.grid_size))
        rows = cubic_upsampling_matrix(height, self.grid_size)
        cols = cubic_upsampling_matrix(width, self.grid_size)
        map_y = np.arange(height, dtype=np.float32)[:, None] + _outer_sum(rows @ grid[0], cols)
        map_x = np.arange(width, dtype=np.float32)[None, :] + _outer_sum(rows @ grid[1], cols)
        return {"map_y": map_y, "map_x": map_x}

    def apply(
        self, img: np.ndarray, map_y: np.ndarray, map_x: np.ndarray, **params: Any
    ) -> np.ndarray:
        """Resample an image smoothly along the displacement field."""
        chunks = [
            cv2.remap(
                np.ascontiguousarray(img[..., start : start + CV2_MAX_CHANNELS]),
                map_x,
                map_y,
                interpolation=self.interpolation,
                borderMode=cv2.BORDER_REFLECT_101,
            )
            for start in range(0, img.shape[-1] if img.ndim == 3 else 1, CV2_MAX_CHANNELS)
        ]
        if img.ndim == 2:
            return chunks[0]
        chunks = [chunk[..., None] if chunk.ndim == 2 else chunk for chunk in chunks]
        return np.concatenate(chunks, axis=-1)

    def apply_to_mask(
        self, mask: np.ndarray, map_y: np.ndarray, map_x: np.ndarray, **params: Any
    ) -> np.ndarray:
        """Resample a label image (any dtype) by nearest neighbour along the field."""
        if mask.dtype in CV2_REMAP_DTYPES and (mask.ndim == 2 or mask.shape[-1] <= 4):
            warped = cv2.remap(
                mask, map_x, map_y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REFLECT_101
            )
            return warped.reshape(mask.shape)
        rows = reflect_indices(np.rint(map_y).astype(np.intp), mask.shape[0])
        cols = reflect_indices(np.rint(map_x).astype(np.intp), mask.shape[1])
        return mask[rows, cols]

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("grid_size", "sigma", "interpolation")
