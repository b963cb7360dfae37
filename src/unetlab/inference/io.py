"""Finding input images and volumes and writing masks, probability maps and overlays.

Volumes (NIfTI, TIFF) keep their voxel grid: masks and probabilities are written with the
input's spacing, and NIfTI outputs with its affine, so they overlay the input in any viewer.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from unetlab.data.formats import SAMPLE_SUFFIXES, file_stem, file_suffix, is_nifti, is_tiff
from unetlab.data.io import read_pixels, read_volume
from unetlab.data.volumes import Volume, write_volume

MASK_FORMATS = ("auto", "png", "tif", "nii.gz")

PALETTE = np.array(
    [
        (0, 0, 0),
        (255, 127, 14),
        (31, 119, 180),
        (44, 160, 44),
        (214, 39, 40),
        (148, 103, 189),
        (140, 86, 75),
        (227, 119, 194),
        (188, 189, 34),
        (23, 190, 207),
    ],
    dtype=np.float32,
)
"""Overlay colours of classes 1..9 (class 0, the background, is left uncoloured)."""


def find_inputs(pattern: str | Path) -> list[Path]:
    """The image files named by a file, a folder (its images, not recursive) or a glob.

    Args:
        pattern: A file path, a folder path, or a glob such as ``data/*.tif`` or ``**/*.png``.

    Raises:
        FileNotFoundError: Nothing matches, or the folder holds no images.
    """
    text = str(pattern)
    path = Path(text).expanduser()
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if file_suffix(p) in SAMPLE_SUFFIXES)
        if not files:
            raise FileNotFoundError(
                f"input={text}: the folder holds no images ({', '.join(SAMPLE_SUFFIXES)})"
            )
        return files
    if glob.has_magic(text):
        matches = sorted(Path(p) for p in glob.glob(str(path), recursive=True))
        files = [p for p in matches if p.is_file() and file_suffix(p) in SAMPLE_SUFFIXES]
        if not files:
            raise FileNotFoundError(
                f"input={text}: the pattern matches no images ({', '.join(SAMPLE_SUFFIXES)})"
            )
        return files
    raise FileNotFoundError(
        f"input={text}: no such file or folder; pass a file, a folder or a glob"
    )


@dataclass
class InputImage:
    """The pixels of one input file, arranged for the network.

    Attributes:
        path: The file.
        items: (N, *spatial, C): N images (pages of a stack) or N volumes.
        stacked: Whether the file is a stack (written back as one).
        grid: For a file holding one volume, its voxel grid (spacing, affine), which its
            outputs are written with.
    """

    path: Path
    items: np.ndarray
    stacked: bool
    grid: Volume | None = None

    @property
    def stem(self) -> str:
        """The file name without its format suffix (``a.nii.gz`` -> ``a``)."""
        return file_stem(self.path)


def _read_nifti(path: Path, spatial_dims: int) -> InputImage:
    """A NIfTI volume (one per file) with its voxel grid."""
    if spatial_dims != 3:
        raise ValueError(
            f"{path}: a NIfTI volume, but the model is {spatial_dims}-D "
            f"(model.spatial_dims={spatial_dims}); predict volumes with a 3-D model"
        )
    volume = read_volume(path)
    return InputImage(path, volume.with_channels()[None], stacked=False, grid=volume)


def read_input(path: str | Path, spatial_dims: int = 2) -> InputImage:
    """Read an image, a multi-page TIFF stack, or a TIFF or NIfTI volume for a network.

    For a 2-D network every page of a stack is an image of its own. For a 3-D network the
    last non-channel axis before Y and X is the depth, and any axes before it list volumes;
    a file holding one volume keeps its voxel grid (``InputImage.grid``).

    Args:
        path: The file.
        spatial_dims: 2 or 3, the network's spatial dimensions.

    Raises:
        ValueError: The file cannot be read, or its axes do not fit the network.
    """
    path = Path(path)
    if is_nifti(path):
        return _read_nifti(path, spatial_dims)
    pixels = read_pixels(path)
    array = pixels.with_channels()
    if array.ndim < spatial_dims + 1:
        raise ValueError(
            f"{path}: image has axes {pixels.axes} (shape {array.shape[:-1]}) but the model is "
            f"{spatial_dims}-D (model.spatial_dims={spatial_dims}); give it a TIFF volume"
        )
    leading = array.shape[: -(spatial_dims + 1)]
    items = array.reshape(-1, *array.shape[len(leading) :])
    grid = None
    if spatial_dims == 3 and not leading and pixels.spacing is not None:
        grid = Volume(items[0], pixels.spacing, unit=pixels.unit)
    return InputImage(path, items, stacked=len(leading) > 0, grid=grid)


def mask_path(output_dir: Path, image: InputImage, mask_format: str) -> Path:
    """Where the label mask of ``image`` is written: ``<output>/masks/<stem>.png|.tif|.nii.gz``.

    Args:
        output_dir: The output folder.
        image: The input.
        mask_format: ``png``, ``tif``, ``nii.gz`` (volumes) or ``auto`` (NIfTI for NIfTI
            inputs, TIFF for TIFF inputs, stacks and volumes, else PNG).
    """
    if mask_format not in MASK_FORMATS:
        raise ValueError(
            f"mask_format={mask_format!r} is not supported; choose one of {', '.join(MASK_FORMATS)}"
        )
    if mask_format == "nii.gz" and image.grid is None:
        raise ValueError(
            f"{image.path}: mask_format=nii.gz writes single volumes; this input is not one "
            "(use mask_format=auto)"
        )
    if mask_format == "nii.gz" or (mask_format == "auto" and is_nifti(image.path)):
        return output_dir / "masks" / f"{image.stem}.nii.gz"
    as_tiff = mask_format == "tif" or (mask_format == "auto" and is_tiff(image.path))
    if image.stacked or image.items.ndim > 4:
        as_tiff = True
    return output_dir / "masks" / f"{image.stem}{'.tif' if as_tiff else '.png'}"


def label_dtype(num_classes: int) -> np.dtype:
    """The smallest unsigned integer type that holds class indices ``0..num_classes-1``."""
    if num_classes <= 256:
        return np.dtype(np.uint8)
    if num_classes <= 65536:
        return np.dtype(np.uint16)
    raise ValueError(f"num_classes={num_classes}: label masks hold at most 65536 classes")


def write_mask(path: Path, labels: np.ndarray, grid: Volume | None = None) -> None:
    """Write class indices as a PNG (one 2-D image), a TIFF or a NIfTI volume.

    Args:
        path: Output file; its suffix picks the format.
        labels: (H, W) or (N, *spatial) unsigned integers.
        grid: The voxel grid of a volume: its spacing (and affine, for NIfTI) is written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if grid is not None:
        write_volume(path, grid.with_array(labels))
    elif path.suffix == ".png":
        Image.fromarray(labels).save(path)
    else:
        tifffile.imwrite(path, labels, photometric="minisblack", compression="zlib")


def write_probabilities(
    path: Path, probabilities: np.ndarray, axes: str, grid: Volume | None = None
) -> None:
    """Write per-class probabilities as a float16 TIFF, or a float32 NIfTI volume.

    Args:
        path: Output ``.tif`` file, or ``.nii.gz`` for a volume with ``grid``.
        probabilities: Array with a class axis (C), e.g. (C, H, W) or (Z, C, H, W).
        axes: tifffile axis codes of ``probabilities``, e.g. ``CYX`` or ``ZCYX``.
        grid: The voxel grid of a (C, Z, Y, X) volume, for NIfTI output (classes last).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if grid is not None and is_nifti(path):
        classes_last = np.moveaxis(probabilities, axes.index("C"), -1).astype(np.float32)
        write_volume(path, grid.with_array(classes_last))
        return
    tifffile.imwrite(
        path,
        probabilities.astype(np.float16, copy=False),
        photometric="minisblack",
        metadata={"axes": axes},
    )


def display_range(image: np.ndarray, percentiles: tuple[float, float] = (1.0, 99.8)) -> np.ndarray:
    """Per-channel intensities at ``percentiles`` of an (H, W, C) image, as (2, C).

    Computed on at most about a million pixels (a regular subsample of large images).
    """
    step = max(1, round((image.shape[0] * image.shape[1] / 1e6) ** 0.5))
    sample = image[::step, ::step].reshape(-1, image.shape[-1]).astype(np.float32)
    return np.percentile(sample, percentiles, axis=0)


def overlay_rgb(
    image: np.ndarray,
    labels: np.ndarray,
    alpha: float = 0.4,
    chunk_rows: int = 1024,
    palette: np.ndarray = PALETTE,
) -> np.ndarray:
    """An RGB picture of ``image`` with every class but 0 tinted and outlined in its colour.

    The image is contrast-stretched between its 1st and 99.8th percentiles, so dim
    microscopy images are visible.

    Args:
        image: (H, W, C) intensities; 3 channels are shown as RGB, otherwise the first
            channel as grey.
        labels: (H, W) class indices.
        alpha: Opacity of the tint; outlines are opaque.
        chunk_rows: Rows composed at a time (bounds the float32 working memory).
        palette: Colour of every label (row 0 unused); labels beyond it cycle.
    """
    image = image if image.shape[-1] == 3 else image[..., :1]
    low, high = display_range(image)
    scale = 255.0 / np.maximum(high - low, 1e-6)
    edges = np.zeros(labels.shape, bool)
    edges[1:] |= labels[1:] != labels[:-1]
    edges[:-1] |= labels[:-1] != labels[1:]
    edges[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    edges[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    rgb = np.empty((*labels.shape, 3), np.uint8)
    for first in range(0, labels.shape[0], chunk_rows):
        rows = slice(first, first + chunk_rows)
        base = np.clip((image[rows].astype(np.float32) - low) * scale, 0.0, 255.0)
        base = np.broadcast_to(base, (*base.shape[:2], 3))
        chunk_labels = labels[rows]
        colour = palette[(chunk_labels - 1) % (len(palette) - 1) + 1]
        foreground = (chunk_labels > 0)[..., None]
        opacity = np.where(foreground, alpha, 0.0) + np.where(
            (edges[rows] & (chunk_labels > 0))[..., None], 1.0 - alpha, 0.0
        )
        rgb[rows] = np.rint(base * (1.0 - opacity) + colour * opacity).astype(np.uint8)
    return rgb


def write_overlay(path: Path, rgb: np.ndarray) -> None:
    """Write an RGB overlay as a PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)
