"""Intensity scaling, per-channel statistics (cached per training split) and standardisation."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from unetlab.atomic_file import write_json_atomic

log = logging.getLogger(__name__)

DEFAULT_PERCENTILES = (0.5, 99.5)


def scale_to_unit(
    image: np.ndarray, percentiles: tuple[float, float] = DEFAULT_PERCENTILES
) -> np.ndarray:
    """Map raw intensities to about [0, 1] as float32.

    8-bit images are divided by 255; 16-bit and float images are scaled between the given
    per-channel percentiles (robust to hot pixels and a dark background). Images are
    (H, W, C), volumes (Z, Y, X, C).
    """
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    data = image.astype(np.float32)
    spatial = tuple(range(data.ndim - 1))
    low, high = np.percentile(data, percentiles, axis=spatial, keepdims=True)
    return ((data - low) / np.maximum(high - low, 1e-6)).astype(np.float32)


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
