"""Reading and writing volumes (multi-page TIFF, NIfTI) together with their voxel geometry.

Arrays are (Z, Y, X) or (Z, Y, X, C) whatever the file format, and spacings are given in
the same (z, y, x) order. NIfTI stores voxels as (x, y, z): they are transposed on reading
and back on writing, and the file's affine (which maps ``(x, y, z, 1)`` voxel indices to
world coordinates) is kept unchanged, so a volume written with the affine it was read with
lies exactly where the input did. TIFF volumes keep their spacing in ImageJ's metadata
(``spacing`` for z, the resolution tags for y and x), which Fiji reads too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import tifffile

from unetlab.data.io import TIFF_SUFFIXES

NIFTI_SUFFIXES = (".nii", ".nii.gz")
VOLUME_SUFFIXES = NIFTI_SUFFIXES + TIFF_SUFFIXES
CHANNEL_AXES = "CS"
"""tifffile axis codes of channels (channel planes, samples of a pixel)."""
IMAGEJ_DTYPES = (np.uint8, np.uint16, np.float32)
"""Types ImageJ hyperstacks hold; other types are written as plain TIFF with the same metadata."""
NIFTI_UNITS = {"um": "micron", "µm": "micron", "micron": "micron", "mm": "mm", "m": "meter"}
"""Length units as NIfTI names them (``meter``, ``mm``, ``micron``), by their short names."""
TIFF_UNITS = {"micron": "um", "meter": "m"}
"""Short names of NIfTI's units, as TIFF metadata writes them."""


def file_suffix(path: str | Path) -> str:
    """The lower-case format suffix of a file, ``.nii.gz`` counted as one."""
    name = Path(path).name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else Path(name).suffix


def file_stem(path: str | Path) -> str:
    """The file name without its format suffix (``a.nii.gz`` -> ``a``)."""
    name = Path(path).name
    return name[: len(name) - len(file_suffix(path))]


def is_nifti(path: str | Path) -> bool:
    """Whether the file name says NIfTI (``.nii`` or ``.nii.gz``)."""
    return file_suffix(path) in NIFTI_SUFFIXES


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


def read_volume(path: str | Path) -> Volume:
    """Read a NIfTI file or a multi-page TIFF as a volume.

    Args:
        path: A ``.nii``, ``.nii.gz``, ``.tif`` or ``.tiff`` file.

    Raises:
        ValueError: One line naming the file, when it cannot be read or is no volume.
    """
    path = Path(path)
    suffix = file_suffix(path)
    if suffix not in VOLUME_SUFFIXES:
        raise ValueError(
            f"{path}: {suffix or 'no suffix'} is not a volume format; save volumes as "
            f"{', '.join(VOLUME_SUFFIXES)}"
        )
    try:
        return _read_nifti(path) if suffix in NIFTI_SUFFIXES else _read_tiff(path)
    except ValueError:
        raise
    except (OSError, IndexError, KeyError, EOFError, nib.filebasedimages.ImageFileError) as error:
        raise ValueError(
            f"{path}: cannot read volume ({type(error).__name__}: {error}); check the file is "
            "complete or remove it"
        ) from None


def _read_nifti(path: Path) -> Volume:
    image = nib.load(path)
    data = np.asanyarray(image.dataobj)
    if data.ndim == 5 and data.shape[3] == 1:
        data = data[:, :, :, 0]  # (x, y, z, t=1, c)
    if data.ndim not in (3, 4):
        raise ValueError(
            f"{path}: NIfTI data has shape {data.shape}; expected (x, y, z) or (x, y, z, c)"
        )
    array = np.ascontiguousarray(np.swapaxes(data, 0, 2))
    x_size, y_size, z_size = (float(size) for size in image.header.get_zooms()[:3])
    affine = np.asarray(image.affine, np.float64)
    unit = image.header.get_xyzt_units()[0]
    return Volume(array, (z_size, y_size, x_size), affine, None if unit == "unknown" else unit)


def _read_tiff(path: Path) -> Volume:
    with tifffile.TiffFile(path) as tiff:
        series = tiff.series[0]
        array, axes = np.asarray(series.asarray()), series.axes
        spacing, unit = tiff_geometry(tiff)
    channels = [i for i, code in enumerate(axes) if code in CHANNEL_AXES]
    if len(channels) > 1:
        raise ValueError(f"{path}: TIFF has axes {axes}; save volumes with one channel axis")
    if channels:
        array = np.moveaxis(array, channels[0], -1)
        axes = axes.replace(axes[channels[0]], "") + "C"
    spatial = len(axes) - (1 if channels else 0)
    if spatial != 3:
        what = "a single image" if spatial == 2 else f"{spatial} spatial axes ({axes})"
        raise ValueError(
            f"{path}: TIFF holds {what}; a volume needs (Z, Y, X) pages, e.g. "
            "tifffile.imwrite(path, volume, photometric='minisblack')"
        )
    return Volume(array, spacing, unit=unit)


def tiff_geometry(tiff: tifffile.TiffFile) -> tuple[tuple[float, float, float], str | None]:
    """Voxel size (z, y, x) and length unit of an open TIFF (1 and None where it says nothing).

    z comes from ImageJ's metadata (or tifffile's own), y and x from the resolution tags.
    """
    shaped = tiff.shaped_metadata or ({},)
    metadata = {**shaped[0], **(tiff.imagej_metadata or {})}
    y_size, x_size = _tiff_pixel_size(tiff.pages[0])
    spacing = (float(metadata.get("spacing") or 1.0), y_size, x_size)
    return spacing, metadata.get("unit") or None


def _tiff_pixel_size(page: tifffile.TiffPage) -> tuple[float, float]:
    """(y, x) pixel size from the resolution tags (pixels per unit); 1 when absent."""
    sizes = []
    for tag in ("YResolution", "XResolution"):
        value = page.tags.get(tag)
        numerator, denominator = value.value if value is not None else (1, 1)
        sizes.append(denominator / numerator if numerator else 1.0)
    return sizes[0], sizes[1]


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
