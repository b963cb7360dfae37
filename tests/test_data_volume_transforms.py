"""Augmentations of volumes: z flips, intensity changes, 3-D elastic deformation, configs."""

from __future__ import annotations

import random
from pathlib import Path

import albumentations as A
import numpy as np
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from unetlab.config_location import CONFIG_DIR
from unetlab.data.transforms import DepthFlip, ElasticDeformation3D, IntensityScaleShift

AUGMENTATIONS = Path(CONFIG_DIR, "data", "augmentation")


def labelled_volume(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A (Z, Y, X, 1) image that is a function of its (Z, Y, X) labels."""
    labels = np.random.default_rng(seed).integers(0, 3, (6, 10, 12)).astype(np.int16)
    return (0.2 + 0.3 * labels[..., None]).astype(np.float32), labels


def run(transform: A.BasicTransform, seed: int = 0) -> dict:
    pipeline = A.Compose([transform])
    pipeline.add_targets({"weight_map": "mask3d"})
    pipeline.set_random_state(np.random.default_rng(seed), random.Random(seed))
    image, labels = labelled_volume(seed)
    return pipeline(volume=image, mask3d=labels, weight_map=labels.astype(np.float32))


def test_depth_flip_reverses_slices_of_volume_and_labels() -> None:
    image, labels = labelled_volume()
    out = run(DepthFlip(p=1.0))
    assert np.array_equal(out["volume"], image[::-1]) and np.array_equal(
        out["mask3d"], labels[::-1]
    )
    assert np.array_equal(out["weight_map"], labels[::-1].astype(np.float32))


def test_intensity_change_leaves_labels_alone() -> None:
    image, labels = labelled_volume()
    out = run(IntensityScaleShift(scale_limit=0.2, shift_limit=0.2, p=1.0))
    assert np.array_equal(out["mask3d"], labels) and out["volume"].dtype == np.float32
    scale, shift = np.polyfit(image.ravel(), out["volume"].ravel(), 1)
    assert 0.8 <= scale <= 1.2 and -0.2 <= shift <= 0.2 and (scale, shift) != (1.0, 0.0)
    np.testing.assert_allclose(out["volume"], scale * image + shift, atol=1e-5)


def test_elastic_3d_keeps_labels_labels_and_is_identity_without_displacement() -> None:
    image, labels = labelled_volume()
    out = run(ElasticDeformation3D(sigma=3.0, p=1.0))
    assert out["volume"].shape == image.shape and out["mask3d"].dtype == np.int16
    assert set(np.unique(out["mask3d"])) <= {0, 1, 2}
    assert not np.array_equal(out["mask3d"], labels)
    assert np.array_equal(out["weight_map"], out["mask3d"].astype(np.float32))
    still = run(ElasticDeformation3D(sigma=0.0, p=1.0))
    np.testing.assert_allclose(still["volume"], image, atol=1e-6)
    assert np.array_equal(still["mask3d"], labels)


@pytest.mark.parametrize("name", ["flips3d", "elastic3d"])
def test_volume_augmentation_configs_keep_image_and_labels_together(name: str) -> None:
    pipeline = instantiate(OmegaConf.load(AUGMENTATIONS / f"{name}.yaml"))
    pipeline.set_random_state(np.random.default_rng(1), random.Random(1))
    image, labels = labelled_volume()
    image, labels = image[:, :10, :10], labels[:, :10, :10]
    for _ in range(5):
        out = pipeline(volume=image, mask3d=labels)
        assert out["volume"].shape == image.shape and out["mask3d"].shape == labels.shape
        # Image and labels moved together (exactly for flips and rotations).
        agreement = np.corrcoef(out["volume"].ravel(), out["mask3d"].ravel())[0, 1]
        assert agreement > (0.999 if name == "flips3d" else 0.5)
