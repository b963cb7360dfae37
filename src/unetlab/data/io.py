"""Reading images and masks from disk (PNG, TIFF, JPEG, BMP)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile
from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")


def read_array(path: str | Path) -> np.ndarray:
    """Read one image file as it is stored (dtype kept, channels last).

    Raises:
        ValueError: One line naming the file when it cannot be decoded.
    """
    path = Path(path)
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            return np.asarray(tifffile.imread(path))
        with Image.open(path) as image:
            image.load()
            return np.asarray(image)
    except (OSError, ValueError, UnidentifiedImageError, SyntaxError) as error:
        raise ValueError(
            f"{path}: cannot read image ({type(error).__name__}: {error}); "
            "check the file is a complete PNG/TIFF/JPEG/BMP or remove it"
        ) from None


def read_image(path: str | Path) -> np.ndarray:
    """Read an image as (H, W, C), dtype kept."""
    array = read_array(path)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3:
        raise ValueError(f"{path}: image has shape {array.shape}; expected (H, W) or (H, W, C)")
    return array


def read_mask(path: str | Path) -> np.ndarray:
    """Read a label image as (H, W); RGB masks whose channels agree are reduced to one."""
    array = read_array(path)
    if array.ndim == 3:
        if array.shape[-1] in (3, 4) and np.array_equal(array[..., 0], array[..., 1]):
            array = array[..., 0]
        else:
            raise ValueError(
                f"{path}: mask has shape {array.shape}; expected a single-channel label image"
            )
    return array
