"""Volumes through the data module: folders of NIfTI / TIFF volumes, 3-D patches, resampling."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest

from unetlab.data import BiomedicalDataModule, FolderSource
from unetlab.data.io import read_volume
from unetlab.data.mirror import crop_mirrored
from unetlab.data.patches import ContextPlanner, PatchSampler
from unetlab.data.resampling import resize
from unetlab.data.volumes import Volume, write_volume
from unetlab.models import UNet
from unetlab.models.blocks import center_crop_like
from unetlab.models.size_planner import input_size_for_output

SHAPE = (8, 16, 16)


@functools.lru_cache
def valid_unet_3d() -> UNet:
    return UNet(1, 2, base_channels=2, depth=1, padding="valid", spatial_dims=3)


def write_volume_dataset(
    root: Path,
    count: int = 5,
    shape: tuple[int, int, int] = SHAPE,
    suffix: str = ".nii.gz",
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
) -> Path:
    """``root/{images,masks,instances}/vol_i<suffix>``: a bright box per volume (instance 1)."""
    for index in range(count):
        rng = np.random.default_rng(index)
        mask = np.zeros(shape, np.uint8)
        corner = [int(rng.integers(0, n // 2)) for n in shape]
        mask[tuple(slice(c, c + n // 3 + 1) for c, n in zip(corner, shape, strict=True))] = 1
        image = (40 + 150 * mask).astype(np.uint8)
        for sub, array in (("images", image), ("masks", mask), ("instances", mask)):
            write_volume(root / sub / f"vol_{index}{suffix}", Volume(array, spacing))
    return root


def volume_datamodule(root: Path, **options) -> BiomedicalDataModule:
    settings = {
        "spatial_dims": 3,
        "batch_size": 2,
        "val_fraction": 0.2,
        "test_fraction": 0.2,
        "mean": [0.0],
        "std": [1.0],
        **options,
    }
    return BiomedicalDataModule(FolderSource(root), **settings)


@pytest.mark.parametrize("suffix", [".nii.gz", ".tif"])
def test_volume_folders_load_and_batch(tmp_path: Path, suffix: str) -> None:
    dm = volume_datamodule(write_volume_dataset(tmp_path, suffix=suffix))
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (2, 1, *SHAPE) and batch["mask"].shape == (2, *SHAPE)
    assert np.array_equal((batch["image"][:, 0] > 0.5).long(), batch["mask"])
    assert sorted(dm.split["train"] + dm.split["val"] + dm.split["test"]) == [
        f"vol_{i}" for i in range(5)
    ]


def test_anisotropic_volumes_are_resampled_to_the_target_spacing(tmp_path: Path) -> None:
    root = write_volume_dataset(tmp_path, shape=(6, 16, 16), spacing=(2.0, 0.5, 0.5))
    dm = volume_datamodule(root, target_spacing=[1.0, 1.0, 1.0])
    dm.setup()
    sample = dm.datasets["train"].samples[0]
    assert sample.image.shape == (12, 8, 8, 1) and sample.mask.shape == (12, 8, 8)
    stored = read_volume(root / "masks" / f"{sample.name}.nii.gz").array
    assert np.array_equal(sample.mask, resize(stored, (12, 8, 8), order=0))
    assert np.array_equal(sample.instances, sample.mask)
    assert np.mean((sample.image[..., 0] > 0.5) == (sample.mask > 0)) > 0.9


def test_2d_data_with_target_spacing_and_nifti_in_2d_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"data.target_spacing=.* data.spatial_dims=2"):
        volume_datamodule(tmp_path, spatial_dims=2, target_spacing=[1, 1, 1])
    dm = volume_datamodule(write_volume_dataset(tmp_path), spatial_dims=2)
    with pytest.raises(ValueError, match=r"vol_\d.nii.gz: a NIfTI volume.*model.spatial_dims=3"):
        dm.setup()


def test_model_and_data_dimensions_must_agree(tmp_path: Path) -> None:
    dm = volume_datamodule(tmp_path)
    with pytest.raises(ValueError, match=r"3-D volumes .* model is 2-D .* model.spatial_dims=3"):
        dm.configure_for_model(UNet(base_channels=2, depth=1))


def test_crop_mirrored_mirrors_volumes() -> None:
    volume = np.arange(4 * 5 * 6).reshape(4, 5, 6, 1)
    padded = np.pad(volume, [(9, 9)] * 3 + [(0, 0)], mode="reflect")
    starts, sizes = (-3, 2, -9), (10, 4, 20)
    expected = padded[tuple(slice(s + 9, s + 9 + n) for s, n in zip(starts, sizes, strict=True))]
    assert np.array_equal(crop_mirrored(volume, starts, sizes), expected)


def test_foreground_oversampling_in_3d_with_anisotropic_patches() -> None:
    mask = np.zeros((20, 40, 40), np.int16)
    mask[16:, 34:, 34:] = 1
    foreground = np.flatnonzero(mask > 0)
    rng = np.random.default_rng(0)
    sampler = PatchSampler(ContextPlanner(), [4, 8, 8], foreground_fraction=1.0)
    windows = [sampler.sample(mask.shape, foreground, rng) for _ in range(50)]
    assert all(w.size == (4, 8, 8) for w in windows)
    assert all(crop_mirrored(mask, w.start, w.size).any() for w in windows)
    with pytest.raises(ValueError, match=r"patch_size=\[4, 8\] has 2 sizes for 3-D data"):
        PatchSampler(ContextPlanner(), [4, 8]).sample(mask.shape, None, rng)


def test_valid_3d_net_gets_context_and_whole_volumes_with_ignored_padding(tmp_path: Path) -> None:
    dm = volume_datamodule(write_volume_dataset(tmp_path, shape=(7, 9, 11)), patch_size=[4, 6, 6])
    net = valid_unet_3d()
    dm.configure_for_model(net)
    dm.setup()
    inputs = tuple(input_size_for_output(n, depth=1) for n in (4, 6, 6))
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape[2:] == inputs
    assert np.array_equal((batch["image"][:, 0] > 0.5).long(), batch["mask"])
    val = next(iter(dm.val_dataloader()))
    logits = net(val["image"])
    target = center_crop_like(val["mask"], logits)[0].numpy()
    original = next(s.mask for s in dm.datasets["val"].samples if s.name == val["name"][0])
    assert np.array_equal(target[:7, :9, :11], original)
    assert (target[7:] == -100).all() and (target[:, 9:] == -100).all()
    assert (target[:, :, 11:] == -100).all()
