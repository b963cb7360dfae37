"""Same seed, deterministic trainer: identical results; each run records what made it."""

from __future__ import annotations

import json
import random
from pathlib import Path

import albumentations as A
import numpy as np
import pytest

from unetlab.data.dataset import SegmentationDataset
from unetlab.data.decoding import DecodedSample
from unetlab.train import train

SEEDED = ["trainer.deterministic=true", "trainer.max_epochs=2", "test=false"]


def run(make_config, tmp_path: Path, name: str, overrides: list[str]) -> dict:
    folder = tmp_path / name
    cfg = make_config([*overrides, f"paths.output_dir={folder}", f"hydra.run.dir={folder}"])
    metrics, _ = train(cfg)
    return metrics


@pytest.mark.parametrize("num_workers", [0, 2])
def test_same_seed_gives_identical_metrics(make_config, tmp_path: Path, num_workers: int):
    overrides = [*SEEDED, "seed=5", f"data.num_workers={num_workers}"]
    first = run(make_config, tmp_path, "first", overrides)
    second = run(make_config, tmp_path, "second", overrides)
    for name in ("val/miou", "val/loss", "train/loss_epoch", "val/miou_best"):
        assert first[name] == second[name], name

    info = json.loads((tmp_path / "first" / "run_info.json").read_text())
    assert info["seed"] == 5
    assert info["git_commit"]
    for package in ("torch", "lightning", "numpy", "albumentations", "hydra-core", "python"):
        assert info["versions"][package], package


def test_other_seed_gives_other_training(make_config, tmp_path: Path):
    first = run(make_config, tmp_path, "first", [*SEEDED, "seed=5"])
    other = run(make_config, tmp_path, "other", [*SEEDED, "seed=6"])
    assert first["train/loss_epoch"] != other["train/loss_epoch"]


def test_reseeded_augmentations_draw_independently():
    """Seeding must not give every transform the same generator (flips would always coincide)."""
    image = np.arange(4, dtype=np.float32).reshape(2, 2, 1)
    sample = DecodedSample("a", image, np.zeros((2, 2), np.int16))
    transform = A.Compose([A.HorizontalFlip(p=0.5), A.VerticalFlip(p=0.5)])
    dataset = SegmentationDataset([sample], transform, seed=0)
    outcomes = set()
    for seed in range(40):
        dataset.reseed(seed)
        flipped = dataset[0]["image"][0]
        outcomes.add((bool(flipped[0, 0] in (1, 3)), bool(flipped[0, 0] in (2, 3))))
    assert outcomes == {(False, False), (True, False), (False, True), (True, True)}
    dataset.reseed(3)
    first = [dataset[0]["image"].tolist() for _ in range(5)]
    random.seed(99)
    np.random.seed(99)
    dataset.reseed(3)
    assert [dataset[0]["image"].tolist() for _ in range(5)] == first
