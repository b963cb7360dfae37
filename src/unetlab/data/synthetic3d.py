"""Procedural 3-D cells: blob-like nuclei in noisy fluorescence volumes (the 3-D default).

Each volume holds ellipsoidal cells of varied size, elongation, orientation and brightness
(some touching), imaged like the 2-D nuclei of :mod:`unetlab.data.synthetic`: uneven
illumination, blur, Poisson shot noise and Gaussian read noise. Ground truth is a class
mask (0 = background, 1 = cell) and an instance-label volume (1..N = cells). Files are
(z, y, x) volumes, NIfTI or multi-page TIFF, with isotropic 1 µm voxels. Everything is a
deterministic function of the seed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
from scipy import ndimage

from unetlab.data.formats import VOLUME_SUFFIXES
from unetlab.data.generated import GeneratedDataset
from unetlab.data.synthetic import NucleiStyle, acquire, place_objects
from unetlab.data.volumes import Volume, write_volume

CELL_STYLE = NucleiStyle(
    min_nuclei=6,
    max_nuclei=14,
    min_radius=4.0,
    max_radius=9.0,
    touching_fraction=0.3,
    blur_sigma=1.0,
)
"""Cells of 8 to 18 voxels across, 6 to 14 per volume; intensities as in 2-D."""
FULL_SIZE = 32
"""Volumes thinner than this (along any axis) get proportionally smaller cells."""


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random 3x3 rotation matrix."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def ellipsoid_footprint(
    rng: np.random.Generator, shape: Sequence[int], center: np.ndarray, radius: float
) -> tuple[tuple[slice, ...], np.ndarray]:
    """One randomly elongated and rotated ellipsoid of mean radius ``radius``.

    Returns:
        The bounding box (slices into a volume of ``shape``) and the boolean footprint in it.
    """
    stretch = rng.uniform(0.75, 1.35, size=3)
    semi_axes = radius * stretch / np.cbrt(stretch.prod())
    rotation = random_rotation(rng)
    reach = math.ceil(semi_axes.max()) + 1
    box = tuple(
        slice(max(0, math.floor(c) - reach), min(n, math.ceil(c) + reach + 1))
        for c, n in zip(center, shape, strict=True)
    )
    grid = np.stack(np.meshgrid(*(np.arange(b.start, b.stop) for b in box), indexing="ij"), axis=-1)
    local = (grid - center) @ rotation
    return box, ((local / semi_axes) ** 2).sum(-1) <= 1.0


def generate_cell_volume(
    rng: np.random.Generator,
    shape: Sequence[int] = (32, 64, 64),
    style: NucleiStyle = CELL_STYLE,
) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic fluorescence volume and its instance labels.

    Args:
        rng: Source of randomness (the only one used).
        shape: (Z, Y, X) size in voxels; cells shrink in volumes thinner than 32 voxels.
        style: Generator parameters (radii in voxels, for volumes of 32 or more).

    Returns:
        ``(volume, instances)``: uint8 volume and uint16 instance labels, both (Z, Y, X).
    """
    shape = tuple(int(n) for n in shape)
    if len(shape) != 3 or min(shape) < 8:
        raise ValueError(f"volume shape {list(shape)}: give three sizes (z, y, x) of 8 or more")
    scale = min(1.0, min(shape) / FULL_SIZE)
    style = replace(style, min_radius=style.min_radius * scale, max_radius=style.max_radius * scale)
    instances = np.zeros(shape, np.uint16)
    signal = np.zeros(shape, np.float32)
    count = int(rng.integers(style.min_nuclei, style.max_nuclei + 1))
    for label, (center, radius) in enumerate(place_objects(rng, shape, count, style), start=1):
        box, inside = ellipsoid_footprint(rng, shape, center, radius)
        footprint = inside & (instances[box] == 0)
        instances[box][footprint] = label
        texture = ndimage.gaussian_filter(rng.normal(size=inside.shape).astype(np.float32), 1.5)
        brightness = rng.uniform(style.min_brightness, style.max_brightness)
        signal[box][footprint] = brightness * (1.0 + 2.0 * texture[footprint])
    return acquire(rng, signal, style), instances


class SyntheticVolumes(GeneratedDataset):
    """Writes the 3-D synthetic dataset: ``images/``, ``masks/``, ``instances/`` volumes.

    Generated once per parameter set under ``root`` and reused afterwards (see
    :class:`~unetlab.data.generated.GeneratedDataset`).

    Args:
        root: Cache folder (git ignores it).
        num_volumes: Number of volumes.
        volume_shape: (Z, Y, X) size of each volume in voxels.
        file_format: ``nii.gz``, ``nii``, ``tif`` or ``tiff``.
        seed: Generator seed; the dataset is a deterministic function of it.
    """

    prefix = "cells3d"

    def __init__(
        self,
        root: str | Path,
        num_volumes: int = 24,
        volume_shape: Sequence[int] = (32, 64, 64),
        file_format: str = "nii.gz",
        seed: int = 0,
    ) -> None:
        if num_volumes < 3:
            raise ValueError(f"data.source.num_volumes={num_volumes}: need at least 3 volumes")
        if f".{file_format}" not in VOLUME_SUFFIXES:
            formats = ", ".join(suffix[1:] for suffix in VOLUME_SUFFIXES)
            raise ValueError(f"data.source.file_format={file_format!r}: choose one of {formats}")
        super().__init__(root)
        self.num_volumes = num_volumes
        self.volume_shape = [int(n) for n in volume_shape]
        self.file_format = file_format
        self.seed = seed

    @property
    def params(self) -> dict:
        """Everything the generated files depend on."""
        return {
            "num_volumes": self.num_volumes,
            "volume_shape": self.volume_shape,
            "file_format": self.file_format,
            "seed": self.seed,
            "style": asdict(CELL_STYLE),
            "version": 1,
        }

    def write(self, folder: Path) -> None:
        """Generate every volume, its mask and its instance labels."""
        seeds = np.random.SeedSequence(self.seed).spawn(self.num_volumes)
        for index, child in enumerate(seeds):
            volume, instances = generate_cell_volume(
                np.random.default_rng(child), self.volume_shape
            )
            name = f"cells_{index:04d}.{self.file_format}"
            arrays = {
                "images": volume,
                "masks": (instances > 0).astype(np.uint8),
                "instances": instances,
            }
            for sub, array in arrays.items():
                write_volume(folder / sub / name, Volume(array, unit="um"))
