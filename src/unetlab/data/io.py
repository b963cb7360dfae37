"""Reading images, stacks and volumes: the one way every command gets pixels from files.

The data module (training and ``unetlab-eval``), ``unetlab-predict`` and the BioImage Model
Zoo export all read through here, so they see the same pixels in the same axis order.

* PNG, JPEG and BMP are read with Pillow; RGB(A) pixels are channels.
* TIFF files are read with tifffile, every series of the file: pages written one at a time
  form one series each, and series of one shape are stacked along a leading ``I`` axis.
  The axes keep tifffile's codes (``YX``, ``ZYX``, ``YXS``, ``ZCYX``, ...); its channel
  axis (``C`` channel planes or ``S`` samples of a pixel, at most one) is moved last.
* NIfTI volumes are read with nibabel, transposed from (x, y, z) to (z, y, x).

Images are (*spatial, C) and volumes (Z, Y, X) or (Z, Y, X, C), dtype as stored.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import tifffile
from PIL import Image, UnidentifiedImageError

from unetlab.data.formats import (
    NIFTI_SUFFIXES,
    VOLUME_SUFFIXES,
    file_suffix,
    is_tiff,
)
from unetlab.data.volumes import Volume

CHANNEL_AXES = "CS"
"""tifffile axis codes of channels: C (channel planes) and S (samples of a pixel, e.g. RGB)."""
DECODING_ERRORS = (
    OSError,
    ValueError,
    IndexError,
    KeyError,
    EOFError,
    UnidentifiedImageError,
    SyntaxError,
    struct.error,
    MemoryError,
    Image.DecompressionBombError,
    tifffile.TiffFileError,
)
"""What the decoders raise on damaged or unusual files."""


def describe(path: str | Path, page: int | None = None) -> str:
    """How a file (or one image of a stack) is named in messages."""
    return f"{path}" if page is None else f"{path} (page {page})"


@dataclass(frozen=True, eq=False)
class Pixels:
    """The pixels of one image file with their axes.

    Attributes:
        array: The pixels, dtype as stored, the channel axis (if any) last.
        axes: One tifffile code per axis of ``array``, e.g. ``YX``, ``IYXC``, ``ZYXC``;
            ``C`` marks the channel axis.
        spacing: Voxel size (z, y, x) of a TIFF (1 where it says nothing); None otherwise.
        unit: Length unit of ``spacing``, if the file names one.
    """

    array: np.ndarray
    axes: str
    spacing: tuple[float, float, float] | None = None
    unit: str | None = None

    @property
    def spatial_axes(self) -> str:
        """The axes other than the channel axis."""
        return self.axes.replace("C", "")

    def with_channels(self) -> np.ndarray:
        """The array with a channel axis last (length 1 for single-channel files)."""
        return self.array if "C" in self.axes else self.array[..., None]


def read_pixels(path: str | Path, page: int | None = None) -> Pixels:
    """Read an image, a stack of images or a TIFF volume (not NIfTI: :func:`read_volume`).

    Args:
        path: The file.
        page: One image of a TIFF stack (:func:`count_images` of them); None = the file.

    Raises:
        ValueError: One line naming the file, when it cannot be decoded or has more than
            one channel axis.
    """
    path = Path(path)
    try:
        if is_tiff(path):
            array, axes, spacing, unit = _read_tiff(path, page)
        else:
            if page is not None:
                raise ValueError(f"only TIFF files have pages, not {path.suffix}")
            with Image.open(path) as image:
                image.load()
                array = np.asarray(image)
            axes, spacing, unit = "YXS"[: array.ndim], None, None
        if array.size == 0:
            raise ValueError("the file holds no pixels")
    except DECODING_ERRORS as error:
        raise ValueError(
            f"{describe(path, page)}: cannot read image ({type(error).__name__}: {error}); "
            "check the file is a complete PNG/TIFF/JPEG/BMP or remove it"
        ) from None
    channels = [i for i, code in enumerate(axes) if code in CHANNEL_AXES]
    if len(channels) > 1:
        raise ValueError(
            f"{describe(path, page)}: image has axes {axes} with more than one channel axis; "
            "save it with a single channel axis"
        )
    if channels:
        array = np.moveaxis(array, channels[0], -1)
        axes = axes[: channels[0]] + axes[channels[0] + 1 :] + "C"
    if len(axes) > len(_image_axes(axes)) and page is not None:
        image_ndim = len(_image_axes(axes))
        array = array.reshape(-1, *array.shape[-image_ndim:])[page]
        axes = axes[-image_ndim:]
    return Pixels(array, axes, spacing, unit)


def _read_tiff(
    path: Path, page: int | None
) -> tuple[np.ndarray, str, tuple[float, float, float], str | None]:
    """Pixels, axes and geometry of a TIFF, or of one of its pages when that is one image."""
    with tifffile.TiffFile(path) as tiff:
        series = tiff.series
        if not series:
            raise ValueError("the file holds no pixels")
        spacing, unit = tiff_geometry(tiff)
        if page is not None and not any("C" in s.axes for s in series):
            stored = tiff.pages[page]
            return np.asarray(stored.asarray()), stored.axes, spacing, unit
        array, axes = _stacked_series(series)
        return array, axes, spacing, unit


def _stacked_series(series: list[tifffile.TiffPageSeries]) -> tuple[np.ndarray, str]:
    """One array of every series of a TIFF; several equal series along a leading ``I``."""
    arrays = [(np.asarray(s.asarray()), s.axes) for s in series]
    first, axes = arrays[0]
    if len(arrays) == 1:
        return first, axes
    if any((a.shape, a.dtype, x) != (first.shape, first.dtype, axes) for a, x in arrays):
        raise ValueError(
            f"the TIFF holds {len(arrays)} images of different shapes; save images of one "
            "size per file"
        )
    return np.stack([a for a, _ in arrays]), "I" + axes


def _image_axes(axes: str) -> str:
    """The axes of one 2-D image among ``axes``: Y, X and the channel axis, if any."""
    return "".join(code for code in axes if code in "YX" + CHANNEL_AXES)


def count_images(path: str | Path) -> int:
    """The number of 2-D images a file holds (pages of a stack; 1 for other formats).

    Raises:
        ValueError: One line naming the file, when it cannot be read.
    """
    path = Path(path)
    if not is_tiff(path):
        return 1
    try:
        with tifffile.TiffFile(path) as tiff:
            shapes = [(s.shape, s.axes) for s in tiff.series]
    except DECODING_ERRORS as error:
        raise ValueError(
            f"{path}: cannot read TIFF stack ({type(error).__name__}: {error}); "
            "check the file is complete or download it again"
        ) from None
    return sum(
        math.prod(shape)
        // max(
            1,
            math.prod(n for n, code in zip(shape, axes, strict=True) if code in _image_axes(axes)),
        )
        for shape, axes in shapes
    )


def read_image(path: str | Path, page: int | None = None) -> np.ndarray:
    """Read one 2-D image (or one image of a TIFF stack) as (H, W, C), dtype kept.

    Raises:
        ValueError: One line naming the file, when it cannot be read or holds several
            images or a volume.
    """
    pixels = read_pixels(path, page)
    if len(pixels.spatial_axes) != 2:
        raise ValueError(
            f"{describe(path, page)}: the file holds {count_images(path)} images (axes "
            f"{pixels.axes}); one image per file, or pages of a TIFF stack, are expected"
        )
    return pixels.with_channels()


def read_mask(path: str | Path, page: int | None = None) -> np.ndarray:
    """Read a label image as (H, W); RGB(A) or LA masks whose colour channels agree become one."""
    array = read_image(path, page)
    colour = array[..., :3] if array.shape[-1] in (3, 4) else array[..., :1]
    if not np.all(colour == colour[..., :1]):
        raise ValueError(
            f"{describe(path, page)}: mask has shape {array.shape}; expected a "
            "single-channel label image"
        )
    return array[..., 0]


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
    if suffix not in NIFTI_SUFFIXES:
        return _tiff_volume(path, read_pixels(path))
    try:
        return _read_nifti(path)
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


def _tiff_volume(path: Path, pixels: Pixels) -> Volume:
    spatial = len(pixels.spatial_axes)
    if spatial != 3:
        what = "a single image" if spatial == 2 else f"{spatial} spatial axes ({pixels.axes})"
        raise ValueError(
            f"{path}: TIFF holds {what}; a volume needs (Z, Y, X) pages, e.g. "
            "tifffile.imwrite(path, volume, photometric='minisblack')"
        )
    return Volume(pixels.array, pixels.spacing, unit=pixels.unit)


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
