"""Reading images and masks from disk (PNG, TIFF, JPEG, BMP; pages of multi-page TIFFs)."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")
TIFF_SUFFIXES = (".tif", ".tiff")


def describe(path: str | Path, page: int | None = None) -> str:
    """How a file (or one page of a stack) is named in messages."""
    return f"{path}" if page is None else f"{path} (page {page})"


def read_array(path: str | Path, page: int | None = None) -> np.ndarray:
    """Read one image file, or one page of a multi-page TIFF, as stored (dtype kept).

    Args:
        path: The file.
        page: Page of a multi-page TIFF; ``None`` reads the whole file.

    Raises:
        ValueError: One line naming the file when it cannot be decoded.
    """
    path = Path(path)
    try:
        if path.suffix.lower() in TIFF_SUFFIXES:
            array = np.asarray(tifffile.imread(path, key=page))
        elif page is not None:
            raise ValueError(f"only TIFF files have pages, not {path.suffix}")
        else:
            with Image.open(path) as image:
                image.load()
                array = np.asarray(image)
        if array.size == 0:
            raise ValueError("the file holds no pixels")
        return array
    except (
        OSError,
        ValueError,
        IndexError,
        UnidentifiedImageError,
        SyntaxError,
        struct.error,
        MemoryError,
        Image.DecompressionBombError,
    ) as error:
        raise ValueError(
            f"{describe(path, page)}: cannot read image ({type(error).__name__}: {error}); "
            "check the file is a complete PNG/TIFF/JPEG/BMP or remove it"
        ) from None


def count_pages(path: str | Path) -> int:
    """Number of pages of a (multi-page) TIFF file."""
    try:
        with tifffile.TiffFile(path) as stack:
            return len(stack.pages)
    except (OSError, ValueError) as error:
        raise ValueError(
            f"{path}: cannot read TIFF stack ({type(error).__name__}: {error}); "
            "check the file is complete or download it again"
        ) from None


def read_image(path: str | Path, page: int | None = None) -> np.ndarray:
    """Read an image as (H, W, C), dtype kept."""
    array = read_array(path, page)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3:
        raise ValueError(
            f"{describe(path, page)}: image has shape {array.shape}; expected (H, W) or "
            "(H, W, C); split stacks and volumes into 2-D images"
        )
    return array


def read_mask(path: str | Path, page: int | None = None) -> np.ndarray:
    """Read a label image as (H, W); RGB(A) or LA masks whose colour channels agree become one."""
    array = read_array(path, page)
    if array.ndim == 3:
        colour = array[..., :3] if array.shape[-1] in (3, 4) else array[..., :1]
        if np.all(colour == colour[..., :1]):
            array = array[..., 0]
        else:
            raise ValueError(
                f"{describe(path, page)}: mask has shape {array.shape}; expected a "
                "single-channel label image"
            )
    return array
