"""Preparing pixels for a network: intensity scaling, standardisation, channels first.

:func:`preprocess` is the whole way from stored pixels to network input; prediction and
the BioImage Model Zoo export call it, and the data module runs its steps on either side
of cropping and augmentation: :func:`unit_image` when it decodes a sample,
:func:`network_layout` when it serves one. Also per-channel statistics, cached per split.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from unetlab.atomic_file import write_json_atomic
from unetlab.data.resampling import resize

log = logging.getLogger(__name__)

DEFAULT_PERCENTILES = (0.5, 99.5)
# How stored intensities become [0, 1] (``data.intensity_scaling``): `by_dtype` divides 8-bit
# images by 255 and scales the others between their percentiles; `per_image` scales every
# image, 8-bit ones too, between its own percentiles.
INTENSITY_SCALINGS = ("by_dtype", "per_image")


def check_intensity_scaling(scaling: str) -> str:
    """``scaling`` when it is one of :data:`INTENSITY_SCALINGS`; a one-line error otherwise."""
    if scaling not in INTENSITY_SCALINGS:
        raise ValueError(
            f"data.intensity_scaling={scaling!r} is not known; choose "
            f"{' or '.join(INTENSITY_SCALINGS)}"
        )
    return scaling


def scale_to_unit(
    image: np.ndarray,
    percentiles: tuple[float, float] = DEFAULT_PERCENTILES,
    scaling: str = "by_dtype",
) -> np.ndarray:
    """Map raw intensities to about [0, 1] as float32.

    With ``scaling="by_dtype"`` 8-bit images are divided by 255; 16-bit and float images, and
    with ``"per_image"`` every image, are scaled between the given per-channel percentiles
    of the image itself (robust to hot pixels, a dark background and dim acquisitions).
    Images are (H, W, C), volumes (Z, Y, X, C).
    """
    if image.dtype == np.uint8 and check_intensity_scaling(scaling) == "by_dtype":
        return image.astype(np.float32) / 255.0
    data = image.astype(np.float32)
    spatial = tuple(range(data.ndim - 1))
    low, high = np.percentile(data, percentiles, axis=spatial, keepdims=True)
    return ((data - low) / np.maximum(high - low, 1e-6)).astype(np.float32)


def config_percentiles(config: Mapping[str, Any]) -> tuple[float, float]:
    """The percentiles a run's config scales 16-bit and float images with (``data.percentiles``)."""
    low, high = (config.get("data") or {}).get("percentiles") or DEFAULT_PERCENTILES
    return float(low), float(high)


def config_intensity_scaling(config: Mapping[str, Any]) -> str:
    """A run's ``data.intensity_scaling`` (``by_dtype`` for runs from before the option)."""
    return check_intensity_scaling(
        (config.get("data") or {}).get("intensity_scaling") or "by_dtype"
    )


def unit_image(
    image: np.ndarray,
    percentiles: Sequence[float] = DEFAULT_PERCENTILES,
    shape: Sequence[int] | None = None,
    scaling: str = "by_dtype",
) -> np.ndarray:
    """Stored pixels (*spatial, C) scaled to about [0, 1], resampled linearly to ``shape``.

    Args:
        image: An image (H, W, C) or volume (Z, Y, X, C), dtype as stored.
        percentiles: Scaling of 16-bit and float images (:func:`scale_to_unit`).
        shape: Spatial shape to resample to (volumes with ``data.target_spacing``); None
            keeps the grid.
        scaling: ``data.intensity_scaling`` (:func:`scale_to_unit`).
    """
    low, high = percentiles
    unit = scale_to_unit(image, (float(low), float(high)), scaling)
    return unit if shape is None else resize(unit, tuple(shape), order=1)


def network_layout(
    unit: np.ndarray, mean: Sequence[float] | None, std: Sequence[float] | None
) -> np.ndarray:
    """A scaled image (*spatial, C) standardised per channel, as (C, *spatial) float32.

    Args:
        unit: Output of :func:`unit_image` (possibly cropped and augmented).
        mean: Training mean per channel; None leaves the intensities as they are.
        std: Training standard deviation per channel.
    """
    if mean is not None and std is not None:
        unit = standardize(unit, mean, std)
    return np.ascontiguousarray(np.moveaxis(unit, -1, 0), np.float32)


def preprocess(
    image: np.ndarray,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
    percentiles: Sequence[float] = DEFAULT_PERCENTILES,
    shape: Sequence[int] | None = None,
    scaling: str = "by_dtype",
) -> np.ndarray:
    """Stored pixels (*spatial, C) to network input (C, *spatial), float32.

    Scale to [0, 1] (8-bit / 255 unless ``scaling="per_image"``, other types between
    ``percentiles``), resample to ``shape`` if given, standardise with the training ``mean``
    and ``std``, channels first.
    """
    return network_layout(unit_image(image, percentiles, shape, scaling), mean, std)


class RunningChannelStats:
    """Per-channel mean and standard deviation accumulated image by image (float64 sums)."""

    def __init__(self) -> None:
        self.total: np.ndarray | None = None
        self.squares: np.ndarray | None = None
        self.count = 0

    def update(self, image: np.ndarray) -> None:
        """Add the pixels of one (H, W, C) image."""
        pixels = image.reshape(-1, image.shape[-1]).astype(np.float64)
        if self.total is None:
            self.total = np.zeros(pixels.shape[1])
            self.squares = np.zeros(pixels.shape[1])
        self.total += pixels.sum(0)
        self.squares += (pixels**2).sum(0)
        self.count += pixels.shape[0]

    def result(self) -> tuple[list[float], list[float]]:
        """``(mean, std)`` per channel."""
        if self.total is None or self.squares is None:
            raise ValueError("no images to compute the channel statistics from")
        mean = self.total / self.count
        std = np.sqrt(np.maximum(self.squares / self.count - mean**2, 1e-12))
        return mean.tolist(), std.tolist()


def channel_statistics(images: Sequence[np.ndarray]) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation over all pixels of (H, W, C) images."""
    stats = RunningChannelStats()
    for image in images:
        stats.update(image)
    return stats.result()


def standardize(image: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """``(image - mean) / std`` per channel, float32."""
    mean_array = np.asarray(mean, np.float32)
    std_array = np.asarray(std, np.float32)
    return ((image - mean_array) / std_array).astype(np.float32)


class StatsCache:
    """Channel statistics stored as JSON, one file per training split.

    The key covers the training files (path, page, size, modification time) and the
    scaling, so a changed file or split gives a new entry.

    Args:
        folder: Where the JSON files live; ``None`` disables the cache.
    """

    def __init__(self, folder: str | Path | None) -> None:
        self.folder = Path(folder) if folder else None

    @staticmethod
    def key(files: Sequence[tuple[str | Path, int | None]], scaling: object) -> str:
        """Digest of the training files ``(path, page)`` and the scaling settings."""
        entries = []
        for path, page in files:
            stat = Path(path).stat()
            entries.append([str(Path(path).resolve()), page, stat.st_size, stat.st_mtime_ns])
        text = json.dumps({"files": sorted(entries), "scaling": scaling}, sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:16]

    def load(self, key: str) -> tuple[list[float], list[float]] | None:
        """Cached ``(mean, std)``, or None."""
        if self.folder is None:
            return None
        path = self.folder / f"stats_{key}.json"
        try:
            stored = json.loads(path.read_text())
            return list(stored["mean"]), list(stored["std"])
        except (OSError, ValueError, KeyError):
            return None

    def save(self, key: str, mean: Sequence[float], std: Sequence[float]) -> None:
        """Store ``(mean, std)`` atomically; a read-only cache folder only logs a warning."""
        if self.folder is None:
            return
        try:
            stats = {"mean": list(mean), "std": list(std)}
            write_json_atomic(self.folder / f"stats_{key}.json", stats)
        except OSError as error:
            log.warning("could not cache channel statistics in %s: %s", self.folder, error)
