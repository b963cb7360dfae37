"""Normalisation: statistics from the config, or computed on the train split and cached."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.test_data_folder import datamodule, save, write_dataset
from unetlab.data.normalization import channel_statistics, scale_to_unit


def test_16_bit_images_are_scaled_between_percentiles() -> None:
    image = np.linspace(100, 1100, 1000).astype(np.uint16).reshape(40, 25, 1)
    image[0, 0, 0] = 65535
    scaled = scale_to_unit(image)
    assert scaled.dtype == np.float32
    assert np.percentile(scaled, 0.5) == pytest.approx(0.0, abs=1e-3)
    assert np.percentile(scaled, 99.5) == pytest.approx(1.0, abs=1e-3)
    assert np.array_equal(scale_to_unit(np.array([[[0], [255]]], np.uint8)).ravel(), [0.0, 1.0])


def test_statistics_come_from_the_train_split_and_are_cached(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "data", count=8)
    cache = tmp_path / "stats"
    dm = datamodule(root, stats_cache=cache)
    dm.setup()
    train = [s.image for s in dm.datasets["train"].samples]
    mean, std = channel_statistics(train)
    assert np.allclose(dm.mean, mean, atol=1e-6) and np.allclose(dm.std, std, atol=1e-6)
    assert len(list(cache.glob("stats_*.json"))) == 1

    served = np.concatenate([dm.datasets["train"][i]["image"].numpy().ravel() for i in range(5)])
    assert abs(served.mean()) < 0.5 and 0.5 < served.std() < 1.5

    again = datamodule(root, stats_cache=cache)
    (next(cache.glob("stats_*.json"))).write_text('{"mean": [0.25], "std": [2.0]}')
    again.setup()
    assert (again.mean, again.std) == ([0.25], [2.0])  # read from the cache

    other_split = datamodule(root, stats_cache=cache, split_seed=5)
    other_split.setup()
    assert len(list(cache.glob("stats_*.json"))) == 2


def test_statistics_from_the_config_win(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "data")
    dm = datamodule(root, mean=[0.5], std=[0.25], stats_cache=tmp_path / "stats")
    dm.setup()
    assert (dm.mean, dm.std) == ([0.5], [0.25]) and not (tmp_path / "stats").exists()
    item = dm.datasets["val"][0]
    raw = dm.datasets["val"].samples[0].image[..., 0]
    assert np.allclose(item["image"][0].numpy(), (raw - 0.5) / 0.25)
    with pytest.raises(ValueError, match="one value per channel"):
        datamodule(root, mean=[0.5, 0.5], std=[0.25, 0.25])


def test_changed_file_invalidates_the_cache(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "data", count=5)
    cache = tmp_path / "stats"
    first = datamodule(root, stats_cache=cache)
    first.setup()
    for name in first.split["train"]:
        save(root / "images" / f"{name}.png", np.full((16, 16), 255, np.uint8))
    second = datamodule(root, stats_cache=cache)
    second.setup()
    assert second.mean == pytest.approx([1.0])
