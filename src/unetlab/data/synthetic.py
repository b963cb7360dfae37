"""Procedural fluorescence-microscopy nuclei: the embedded default dataset.

Each image shows nuclei of varied size, shape and brightness (some touching) under uneven
illumination, optical blur, Poisson shot noise and Gaussian read noise. Ground truth is a
semantic mask (0 = background, 1 = nucleus) and an instance-label image (0 = background,
1..N = nuclei). Everything is a deterministic function of the seed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from unetlab.data.generated import GeneratedDataset


@dataclass(frozen=True)
class NucleiStyle:
    """Parameters of the generator (radii in pixels, intensities in photons)."""

    min_nuclei: int = 6
    max_nuclei: int = 22
    min_radius: float = 5.0
    max_radius: float = 14.0
    touching_fraction: float = 0.3
    min_brightness: float = 40.0
    max_brightness: float = 160.0
    background_photons: float = 8.0
    blur_sigma: float = 1.2
    read_noise: float = 3.0


def _nucleus_footprint(
    rng: np.random.Generator, shape: tuple[int, int], center: np.ndarray, radius: float
) -> np.ndarray:
    """Boolean mask of one irregular, elongated, rotated nucleus."""
    yy, xx = np.indices(shape, dtype=np.float32)
    dy, dx = yy - center[0], xx - center[1]
    angle = rng.uniform(0, np.pi)
    elongation = rng.uniform(1.0, 1.6)
    u = (dx * np.cos(angle) + dy * np.sin(angle)) / elongation
    v = -dx * np.sin(angle) + dy * np.cos(angle)
    theta = np.arctan2(v, u)
    wobble = sum(
        rng.uniform(0, 0.08) * np.cos(k * theta + rng.uniform(0, 2 * np.pi)) for k in (2, 3, 5)
    )
    return np.hypot(u, v) <= radius * (1.0 + wobble) / np.sqrt(elongation)


def place_objects(
    rng: np.random.Generator, shape: tuple[int, ...], count: int, style: NucleiStyle
) -> list[tuple[np.ndarray, float]]:
    """Object centres and radii in an image or volume of ``shape``.

    A fraction of the objects is placed against an earlier one so they touch.
    """
    extent = np.asarray(shape, np.float64)
    placed: list[tuple[np.ndarray, float]] = []
    for _ in range(count * 20):
        if len(placed) == count:
            break
        radius = rng.uniform(style.min_radius, style.max_radius)
        if placed and rng.random() < style.touching_fraction:
            anchor, anchor_radius = placed[rng.integers(len(placed))]
            direction = rng.normal(size=len(shape))
            direction /= np.linalg.norm(direction) + 1e-8
            center = anchor + direction * (anchor_radius + radius) * 0.9
        else:
            center = rng.uniform(radius, extent - radius)
        distances = [np.linalg.norm(center - c) / (r + radius) for c, r in placed]
        if all(d > 0.85 for d in distances) and np.all((center > 0) & (center < extent)):
            placed.append((center, radius))
    return placed


def acquire(rng: np.random.Generator, signal: np.ndarray, style: NucleiStyle) -> np.ndarray:
    """What a microscope records of ``signal`` (photons), as uint8 counts.

    Uneven illumination (a linear gradient and a vignette), optical blur, Poisson shot noise
    and Gaussian read noise, in any number of dimensions.
    """
    shape = signal.shape
    extent = np.asarray(shape, np.float32).reshape(-1, *(1,) * len(shape))
    axes = np.indices(shape, dtype=np.float32) / extent  # position in [0, 1) along each axis
    gradient = rng.uniform(-0.5, 0.5, size=len(shape))
    illumination = 1.0 + gradient[0] * (axes[0] - 0.5)
    squared_distance = (axes[0] - 0.5) ** 2
    for weight, axis in zip(gradient[1:], axes[1:], strict=True):
        illumination = illumination + weight * (axis - 0.5)
        squared_distance = squared_distance + (axis - 0.5) ** 2
    vignette = 1.0 - 0.4 * squared_distance
    photons = ndimage.gaussian_filter(signal, style.blur_sigma) * illumination * vignette
    photons = np.clip(photons + style.background_photons, 0, None)
    counts = rng.poisson(photons).astype(np.float32)
    counts += rng.normal(0.0, style.read_noise, size=shape).astype(np.float32)
    return np.clip(counts, 0, 255).astype(np.uint8)


def generate_nuclei_image(
    rng: np.random.Generator, size: int = 128, style: NucleiStyle | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic fluorescence image and its instance labels.

    Args:
        rng: Source of randomness (the only one used).
        size: Height and width in pixels.
        style: Generator parameters.

    Returns:
        ``(image, instances)``: uint8 image (H, W) and uint16 instance labels (H, W).
    """
    style = style or NucleiStyle()
    shape = (size, size)
    instances = np.zeros(shape, np.uint16)
    signal = np.zeros(shape, np.float32)
    count = int(rng.integers(style.min_nuclei, style.max_nuclei + 1))
    for label, (center, radius) in enumerate(place_objects(rng, shape, count, style), start=1):
        footprint = _nucleus_footprint(rng, shape, center, radius) & (instances == 0)
        instances[footprint] = label
        texture = ndimage.gaussian_filter(rng.normal(size=shape).astype(np.float32), 2.0)
        brightness = rng.uniform(style.min_brightness, style.max_brightness)
        signal[footprint] = brightness * (1.0 + 0.6 * texture[footprint])
    return acquire(rng, signal, style), instances


class SyntheticNuclei(GeneratedDataset):
    """Writes the synthetic dataset as an ``images/`` + ``masks/`` + ``instances/`` folder.

    Generated once per parameter set under ``root`` and reused afterwards (see
    :class:`~unetlab.data.generated.GeneratedDataset`).

    Args:
        root: Cache folder (git ignores it).
        num_images: Number of images.
        image_size: Height and width of each image in pixels.
        seed: Generator seed; the dataset is a deterministic function of it.
    """

    prefix = "nuclei"

    def __init__(
        self, root: str | Path, num_images: int = 160, image_size: int = 128, seed: int = 0
    ) -> None:
        if num_images < 3:
            raise ValueError(f"data.source.num_images={num_images}: need at least 3 images")
        super().__init__(root)
        self.num_images = num_images
        self.image_size = image_size
        self.seed = seed

    @property
    def params(self) -> dict:
        """Everything the generated files depend on."""
        return {
            "num_images": self.num_images,
            "image_size": self.image_size,
            "seed": self.seed,
            "style": asdict(NucleiStyle()),
            "version": 1,
        }

    def write(self, folder: Path) -> None:
        """Generate every image, its mask and its instance labels as PNG."""
        seeds = np.random.SeedSequence(self.seed).spawn(self.num_images)
        for index, child in enumerate(seeds):
            image, instances = generate_nuclei_image(np.random.default_rng(child), self.image_size)
            name = f"nuclei_{index:04d}.png"
            Image.fromarray(image).save(folder / "images" / name)
            Image.fromarray((instances > 0).astype(np.uint8)).save(folder / "masks" / name)
            Image.fromarray(instances).save(folder / "instances" / name)
