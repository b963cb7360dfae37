"""``BiomedicalDataModule``: decoded, checked, normalised and augmented segmentation data."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import albumentations as A
import lightning as L
import numpy as np
from torch import nn
from torch.utils.data import DataLoader

from unetlab.data.dataset import SegmentationDataset, seed_worker
from unetlab.data.decoding import (
    DecodedSample,
    LazySamples,
    SampleDecoder,
    WeightMapFn,
    describe_shape,
)
from unetlab.data.instance_targets import make_target
from unetlab.data.masks import MaskEncoding
from unetlab.data.normalization import (
    DEFAULT_PERCENTILES,
    RunningChannelStats,
    StatsCache,
    check_intensity_scaling,
)
from unetlab.data.patches import ContextPlanner, PatchSampler
from unetlab.data.resampling import check_spacing
from unetlab.data.sampler import EpochShuffleSampler
from unetlab.data.samples import Sample, pages_of_stacks
from unetlab.data.sources import DatasetSource, FolderSource
from unetlab.data.splits import STAGES, make_split
from unetlab.labels import default_class_names

__all__ = ["BiomedicalDataModule", "DatasetSource", "FolderSource"]

log = logging.getLogger(__name__)

GIB = 1024**3


def network_spatial_dims(net: nn.Module) -> int | None:
    """2 or 3: the spatial dims of a network's first convolution (None without one)."""
    for module in net.modules():
        if isinstance(module, nn.Conv2d):
            return 2
        if isinstance(module, nn.Conv3d):
            return 3
    return None


class BiomedicalDataModule(L.LightningDataModule):
    """Loads a segmentation dataset of images or volumes, checks, splits and serves it.

    Every image is decoded once in the main process, so bad files are reported with their
    path before training starts, and kept in memory (when it fits in ``max_cache_gb``).

    Args:
        source: The dataset's reader (``prepare()``, ``samples()``), or with ``root`` a
            factory called as ``source(root=root)`` (a Hydra ``_partial_``).
        root: The dataset's location (``data.root``), handed to ``source``.
        num_classes: Number of classes (``model.num_classes``).
        in_channels: Channels every image must have (``model.in_channels``).
        class_names: One name per class (used for per-class metric names).
        batch_size: Batch size per process.
        num_workers: Data-loader worker processes.
        pin_memory: Pin host memory for faster GPU transfer.
        persistent_workers: Keep workers alive between epochs.
        val_fraction: Fraction of images for validation (seeded split).
        test_fraction: Fraction of images for testing (ratio and k-fold splits).
        split_seed: Seed of the split.
        fold: Validation fold of a k-fold split (with ``num_folds``).
        num_folds: Number of folds; ``None`` = ratio split.
        split_lists: Explicit ``{train: [...], val: [...], test: [...]}`` lists of sample
            names, or a JSON file holding them (e.g. an earlier run's ``split.json``).
        mean: Per-channel mean after scaling to [0, 1]; ``None`` = from the train split.
        std: Per-channel standard deviation; ``None`` = from the train split.
        stats_cache: Folder caching the computed statistics per train split (``None``: off).
        percentiles: Percentiles that scale 16-bit and float images to [0, 1].
        intensity_scaling: ``by_dtype`` (8-bit images / 255, the others between their
            percentiles) or ``per_image`` (every image between its own percentiles).
        train_augmentation: albumentations pipeline for training.
        eval_augmentation: albumentations pipeline for validation and testing.
        split_file: Where to write the split as JSON (e.g. the run folder).
        mask_encoding: ``classes``, ``binary`` (0 / non-zero) or ``instances``.
        mask_mapping: Stored mask value -> class index (with ``classes``).
        ignore_value: Stored mask value of unlabelled pixels.
        ignore_index: Class value of unlabelled and padded pixels (loss and metrics skip it).
        object_class: Class whose connected components are the weight map's objects when
            there are no instance labels.
        patch_size: Side of the training target region (the network's output), one for all
            axes or one per axis, or ``None`` for whole images. Valid-padding networks get a
            larger input with context.
        patches_per_image: Random patches per image and epoch.
        foreground_fraction: Fraction of patches centred on a foreground pixel.
        max_cache_gb: Keep decoded data in memory up to this size; beyond it, decode again
            on every access.
        em_membrane_class: For EM membrane data, the membrane class: test runs then also
            report the ISBI 2012 challenge's pixel and Rand errors.
        spatial_dims: 2 for images (and pages of stacks), 3 for volumes (multi-page TIFF or
            NIfTI files); must match ``model.spatial_dims``.
        target_spacing: Voxel size ``[z, y, x]`` every volume is resampled to on loading
            (anisotropic data); ``None`` keeps the stored grid.
        target: What the network learns: ``semantic`` (the mask's classes) or
            ``instance_border`` (background / interior / border from instance labels,
            ``num_classes=3``; see :mod:`unetlab.data.instance_targets`).
        border_width: Thickness of the border class with ``instance_border``, in pixels.
    """

    def __init__(
        self,
        source: DatasetSource | Callable[..., DatasetSource],
        root: str | Path | None = None,
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
        fold: int | None = None,
        num_folds: int | None = None,
        split_lists: Mapping[str, Sequence[str]] | str | Path | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        stats_cache: str | Path | None = None,
        percentiles: Sequence[float] = DEFAULT_PERCENTILES,
        intensity_scaling: str = "by_dtype",
        train_augmentation: A.BasicTransform | None = None,
        eval_augmentation: A.BasicTransform | None = None,
        split_file: str | Path | None = None,
        mask_encoding: str = "classes",
        mask_mapping: Mapping[int, int] | None = None,
        ignore_value: int | None = None,
        ignore_index: int = -100,
        object_class: int = 1,
        patch_size: int | Sequence[int] | None = None,
        patches_per_image: int = 1,
        foreground_fraction: float = 0.0,
        max_cache_gb: float = 8.0,
        em_membrane_class: int | None = None,
        spatial_dims: int = 2,
        target_spacing: Sequence[float] | None = None,
        target: str = "semantic",
        border_width: int = 1,
    ) -> None:
        super().__init__()
        self.target = make_target(target, num_classes, border_width)
        if spatial_dims not in (2, 3):
            raise ValueError(f"data.spatial_dims={spatial_dims} is not supported; choose 2 or 3")
        if target_spacing is not None and spatial_dims != 3:
            raise ValueError(
                f"data.target_spacing={list(target_spacing)} resamples volumes, but "
                "data.spatial_dims=2; set data.target_spacing=null"
            )
        if root is not None:
            if not callable(source) or hasattr(source, "samples"):
                raise TypeError(
                    "data.root is set, so data.source must be a factory taking root "
                    "(add `_partial_: true` to data.source)"
                )
            source = source(root=root)
        self.source: DatasetSource = source  # type: ignore[assignment]
        self.root = Path(root) if root is not None else None
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.class_names = list(class_names or default_class_names(num_classes))
        if len(self.class_names) != num_classes:
            raise ValueError(
                f"data.class_names has {len(self.class_names)} names for "
                f"num_classes={num_classes}; give one name per class"
            )
        if not 0 <= object_class < num_classes:
            raise ValueError(
                f"data.object_class={object_class} is not a class 0..{num_classes - 1}"
            )
        # Instance targets make their classes from object masks (2 classes as stored).
        stored_classes = 2 if self.target is not None else num_classes
        self.encoding = MaskEncoding(
            stored_classes, mask_encoding, mask_mapping, ignore_value, ignore_index
        )
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.persistent_workers = persistent_workers and num_workers > 0
        self.split_options = {
            "val_fraction": val_fraction,
            "test_fraction": test_fraction,
            "seed": split_seed,
            "fold": fold,
            "num_folds": num_folds,
            "lists": split_lists,
        }
        if (mean is None) != (std is None) or (
            mean is not None and std is not None and not len(mean) == len(std) == in_channels
        ):
            raise ValueError(
                f"data.mean={mean}, data.std={std}: give both, one value per channel "
                f"(model.in_channels={in_channels}), or neither"
            )
        self.mean = list(mean) if mean is not None else None
        self.std = list(std) if std is not None else None
        self.stats_cache = StatsCache(stats_cache)
        self.percentiles = (float(percentiles[0]), float(percentiles[1]))
        self.intensity_scaling = check_intensity_scaling(intensity_scaling)
        self.train_augmentation = train_augmentation or None
        self.eval_augmentation = eval_augmentation or None
        self.split_file = Path(split_file) if split_file else None
        self.ignore_index = ignore_index
        self.object_class = object_class
        self.sampler = PatchSampler(ContextPlanner(), patch_size, foreground_fraction)
        self.patches_per_image = patches_per_image
        self.max_cache_gb = max_cache_gb
        self.em_membrane_class = em_membrane_class
        self.spatial_dims = spatial_dims
        self.target_spacing = None if target_spacing is None else check_spacing(target_spacing)
        self.weight_map_fn: WeightMapFn | None = None
        self.split: dict[str, list[str]] = {}
        self.datasets: dict[str, SegmentationDataset] = {}
        self.eval_batch_size = batch_size

    def configure_for_model(self, net: nn.Module) -> None:
        """Fit the patch geometry to a network.

        For ``padding="valid"`` networks (those whose output is smaller than their input)
        each training patch gets the context margin around its target region, and whole
        images for evaluation are mirror-padded so the output covers them.

        Args:
            net: The network; reads ``net.padding`` and ``net.output_shape``.

        Raises:
            ValueError: If the network's spatial dims differ from the data's, or no input
                size gives the patch size as output.
        """
        net_dims = network_spatial_dims(net)
        if net_dims is not None and net_dims != self.spatial_dims:
            kind = {2: "2-D images", 3: "3-D volumes"}[self.spatial_dims]
            raise ValueError(
                f"the data are {kind} (data.spatial_dims={self.spatial_dims}) but the model is "
                f"{net_dims}-D (model.spatial_dims={net_dims}); set "
                f"model.spatial_dims={self.spatial_dims}, or choose data of the model's kind "
                f"(data={'synthetic3d' if net_dims == 3 else 'synthetic'})"
            )
        valid = getattr(net, "padding", "same") == "valid"
        self.sampler.planner = ContextPlanner(net.output_shape if valid else None)
        shapes = self.sampler.patch_shapes(self.spatial_dims)
        if valid and shapes is not None:
            size, target = shapes
            log.info(
                "data: patches of %s px give %s px targets (context margin %s px)",
                "x".join(map(str, size)),
                "x".join(map(str, target)),
                "x".join(str((n - t) // 2) for n, t in zip(size, target, strict=True)),
            )

    def prepare_data(self) -> None:
        self.source.prepare()

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        samples = self.source.samples()
        if self.spatial_dims == 2:
            samples = pages_of_stacks(samples)
        by_name = {sample.name: sample for sample in samples}
        if len(by_name) != len(samples):
            raise ValueError(
                "data: several files share a sample name (e.g. a.png and a.tif); rename them"
            )
        self.split = make_split(sorted(by_name), **self.split_options)
        used = [by_name[name] for stage_ in STAGES for name in self.split[stage_]]
        decoder = SampleDecoder(
            self.in_channels,
            self.encoding,
            self.object_class,
            self.percentiles,
            self.weight_map_fn,
            keep_foreground=self.sampler.foreground_fraction > 0,
            spatial_dims=self.spatial_dims,
            target_spacing=self.target_spacing,
            target=self.target,
            intensity_scaling=self.intensity_scaling,
        )
        decoded, shapes = self._decode_all(decoder, used)
        self._check_shapes(shapes)
        for stage_ in STAGES:
            names = self.split[stage_]
            if decoded is not None:
                stage_samples: Sequence[DecodedSample] = [decoded[name] for name in names]
            else:
                stage_samples = LazySamples(decoder, [by_name[name] for name in names])
            train = stage_ == "train"
            self.datasets[stage_] = SegmentationDataset(
                stage_samples,
                self.train_augmentation if train else self.eval_augmentation,
                self.mean,
                self.std,
                self.sampler,
                random_windows=train,
                patches_per_image=self.patches_per_image,
                ignore_index=self.ignore_index,
                seed=int(np.random.randint(2**31)),
                spatial_dims=self.spatial_dims,
                with_instances=not train and self._has_instances(by_name[n] for n in names),
            )
        eval_shapes = {shapes[name] for s in ("val", "test") for name in self.split[s]}
        self.eval_batch_size = self.batch_size if len(eval_shapes) <= 1 else 1
        self._write_split()
        log.info(
            "data: %s train / %s val / %s test images, mean=%s std=%s",
            *(len(self.split[s]) for s in STAGES),
            [round(m, 4) for m in self.mean or []],
            [round(s, 4) for s in self.std or []],
        )

    def _has_instances(self, samples: Iterable[Sample]) -> bool:
        """Whether every sample has instance labels (a file, or masks that are labels)."""
        if self.encoding.encoding == "instances":
            return True
        samples = list(samples)
        return bool(samples) and all(sample.instances is not None for sample in samples)

    def _decode_all(
        self, decoder: SampleDecoder, samples: list[Sample]
    ) -> tuple[dict[str, DecodedSample] | None, dict[str, tuple[int, ...]]]:
        """Decode and check every sample once; keep them if they fit in memory.

        Returns:
            The decoded samples by name (None when they are too large to keep) and every
            sample's image size.
        """
        train = set(self.split["train"])
        stats, cache_key = None, None
        if self.mean is None:
            files = [(s.image, s.page) for s in samples if s.name in train]
            cache_key = self.stats_cache.key(
                files, [self.percentiles, self.in_channels, self.intensity_scaling]
            )
            cached = self.stats_cache.load(cache_key)
            if cached is not None and len(cached[0]) == self.in_channels:
                self.mean, self.std = cached
            else:
                stats = RunningChannelStats()
        kept: dict[str, DecodedSample] | None = {}
        shapes: dict[str, tuple[int, ...]] = {}
        total_bytes = 0
        for sample in samples:
            item = decoder.decode(sample, with_weight_map=kept is not None)
            shapes[sample.name] = item.mask.shape
            if stats is not None and sample.name in train:
                stats.update(item.image)
            if kept is not None:
                total_bytes += item.nbytes
                kept[sample.name] = item
                if total_bytes > self.max_cache_gb * GIB:
                    log.warning(
                        "data: decoded images exceed data.max_cache_gb=%s; decoding them again "
                        "on every access (slower; raise data.max_cache_gb if memory allows)",
                        self.max_cache_gb,
                    )
                    kept = None
        if stats is not None and cache_key is not None:
            self.mean, self.std = stats.result()
            self.stats_cache.save(cache_key, self.mean, self.std)
        return kept, shapes

    def _check_shapes(self, shapes: dict[str, tuple[int, ...]]) -> None:
        """Whole-image training needs images of one size (they are batched together)."""
        if self.sampler.patch_size is not None:
            return
        train_shapes = {shapes[name]: name for name in self.split["train"]}
        if len(train_shapes) > 1:
            (first, a), (second, b) = list(train_shapes.items())[:2]
            raise ValueError(
                f"data: training images differ in size ({a}: {describe_shape(first)}, "
                f"{b}: {describe_shape(second)}); set data.patch_size=N to train on patches"
            )

    def _write_split(self) -> None:
        if self.split_file is None:
            return
        self.split_file.parent.mkdir(parents=True, exist_ok=True)
        self.split_file.write_text(json.dumps(self.split, indent=2))

    def _loader(self, stage: str, shuffle: bool) -> DataLoader:
        dataset = self.datasets[stage]
        batch_size = self.batch_size if stage == "train" else self.eval_batch_size
        # Order and augmentation from (seed, epoch) alone: resumed runs repeat the data exactly.
        sampler = EpochShuffleSampler.for_trainer(dataset, self.trainer) if shuffle else None
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            generator=sampler.generator if sampler is not None else None,
            drop_last=shuffle and len(dataset) > batch_size,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers,
            worker_init_fn=seed_worker,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def state_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std, "split": self.split}
