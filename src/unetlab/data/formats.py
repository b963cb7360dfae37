"""File formats the project reads: their suffixes, and file names without them."""

from __future__ import annotations

from pathlib import Path

TIFF_SUFFIXES = (".tif", ".tiff")
NIFTI_SUFFIXES = (".nii", ".nii.gz")
IMAGE_SUFFIXES = (".png", *TIFF_SUFFIXES, ".jpg", ".jpeg", ".bmp")
"""2-D images (TIFF files may also hold stacks and volumes)."""
VOLUME_SUFFIXES = NIFTI_SUFFIXES + TIFF_SUFFIXES
SAMPLE_SUFFIXES = IMAGE_SUFFIXES + NIFTI_SUFFIXES
"""Every file a dataset folder or a prediction input may hold."""


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


def is_tiff(path: str | Path) -> bool:
    """Whether the file name says TIFF (``.tif`` or ``.tiff``)."""
    return file_suffix(path) in TIFF_SUFFIXES
