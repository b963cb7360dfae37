"""Patch sampling: random crops, foreground oversampling, context margins for valid nets."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest

from tests.test_data_folder import datamodule, save, write_dataset
from unetlab.data.mirror import crop_mirrored
from unetlab.data.patches import ContextPlanner, PatchSampler
from unetlab.models import UNet
from unetlab.models.blocks import center_crop_like
from unetlab.models.size_planner import input_size_for_output
from unetlab.train import train


@functools.lru_cache
def valid_unet(depth: int = 2) -> UNet:
    return UNet(in_channels=1, num_classes=2, base_channels=2, depth=depth, padding="valid")


def test_planner_matches_the_size_planner() -> None:
    planner = ContextPlanner(valid_unet(2).output_shape)
    for size in (1, 8, 13, 40):
        input_size, output_size = planner.plan(size)
        assert input_size == input_size_for_output(size, depth=2)
        assert output_size >= size and valid_unet(2).output_shape((input_size,))[0] == output_size
    assert ContextPlanner().plan(13) == (13, 13)


def test_crop_mirrored_mirrors_beyond_the_border() -> None:
    array = np.arange(5 * 7).reshape(5, 7)
    padded = np.pad(array, 20, mode="reflect")
    for top, left, height, width in [(-3, -4, 10, 12), (2, 3, 2, 2), (-20, -20, 45, 47)]:
        expected = padded[top + 20 : top + 20 + height, left + 20 : left + 20 + width]
        assert np.array_equal(crop_mirrored(array, (top, left), (height, width)), expected)


def test_foreground_oversampling_fraction() -> None:
    mask = np.zeros((100, 100), np.int16)
    mask[90:, 90:] = 1
    foreground = np.flatnonzero(mask > 0)
    rng = np.random.default_rng(0)

    def hit_rate(fraction: float) -> float:
        sampler = PatchSampler(ContextPlanner(), 10, fraction)
        windows = [sampler.sample(mask.shape, foreground, rng) for _ in range(400)]
        return np.mean([crop_mirrored(mask, w.start, (10, 10)).any() for w in windows])

    assert hit_rate(0.0) < 0.1
    assert hit_rate(1.0) == 1.0
    assert 0.4 < hit_rate(0.5) < 0.65


def test_valid_net_patches_carry_the_context_and_align(tmp_path: Path) -> None:
    root = write_dataset(tmp_path, count=5, size=40)
    dm = datamodule(root, patch_size=10, patches_per_image=3, mean=[0.0], std=[1.0])
    net = valid_unet(2)
    dm.configure_for_model(net)
    dm.setup()
    input_size, output_size = input_size_for_output(10, 2), 12
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (2, 1, input_size, input_size)
    assert batch["mask"].shape == (2, input_size, input_size)
    assert len(dm.datasets["train"]) == 9
    # Image is a function of the mask everywhere in the window, mirrored context included.
    assert np.array_equal((batch["image"][:, 0] > 0.5).long(), batch["mask"])
    logits = net(batch["image"])
    assert logits.shape[-2:] == (output_size, output_size)
    assert center_crop_like(batch["mask"], logits).shape[-2:] == logits.shape[-2:]


def test_valid_net_evaluates_whole_images_with_ignored_padding(tmp_path: Path) -> None:
    root = write_dataset(tmp_path, count=5, size=22)
    dm = datamodule(root, patch_size=8)
    net = valid_unet(2)
    dm.configure_for_model(net)
    dm.setup()
    batch = next(iter(dm.val_dataloader()))
    logits = net(batch["image"])
    target = center_crop_like(batch["mask"], logits)[0].numpy()
    name = batch["name"][0]
    original = next(s.mask for s in dm.datasets["val"].samples if s.name == name)
    assert target.shape[0] >= 22
    assert np.array_equal(target[:22, :22], original)
    assert np.all(target[22:] == -100) and np.all(target[:, 22:] == -100)


def test_same_padding_patches_and_small_images_are_mirrored(tmp_path: Path) -> None:
    root = write_dataset(tmp_path, count=5, size=12)
    dm = datamodule(root, patch_size=20)
    dm.configure_for_model(UNet(base_channels=2, depth=2))
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (2, 1, 20, 20) and (batch["mask"] >= 0).all()
    assert next(iter(dm.val_dataloader()))["image"].shape[-2:] == (12, 12)


def test_workers_draw_different_patches_and_lazy_decoding_matches(tmp_path: Path) -> None:
    root = tmp_path / "one"
    rng = np.random.default_rng(0)
    for name in ("a", "b", "c"):
        save(root / "images" / f"{name}.png", rng.integers(0, 255, (32, 32), np.uint8))
        save(root / "masks" / f"{name}.png", np.zeros((32, 32), np.uint8))
    dm = datamodule(
        root,
        split_lists={"train": ["a"], "val": ["b", "c"]},
        patch_size=8,
        patches_per_image=4,
        batch_size=1,
        num_workers=2,
        persistent_workers=True,
    )
    dm.setup()
    patches = [batch["image"] for batch in dm.train_dataloader()]
    assert len(patches) == 4
    assert not np.array_equal(patches[0], patches[1])  # worker 0 and worker 1

    lazy = datamodule(root, split_lists={"train": ["a"], "val": ["b", "c"]}, max_cache_gb=0)
    lazy.setup()
    assert not isinstance(lazy.datasets["val"].samples, list)
    for index in range(2):
        assert np.array_equal(
            lazy.datasets["val"][index]["image"], dm.datasets["val"][index]["image"]
        )


@pytest.mark.parametrize("loss", ["dice_ce", "weighted_ce"])
def test_training_a_valid_net_on_patches(make_config, loss: str) -> None:
    cfg = make_config(
        [
            "model.padding=valid",
            "data.patch_size=12",
            "data.patches_per_image=2",
            "data/augmentation@data.train_augmentation=elastic",
            f"loss={loss}",
            "test=false",
        ]
    )
    metrics, objects = train(cfg)
    assert 0.0 <= metrics["val/miou_best"] <= 1.0
    shapes = objects["datamodule"].sampler.patch_shapes(2)
    assert shapes is not None and shapes[0][0] > shapes[1][0] >= 12
