"""Volumes (voxels with their geometry) and writing them as multi-page TIFF or NIfTI.

Arrays are (Z, Y, X) or (Z, Y, X, C) whatever the file format, and spacings are given in
the same (z, y, x) order. NIfTI stores voxels as (x, y, z): they are transposed on reading
and back on writing, and the file's affine (which maps ``(x, y, z, 1)`` voxel indices to
world coordinates) is kept unchanged, so a volume written with the affine it was read with
lies exactly where the input did (reading: :func:`unetlab.data.io.read_volume`). TIFF volumes keep their spacing in ImageJ's metadata
(``spacing`` for z, the resolution tags for y and x), which Fiji reads too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import tifffile

from unetlab.data.formats import NIFTI_SUFFIXES, VOLUME_SUFFIXES, file_suffix

IMAGEJ_DTYPES = (np.uint8, np.uint16, np.float32)
"""Types ImageJ hyperstacks hold; other types are written as plain TIFF with the same metadata."""
NIFTI_UNITS = {"um": "micron", "µm": "micron", "micron": "micron", "mm": "mm", "m": "meter"}
"""Length units as NIfTI names them (``meter``, ``mm``, ``micron``), by their short names."""
TIFF_UNITS = {"micron": "um", "meter": "m"}
"""Short names of NIfTI's units, as TIFF metadata writes them."""


@dataclass(frozen=True, eq=False)
class Volume:
    """Voxels and where they lie.

    Attributes:
        array: (Z, Y, X) or (Z, Y, X, C) voxels, dtype as stored.
        spacing: Voxel size along (z, y, x) in the file's unit (NIfTI: usually mm; TIFF:
            ImageJ's unit, usually µm); 1 where the file says nothing. Default: the lengths
            of the affine's axes.
        affine: 4x4 matrix from ``(x, y, z, 1)`` voxel indices to world coordinates (the
            NIfTI convention); for TIFF the scaling by the spacing. Default: that scaling.
        unit: Length unit of spacing and affine (``um``, ``mm``, ...), or None if unknown.
    """

    array: np.ndarray
    spacing: tuple[float, float, float] | None = None
    affine: np.ndarray | None = None
    unit: str | None = None

    def __post_init__(self) -> None:
        if self.array.ndim not in (3, 4):
            raise ValueError(
                f"a volume is (Z, Y, X) or (Z, Y, X, C), not an array of shape {self.array.shape}"
            )
        if self.spacing is not None:
            spacing = tuple(float(s) for s in self.spacing)
        elif self.affine is not None:
            lengths = np.linalg.norm(np.asarray(self.affine)[:3, :3], axis=0)
            spacing = tuple(float(n) for n in reversed(lengths))
        else:
            spacing = (1.0, 1.0, 1.0)
        if len(spacing) != 3 or min(spacing) <= 0:
            raise ValueError(f"spacing={list(spacing)}: give three positive sizes (z, y, x)")
        object.__setattr__(self, "spacing", spacing)
        if self.affine is None:
            object.__setattr__(self, "affine", spacing_affine(spacing))

    @property
    def shape(self) -> tuple[int, int, int]:
        """Spatial shape (Z, Y, X)."""
        return tuple(self.array.shape[:3])  # type: ignore[return-value]

    def with_channels(self) -> np.ndarray:
        """The voxels as (Z, Y, X, C) (C = 1 for single-channel volumes)."""
        return self.array if self.array.ndim == 4 else self.array[..., None]

    def with_array(self, array: np.ndarray) -> Volume:
        """Another array on the same voxel grid (e.g. a prediction of this volume)."""
        if tuple(array.shape[:3]) != self.shape:
            raise ValueError(
                f"array of shape {array.shape[:3]} does not lie on a volume of shape {self.shape}"
            )
        return Volume(array, self.spacing, self.affine, self.unit)


def spacing_affine(spacing: Sequence[float]) -> np.ndarray:
    """The affine of an axis-aligned grid with voxel size ``spacing`` (z, y, x) at the origin."""
    return np.diag([*(float(s) for s in reversed(spacing)), 1.0])


def write_volume(path: str | Path, volume: Volume) -> Path:
    """Write a volume as NIfTI or TIFF (by suffix), keeping its spacing, affine and unit.

    Args:
        path: Output file (``.nii``, ``.nii.gz``, ``.tif``, ``.tiff``).
        volume: The voxels and their geometry.

    Returns:
        The path written.
    """
    path = Path(path)
    suffix = file_suffix(path)
    if suffix not in VOLUME_SUFFIXES:
        raise ValueError(
            f"{path}: cannot write a volume as {suffix}; use {', '.join(VOLUME_SUFFIXES)}"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix in NIFTI_SUFFIXES:
        data = np.swapaxes(volume.array, 0, 2)
        image = nib.Nifti1Image(np.asarray(data), volume.affine)
        unit = NIFTI_UNITS.get(TIFF_UNITS.get(volume.unit or "", volume.unit or ""), "unknown")
        image.header.set_xyzt_units(unit)
        nib.save(image, path)
        return path
    array = volume.array
    z, y, x = volume.spacing
    if array.ndim == 4:
        array, axes = np.moveaxis(array, -1, 1), "ZCYX"
    else:
        axes = "ZYX"
    imagej = array.dtype.type in IMAGEJ_DTYPES
    metadata = {"spacing": z, "axes": axes}
    if volume.unit is not None:
        metadata["unit"] = TIFF_UNITS.get(volume.unit, volume.unit)
    tifffile.imwrite(
        path,
        array,
        imagej=imagej,
        photometric="minisblack",
        resolution=(1.0 / x, 1.0 / y),
        metadata=metadata,
        compression=None if imagej else "zlib",
    )
    return path
