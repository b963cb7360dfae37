"""``BiomedicalDataModule``: decoded, checked, normalised and augmented segmentation data."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import albumentations as A
import lightning as L
import numpy as np
from torch.utils.data import DataLoader

from unetlab.data.dataset import DecodedSample, SegmentationDataset
from unetlab.data.io import read_image, read_mask
from unetlab.data.normalization import channel_statistics, scale_to_unit, standardize
from unetlab.data.samples import Sample, find_samples
from unetlab.data.splits import ratio_split

log = logging.getLogger(__name__)

STAGES = ("train", "val", "test")


class DatasetSource(Protocol):
    """Anything that can put a dataset into the ``images/`` + ``masks/`` folder layout."""

    def prepare(self) -> Path: ...


class FolderSource:
    """An existing ``images/`` + ``masks/`` (+ optional ``instances/``) folder.

    Args:
        root: The dataset folder.
        mask_suffix: Mask file name = image stem + this suffix (e.g. ``"_mask"``).
    """

    def __init__(self, root: str | Path, mask_suffix: str = "") -> None:
        self.root = Path(root)
        self.mask_suffix = mask_suffix

    def prepare(self) -> Path:
        if not self.root.is_dir():
            raise FileNotFoundError(
                f"{self.root}: dataset folder not found; set data.source.root=PATH"
            )
        return self.root


class BiomedicalDataModule(L.LightningDataModule):
    """Loads a segmentation dataset, checks it, splits it and serves augmented batches.

    Every image is decoded once in the main process (so bad files are reported before
    training starts, with their path) and kept in memory.

    Args:
        source: Where the ``images/`` + ``masks/`` folder comes from (``prepare() -> Path``).
        num_classes: Number of classes the masks must use (``0..num_classes-1``).
        in_channels: Channels every image must have.
        class_names: One name per class (used for per-class metric names).
        batch_size: Batch size per process.
        num_workers: Data-loader worker processes.
        pin_memory: Pin host memory for faster GPU transfer.
        persistent_workers: Keep workers alive between epochs.
        val_fraction: Fraction of images for validation (seeded split).
        test_fraction: Fraction of images for testing.
        split_seed: Seed of the split.
        mean: Per-channel mean after scaling to [0, 1]; ``None`` = computed on the train split.
        std: Per-channel standard deviation; ``None`` = computed on the train split.
        train_augmentation: albumentations pipeline for training.
        eval_augmentation: albumentations pipeline for validation and testing.
        split_file: Where to write the split as JSON (e.g. the run folder).
    """

    def __init__(
        self,
        source: DatasetSource,
        num_classes: int = 2,
        in_channels: int = 1,
        class_names: Sequence[str] | None = None,
        batch_size: int = 8,
        num_workers: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        split_seed: int = 0,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        train_augmentation: A.Compose | None = None,
        eval_augmentation: A.Compose | None = None,
        split_file: str | Path | None = None,
    ) -> None:
        super().__init__()
        self.source = source
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.class_names = list(class_names or [f"class_{i}" for i in range(num_classes)])
        if len(self.class_names) != num_classes:
            raise ValueError(
                f"data.class_names has {len(self.class_names)} names for "
                f"num_classes={num_classes}; give one name per class"
            )
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.persistent_workers = persistent_workers and num_workers > 0
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.split_seed = split_seed
        self.mean, self.std = mean, std
        self.train_augmentation = train_augmentation
        self.eval_augmentation = eval_augmentation
        self.split_file = Path(split_file) if split_file else None
        self.weight_map_fn: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
        self.split: dict[str, list[str]] = {}
        self.datasets: dict[str, SegmentationDataset] = {}

    def prepare_data(self) -> None:
        self.source.prepare()

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        samples = find_samples(self.source.prepare(), mask_suffix=self._mask_suffix())
        self.split = ratio_split(
            [s.name for s in samples], self.val_fraction, self.test_fraction, self.split_seed
        )
        decoded = {s.name: self._decode(s) for s in samples}
        train_images = [decoded[name].image for name in self.split["train"]]
        if self.mean is None or self.std is None:
            self.mean, self.std = channel_statistics(train_images)
        for sample in decoded.values():
            sample.image = standardize(sample.image, self.mean, self.std)
        transforms = {
            "train": self.train_augmentation,
            "val": self.eval_augmentation,
            "test": self.eval_augmentation,
        }
        self.datasets = {
            stage: SegmentationDataset(
                [decoded[name] for name in self.split[stage]], transforms[stage]
            )
            for stage in STAGES
        }
        self._write_split()
        log.info(
            "data: %s train / %s val / %s test images, mean=%s std=%s",
            *(len(self.split[s]) for s in STAGES),
            [round(m, 4) for m in self.mean],
            [round(s, 4) for s in self.std],
        )

    def _mask_suffix(self) -> str:
        return getattr(self.source, "mask_suffix", "")

    def _decode(self, sample: Sample) -> DecodedSample:
        image = read_image(sample.image)
        mask = read_mask(sample.mask)
        if image.shape[-1] != self.in_channels:
            raise ValueError(
                f"{sample.image}: image has {image.shape[-1]} channels but "
                f"model.in_channels={self.in_channels}; set model.in_channels="
                f"{image.shape[-1]} or convert the images"
            )
        if image.shape[:2] != mask.shape:
            raise ValueError(
                f"{sample.mask}: mask size {mask.shape[1]}x{mask.shape[0]} differs from image "
                f"size {image.shape[1]}x{image.shape[0]} ({sample.image}); masks must match "
                "their images pixel for pixel"
            )
        bad = np.setdiff1d(np.unique(mask), np.arange(self.num_classes))
        if bad.size:
            raise ValueError(
                f"{sample.mask}: mask has values {bad[:8].tolist()}; expected class indices "
                f"0..{self.num_classes - 1} (model.num_classes={self.num_classes}). Map them "
                "to classes with data.mask_mapping or set model.num_classes"
            )
        instances = read_mask(sample.instances).astype(np.int32) if sample.instances else None
        weight_map = None
        if self.weight_map_fn is not None:
            objects = instances if instances is not None else mask
            weight_map = self.weight_map_fn(objects, mask).astype(np.float32)
        return DecodedSample(
            sample.name, scale_to_unit(image), mask.astype(np.int64), instances, weight_map
        )

    def _write_split(self) -> None:
        if self.split_file is None:
            return
        self.split_file.parent.mkdir(parents=True, exist_ok=True)
        self.split_file.write_text(json.dumps(self.split, indent=2))

    def _loader(self, stage: str, shuffle: bool) -> DataLoader:
        return DataLoader(
            self.datasets[stage],
            batch_size=self.batch_size if stage == "train" else max(1, self.batch_size),
            shuffle=shuffle,
            drop_last=shuffle and len(self.datasets[stage]) > self.batch_size,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def state_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std, "split": self.split}
