"""Accuracy per CPU minute: unetlab's recommended recipe against segmentation_models_pytorch.

Every cell of the table (data set, seed, wall-clock budget) trains two models from scratch
**at the same time**, side by side: unetlab's recipe (``experiment=fast`` by default) and a
plain segmentation_models_pytorch baseline written as a user would (``smp.Unet`` with a
``resnet34`` encoder and no pretrained weights, Adam 1e-3, batch 4, random 256x256 crops,
cross-entropy, constant learning rate). Each runs in its own process, restricted to one
thread and pinned to its own CPU core (cores 0 and 1; both share a core where only one is
available), so a load change on the machine hits both alike. A method's clock counts
training only (data loading before the first step, prediction and scoring excluded), and
training stops at the first optimizer step that ends past the budget.

Then each model predicts the whole validation images (unetlab with ``unetlab.predict``,
smp by reflection-padding to a multiple of 32) and one scorer rates both: the dataset-level
mean IoU of the two classes, from one confusion matrix summed over every pixel of every
validation image.

Data (``../shared/data``): ``isbi2012_em`` (images 00-23 train, 24-29 validate; class 1 =
membrane, mask value 0) and ``dsb2018_nuclei_dev`` (the first 80 % of the sorted names
train, the rest validate; class 1 = nucleus, instance label > 0). The full run is
2 data sets x 2 seeds x (150 + 300 + 600) s, about 70 minutes of wall time with both cores
busy, plus prediction. Writes its table to its own section of ``docs/benchmarks.md``::

    python scripts/bench_quality.py              # full run (``make bench-quality``)
    python scripts/bench_quality.py --quick      # smoke run: 3 and 5 s, 4 + 2 images, 1 seed
    python scripts/bench_quality.py --unetlab-overrides model.base_channels=32
    python scripts/bench_quality.py --levers     # unetlab recipe variants, two at a time
    python scripts/bench_quality.py --levers fast fast_fp32 --recipe mine="loss=ce"
    python scripts/bench_quality.py --levers fast fast_wide isbi:fast_cldice  # per data set

Needs the ``bench`` extra (``pip install -e '.[bench]'``) for segmentation_models_pytorch.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from benchmark_page import (
    add_run_options,
    core_groups,
    load_average,
    log,
    machine,
    machine_table,
    run_pinned,
    run_side_by_side,
    settle_run_options,
    write_section,
)
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
SECTION, LEVERS_SECTION = "bench_quality", "bench_quality_levers"
SOFTWARE = ("torch", "lightning", "segmentation-models-pytorch", "torchmetrics")
NUM_CLASSES = 2
BUDGETS, SEEDS = (150, 300, 600), (0, 1)
TARGET_MARGIN = 0.05  # unetlab at the middle budget must beat smp at the largest by this
QUICK_BUDGETS, QUICK_TRAIN_IMAGES, QUICK_VALIDATION_IMAGES = (3, 5), 4, 2
LEVER_BUDGET = 300
SMP_BATCH, SMP_LR, SMP_CROP = 4, 1e-3, 256
SMP_NAME = "smp.Unet resnet34"
DSB_TRAIN_FRACTION = 0.8
ISBI_TRAIN = tuple(f"{i:02d}" for i in range(24))
ISBI_VALIDATION = tuple(f"{i:02d}" for i in range(24, 30))

# A recipe's overrides of `unetlab-predict` (e.g. `predict.tta=d4`); the others are train.py's.
PREDICT_PREFIX = "predict."
# unetlab recipes: name -> (what it tries, Hydra overrides on top of the data set's). `fast`
# is the recommended one; the `fast_*` rows change one lever of it, `plain` is train.yaml's
# defaults (UNet 16 x 4, AdamW 1e-3, Dice + CE, batch 8, fp32, budget cosine).
RECIPES: dict[str, tuple[str, tuple[str, ...]]] = {
    "fast": ("the recommended recipe", ("experiment=fast",)),
    "plain": ("train.yaml defaults", ()),
    "fast_constant_lr": ("without the time-budget schedule", ("experiment=fast", "scheduler=none")),
    "fast_fp32": ("without bf16 autocast", ("experiment=fast", "trainer.precision=32-true")),
    "fast_no_channels_last": (
        "without channels-last",
        ("experiment=fast", "model.channels_last=false"),
    ),
    "fast_narrow": ("4 base channels", ("experiment=fast", "model.base_channels=4")),
    "fast_c12": ("12 base channels", ("experiment=fast", "model.base_channels=12")),
    "fast_c16": ("16 base channels", ("experiment=fast", "model.base_channels=16")),
    "fast_wide": ("32 base channels", ("experiment=fast", "model.base_channels=32")),
    "fast_depth3": ("depth 3", ("experiment=fast", "model.depth=3")),
    "fast_depth5": ("depth 5", ("experiment=fast", "model.depth=5")),
    "fast_batch2": ("batch 2", ("experiment=fast", "data.batch_size=2")),
    "fast_batch8": ("batch 8", ("experiment=fast", "data.batch_size=8")),
    "fast_patch128": ("128 px patches", ("experiment=fast", "data.patch_size=128")),
    "fast_patch192": ("192 px patches", ("experiment=fast", "data.patch_size=192")),
    "fast_patch256": ("256 px patches", ("experiment=fast", "data.patch_size=256")),
    "fast_lr1e-3": ("Adam 1e-3", ("experiment=fast", "optimizer.lr=1e-3")),
    "fast_lr4e-3": ("Adam 4e-3", ("experiment=fast", "optimizer.lr=4e-3")),
    "fast_workers": (
        "loading in a worker process (on the same core)",
        ("experiment=fast", "data.num_workers=1", "data.persistent_workers=true"),
    ),
    "fast_foreground": (
        "half the patches centred on foreground",
        ("experiment=fast", "data.foreground_fraction=0.5"),
    ),
    "fast_no_foreground": (
        "patches drawn anywhere (no foreground oversampling)",
        ("experiment=fast", "data.foreground_fraction=0"),
    ),
    "fast_weighted_ce": (
        "the paper's border-weighted cross-entropy",
        ("experiment=fast", "loss=weighted_ce"),
    ),
    "fast_per_image": (
        "every image scaled between its own percentiles",
        ("experiment=fast", "data.intensity_scaling=per_image"),
    ),
    "fast_by_dtype": (
        "8-bit images divided by 255 (not scaled per image)",
        ("experiment=fast", "data.intensity_scaling=by_dtype"),
    ),
    "fast_cldice": (
        "clDice on class 1 (thin structures kept connected)",
        ("experiment=fast", "loss=cldice"),
    ),
    "fast_tta": (
        "predictions averaged over the eight flips and rotations (8x prediction time)",
        ("experiment=fast", "predict.tta=d4"),
    ),
    "fast_ce": ("plain cross-entropy", ("experiment=fast", "loss=ce")),
    "fast_flips": (
        "flips and rotations only (no elastic deformation)",
        ("experiment=fast", "data/augmentation@data.train_augmentation=flips"),
    ),
}


def membrane_target(mask: np.ndarray) -> np.ndarray:
    """ISBI 2012: class 1 = membrane (stored 0), class 0 = cell interior (stored 255)."""
    return (mask == 0).astype(np.uint8)


def foreground_target(mask: np.ndarray) -> np.ndarray:
    """Instance labels: class 1 = any object (label > 0), class 0 = background."""
    return (mask > 0).astype(np.uint8)


def isbi_split(names: Sequence[str]) -> dict[str, list[str]]:
    """Images 00-23 train, 24-29 validate (the 30 slices of the challenge's training stack)."""
    missing = sorted(set(ISBI_TRAIN + ISBI_VALIDATION) - set(names))
    if missing:
        raise ValueError(
            f"the ISBI 2012 folder lacks images {missing[:3]}...: --isbi must hold "
            "images/00.png ... images/29.png and masks of the same names"
        )
    return {"train": list(ISBI_TRAIN), "validation": list(ISBI_VALIDATION)}


def sorted_fraction_split(names: Sequence[str]) -> dict[str, list[str]]:
    """The first 80 % of the sorted names train, the rest validate."""
    names = sorted(names)
    cut = round(DSB_TRAIN_FRACTION * len(names))
    if cut < 1 or cut == len(names):
        raise ValueError(f"{len(names)} images are too few for a training / validation split")
    return {"train": names[:cut], "validation": names[cut:]}


@dataclass(frozen=True)
class Dataset:
    """A benchmark data set: ``images/<name>.png`` and ``masks/<name>.png`` under a folder.

    Attributes:
        key: Command-line name.
        title: Table heading.
        folder: Default location.
        in_channels: Image channels the networks take (1 = grayscale, 3 = RGB).
        classes: Names of class 0 and class 1.
        target: Stored mask -> class map (0 / 1).
        split: Sorted names -> ``{"train": [...], "validation": [...]}``.
        unetlab_overrides: How unetlab's config reads the folder (before ``data.root``).
    """

    key: str
    title: str
    folder: Path
    in_channels: int
    classes: tuple[str, str]
    target: Callable[[np.ndarray], np.ndarray]
    split: Callable[[Sequence[str]], dict[str, list[str]]]
    unetlab_overrides: tuple[str, ...]


DATASETS = {
    "isbi": Dataset(
        "isbi",
        "ISBI 2012 EM (cell / membrane)",
        SHARED_DATA / "isbi2012_em",
        1,
        ("cell", "membrane"),
        membrane_target,
        isbi_split,
        ("data=isbi2012",),
    ),
    "dsb": Dataset(
        "dsb",
        "DSB 2018 nuclei (background / nucleus)",
        SHARED_DATA / "dsb2018_nuclei_dev",
        3,
        ("background", "nucleus"),
        foreground_target,
        sorted_fraction_split,
        (
            "data=dsb2018",
            "data.target=semantic",
            "model.in_channels=3",
            "model.num_classes=2",
            "data.class_names=[background,nucleus]",
        ),
    ),
}


def image_names(folder: Path) -> list[str]:
    """Sorted stems of ``folder/images/*.png`` that have a mask of the same name."""
    images = folder / "images"
    if not images.is_dir():
        raise SystemExit(f"{images} not found: the data folder must hold images/ and masks/")
    names = sorted(p.stem for p in images.glob("*.png"))
    unmasked = [n for n in names if not (folder / "masks" / f"{n}.png").is_file()]
    if unmasked or not names:
        raise SystemExit(f"{folder}: no images, or no masks/<name>.png for {unmasked[:3]}")
    return names


def smallest(folder: Path, names: Sequence[str], count: int) -> list[str]:
    """The ``count`` smallest images (by pixel count, then name): the quick run's subset."""

    def area(name: str) -> int:
        with Image.open(folder / "images" / f"{name}.png") as image:
            return image.width * image.height

    return sorted(sorted(names, key=lambda n: (area(n), n))[:count])


def read_image(path: Path, channels: int) -> np.ndarray:
    """(C, H, W) float32 image, standardised per channel (zero mean, unit variance)."""
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB" if channels == 3 else "L"), np.float32) / 255
    pixels = pixels.reshape(*pixels.shape[:2], channels).transpose(2, 0, 1)
    mean = pixels.mean(axis=(1, 2), keepdims=True)
    std = pixels.std(axis=(1, 2), keepdims=True)
    return (pixels - mean) / np.maximum(std, 1e-6)


def read_target(dataset: Dataset, folder: Path, name: str) -> np.ndarray:
    """The (H, W) class map (0 / 1) of ``masks/<name>.png``."""
    with Image.open(folder / "masks" / f"{name}.png") as mask:
        return dataset.target(np.asarray(mask))


def confusion(prediction: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """2x2 confusion matrix of one image: rows = true class, columns = predicted class."""
    from torchmetrics.functional.classification import multiclass_confusion_matrix

    if prediction.shape != truth.shape:
        raise ValueError(f"prediction {prediction.shape} and truth {truth.shape} differ in shape")
    matrix = multiclass_confusion_matrix(
        torch.from_numpy(prediction.astype(np.int64)).flatten(),
        torch.from_numpy(truth.astype(np.int64)).flatten(),
        num_classes=NUM_CLASSES,
        validate_args=True,
    )
    return matrix.numpy().astype(np.int64)


def iou_from_confusion(matrix: np.ndarray) -> list[float]:
    """IoU of every class, ``TP / (TP + FP + FN)``; NaN for a class absent from both."""
    true_positive = np.diag(matrix).astype(np.float64)
    union = matrix.sum(axis=0) + matrix.sum(axis=1) - true_positive
    with np.errstate(invalid="ignore", divide="ignore"):
        return list(np.where(union > 0, true_positive / union, np.nan))


def dataset_miou(predictions: Iterable[np.ndarray], truths: Iterable[np.ndarray]) -> dict:
    """Dataset-level scores: one confusion matrix summed over all pixels of all images.

    Returns:
        ``miou`` (mean of the class IoUs present), ``iou`` (per class) and ``confusion``.
    """
    total = np.zeros((NUM_CLASSES, NUM_CLASSES), np.int64)
    for prediction, truth in zip(predictions, truths, strict=True):
        total += confusion(prediction, truth)
    iou = iou_from_confusion(total)
    return {"miou": float(np.nanmean(iou)), "iou": iou, "confusion": total.tolist()}


def score_folder(masks: Path, truths: dict[str, np.ndarray]) -> dict:
    """Scores of the predicted ``masks/<name>.png`` class maps against ``truths``."""

    def predicted(name: str) -> np.ndarray:
        path = masks / f"{name}.png"
        if not path.is_file():
            raise RuntimeError(f"{path}: no prediction was written for {name}")
        with Image.open(path) as image:
            return np.asarray(image)

    return dataset_miou((predicted(n) for n in truths), truths.values())


# --- the workers: one training run each, in its own process --------------------------------


def padded_to(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """``array`` (..., H, W) reflection-padded at the bottom and right to at least HxW."""
    pad_h, pad_w = max(0, height - array.shape[-2]), max(0, width - array.shape[-1])
    if not pad_h and not pad_w:
        return array
    return np.pad(array, [(0, 0)] * (array.ndim - 2) + [(0, pad_h), (0, pad_w)], mode="reflect")


def random_batch(
    images: list[np.ndarray], targets: list[np.ndarray], crop: int, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """``SMP_BATCH`` random crops of random images, each flipped at random."""
    xs, ys = [], []
    for _ in range(SMP_BATCH):
        index = int(rng.integers(len(images)))
        image = padded_to(images[index], crop, crop)
        target = padded_to(targets[index], crop, crop)
        top = int(rng.integers(image.shape[1] - crop + 1))
        left = int(rng.integers(image.shape[2] - crop + 1))
        x = image[:, top : top + crop, left : left + crop]
        y = target[top : top + crop, left : left + crop]
        for axis in (-1, -2):
            if rng.random() < 0.5:
                x, y = np.flip(x, axis), np.flip(y, axis)
        xs.append(np.ascontiguousarray(x))
        ys.append(np.ascontiguousarray(y))
    return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys).astype(np.int64))


def run_smp(spec: dict[str, Any]) -> dict[str, Any]:
    """Train the smp baseline for the budget, then write ``predictions/masks/<name>.png``."""
    import segmentation_models_pytorch as smp

    dataset, folder = DATASETS[spec["dataset"]], Path(spec["root"])
    torch.manual_seed(spec["seed"])
    rng = np.random.default_rng(spec["seed"])
    images = [
        read_image(folder / "images" / f"{n}.png", dataset.in_channels) for n in spec["train"]
    ]
    targets = [read_target(dataset, folder, n) for n in spec["train"]]
    model = smp.Unet(
        "resnet34", encoder_weights=None, in_channels=dataset.in_channels, classes=NUM_CLASSES
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=SMP_LR)
    criterion = torch.nn.CrossEntropyLoss()
    model.train()
    steps, started = 0, time.perf_counter()
    while time.perf_counter() - started < spec["budget_s"]:
        x, y = random_batch(images, targets, spec["crop"], rng)
        loss = criterion(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        steps += 1
    train_s = time.perf_counter() - started
    output = Path(spec["run_dir"]) / "predictions" / "masks"
    output.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    model.eval()
    with torch.no_grad():
        for name in spec["validation"]:
            image = read_image(folder / "images" / f"{name}.png", dataset.in_channels)
            height, width = image.shape[1:]
            padded = padded_to(image, -(-height // 32) * 32, -(-width // 32) * 32)
            logits = model(torch.from_numpy(np.ascontiguousarray(padded))[None])
            labels = logits[0, :, :height, :width].argmax(0).numpy().astype(np.uint8)
            Image.fromarray(labels).save(output / f"{name}.png")
    return {
        "steps": steps,
        "batch_size": SMP_BATCH,
        "train_s": train_s,
        "predict_s": time.perf_counter() - started,
        "masks": str(output),
    }


def unetlab_overrides(spec: dict[str, Any]) -> list[str]:
    """The data set's overrides, the recipe's, then the benchmark's own."""
    from bench_instances import max_time

    run_dir = Path(spec["run_dir"])
    return [
        *DATASETS[spec["dataset"]].unetlab_overrides,
        *(o for o in spec["overrides"] if not o.startswith(PREDICT_PREFIX)),
        f"data.root={spec['root']}",
        f"data.split_lists={spec['split_file']}",
        f"seed={spec['seed']}",
        f"++trainer.max_time='{max_time(spec['budget_s'])}'",
        "trainer.max_epochs=-1",
        "trainer.min_epochs=0",
        # Training only: no validation rounds inside the budget; the last weights are scored.
        "++trainer.limit_val_batches=0",
        "trainer.num_sanity_val_steps=0",
        "~callbacks.early_stopping",
        "trainer.accelerator=cpu",
        "trainer.devices=1",
        "trainer.enable_progress_bar=false",
        "~callbacks.rich_progress_bar",
        "test=false",
        f"paths.root_dir={ROOT}",
        f"paths.cache_dir={run_dir.parent / 'cache'}",
        f"paths.output_dir={run_dir}",
        f"hydra.run.dir={run_dir}",
    ]


def run_unetlab(spec: dict[str, Any]) -> dict[str, Any]:
    """Train a unetlab recipe for the budget, then predict with ``unetlab.predict``."""
    from bench_instances import compose_config
    from hydra.core.global_hydra import GlobalHydra
    from lightning.pytorch.callbacks import Timer

    from unetlab.config_location import CONFIG_DIR
    from unetlab.predict import predict
    from unetlab.train import train

    run_dir = Path(spec["run_dir"])
    cfg = compose_config(CONFIG_DIR, "train", unetlab_overrides(spec), hydra_config=True)
    try:
        _, objects = train(cfg)
    finally:
        GlobalHydra.instance().clear()
    trainer = objects["trainer"]
    timer = next(c for c in trainer.callbacks if isinstance(c, Timer))
    output = run_dir / "predictions"
    started = time.perf_counter()
    try:
        predict(
            compose_config(
                CONFIG_DIR,
                "predict",
                [
                    f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}",
                    f"input={spec['validation_dir']}",
                    f"output={output}",
                    "mask_format=png",
                    "device=cpu",
                    "progress=false",
                    *(
                        o.removeprefix(PREDICT_PREFIX)
                        for o in spec["overrides"]
                        if o.startswith(PREDICT_PREFIX)
                    ),
                ],
            )
        )
    finally:
        GlobalHydra.instance().clear()
    return {
        "steps": trainer.global_step,
        "batch_size": int(cfg.data.batch_size),
        "train_s": timer.time_elapsed("train"),
        "predict_s": time.perf_counter() - started,
        "masks": str(output / "masks"),
    }


def worker(spec_file: Path) -> None:
    """One training run as ``spec_file`` describes it; writes ``result.json`` beside it."""
    spec = json.loads(spec_file.read_text())
    torch.set_num_threads(len(os.sched_getaffinity(0)))  # the cores run_pinned gave it
    result = (run_smp if spec["method"] == "smp" else run_unetlab)(spec)
    result |= {"core": sorted(os.sched_getaffinity(0)), "threads": torch.get_num_threads()}
    (spec_file.parent / "result.json").write_text(json.dumps(result, indent=2))


# --- the driver: pairs of workers side by side -------------------------------------------


def run_pair(specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run the workers of ``specs`` (at most two) at once, one core and one thread each."""

    def task(spec: dict[str, Any]) -> Callable[[list[int]], dict[str, Any]]:
        def run(cores: list[int]) -> dict[str, Any]:
            run_dir = Path(spec["run_dir"])
            run_dir.mkdir(parents=True, exist_ok=True)
            spec_file = run_dir / "spec.json"
            spec_file.write_text(json.dumps(spec, indent=2))
            command = [sys.executable, str(Path(__file__).resolve()), "--worker", str(spec_file)]
            run_pinned(command, cores, run_dir / "worker.log")
            return spec | json.loads((run_dir / "result.json").read_text())

        return run

    # One core each, a lone run too: every row trains on the same share of the machine.
    return run_side_by_side([(0, task(spec)) for spec in specs], core_groups(2))


@dataclass
class Prepared:
    """A data set made ready for one benchmark run: split, split file, links and truths."""

    dataset: Dataset
    root: Path
    split: dict[str, list[str]]
    split_file: Path
    validation_dir: Path
    truths: dict[str, np.ndarray]


def prepare(dataset: Dataset, root: Path, work_dir: Path, quick: bool) -> Prepared:
    """Split ``root``, write the split for unetlab and link the validation images."""
    split = dataset.split(image_names(root))
    if quick:
        split = {
            "train": smallest(root, split["train"], QUICK_TRAIN_IMAGES),
            "validation": smallest(root, split["validation"], QUICK_VALIDATION_IMAGES),
        }
    folder = work_dir / dataset.key
    validation_dir = folder / "validation"
    validation_dir.mkdir(parents=True, exist_ok=True)
    for name in split["validation"]:
        link = validation_dir / f"{name}.png"
        if not link.exists():
            link.symlink_to(root / "images" / f"{name}.png")
    split_file = folder / "split.json"
    # unetlab validates on nothing: its last weights are scored, as smp's are.
    split_file.write_text(json.dumps({"train": split["train"], "val": [], "test": []}, indent=2))
    truths = {name: read_target(dataset, root, name) for name in split["validation"]}
    return Prepared(dataset, root, split, split_file, validation_dir, truths)


def spec_for(
    data: Prepared, method: str, seed: int, budget: int, run_dir: Path, args: argparse.Namespace
) -> dict[str, Any]:
    """What a worker needs: data, split, budget, seed and the method's settings."""
    return {
        "method": method,
        "dataset": data.dataset.key,
        "root": str(data.root),
        "train": data.split["train"],
        "validation": data.split["validation"],
        "split_file": str(data.split_file),
        "validation_dir": str(data.validation_dir),
        "seed": seed,
        "budget_s": budget,
        "crop": args.crop,
        "run_dir": str(run_dir),
    }


def scored_row(result: dict[str, Any], data: Prepared, label: str) -> dict[str, Any]:
    """A table row: the run's numbers and its scores."""
    images = result["steps"] * result["batch_size"]
    row = {
        "dataset": data.dataset.key,
        "method": result["method"],
        "label": label,
        "overrides": result.get("overrides", []),
        "what": result.get("what", ""),
        "seed": result["seed"],
        "budget_s": result["budget_s"],
        "steps": result["steps"],
        "batch_size": result["batch_size"],
        "train_s": result["train_s"],
        "images_per_s": images / result["train_s"] if result["train_s"] > 0 else 0.0,
        "predict_s": result["predict_s"],
        "core": result["core"],
        "threads": result["threads"],
    }
    row |= score_folder(Path(result["masks"]), data.truths)
    log(
        f"{row['dataset']} {row['budget_s']} s seed {row['seed']} {label}: mIoU "
        f"{row['miou']:.4f}, {row['steps']} steps, {row['images_per_s']:.2f} images/s"
    )
    return row


def run_comparison(data: Prepared, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every seed and budget of one data set: unetlab and smp side by side."""
    rows = []
    label = recipe_label(args.unetlab_recipe, args.unetlab_overrides)
    for seed in args.seeds:
        for budget in args.budgets:
            cell = args.work_dir / data.dataset.key / f"seed{seed}_{budget}s"
            log(f"{data.dataset.key}, seed {seed}, {budget} s: {label} and {SMP_NAME}")
            unetlab = spec_for(data, "unetlab", seed, budget, cell / "unetlab", args)
            unetlab["overrides"] = [*RECIPES[args.unetlab_recipe][1], *args.unetlab_overrides]
            smp = spec_for(data, "smp", seed, budget, cell / "smp", args)
            results = run_pair([unetlab, smp])
            rows += [scored_row(results[0], data, label), scored_row(results[1], data, SMP_NAME)]
    return rows


def levers_of(levers: Sequence[str], dataset: str) -> list[str]:
    """The recipes of ``--levers`` that run on ``dataset``: plain names run on every data
    set, ``KEY:NAME`` only on data set ``KEY`` (e.g. ``isbi:fast_cldice``)."""
    chosen = []
    for lever in levers:
        key, _, name = lever.rpartition(":")
        if key in ("", dataset):
            chosen.append(name)
    return chosen


def run_levers(data: Prepared, args: argparse.Namespace) -> list[dict[str, Any]]:
    """unetlab recipes on one data set at one budget and seed, two at a time side by side."""
    rows = []
    names = levers_of(args.levers, data.dataset.key)
    for first in range(0, len(names), 2):
        pair = names[first : first + 2]
        log(f"{data.dataset.key}, seed {args.seeds[0]}, {args.lever_budget} s: {', '.join(pair)}")
        specs = []
        for name in pair:
            run_dir = args.work_dir / data.dataset.key / f"lever_{name}"
            spec = spec_for(data, "unetlab", args.seeds[0], args.lever_budget, run_dir, args)
            recipe = {"recipe": name, "what": RECIPES[name][0]}
            specs.append(spec | recipe | {"overrides": list(RECIPES[name][1])})
        for result in run_pair(specs):
            rows.append(scored_row(result, data, result["recipe"]))
    return rows


def recipe_label(name: str, extra: Sequence[str]) -> str:
    overrides = " ".join([*RECIPES[name][1], *extra]) or "(defaults)"
    return f"unetlab `{overrides}`"


# --- tables --------------------------------------------------------------------------------


def mean_miou(rows: list[dict[str, Any]], dataset: str, method: str, budget: int) -> float:
    """Mean mIoU over the seeds of one cell (NaN when the cell was not run)."""
    values = [
        r["miou"]
        for r in rows
        if (r["dataset"], r["method"], r["budget_s"]) == (dataset, method, budget)
    ]
    return float(np.mean(values)) if values else float("nan")


def verdict(rows: list[dict[str, Any]], dataset: str, budgets: Sequence[int]) -> list[str]:
    """The target on one data set: unetlab at the middle budget >= smp at the largest + 0.05,
    and unetlab ahead at the smallest."""
    lines = []
    low, high = min(budgets), max(budgets)
    ours, theirs = mean_miou(rows, dataset, "unetlab", low), mean_miou(rows, dataset, "smp", low)
    lines.append(
        f"unetlab at {low} s {ours:.3f} vs smp at {low} s {theirs:.3f}: "
        + ("**ahead**" if ours > theirs else "**not ahead**")
    )
    middle = sorted(budgets)[len(budgets) // 2]
    if len(budgets) >= 3:
        ours, theirs = (
            mean_miou(rows, dataset, "unetlab", middle),
            (mean_miou(rows, dataset, "smp", high)),
        )
        met = ours >= theirs + TARGET_MARGIN
        lines.append(
            f"unetlab at {middle} s {ours:.3f} vs smp at {high} s {theirs:.3f} + "
            f"{TARGET_MARGIN}: " + ("**met**" if met else "**not met**")
        )
    return lines


def cell_summary(own: list[dict[str, Any]]) -> tuple[str, str, str, str]:
    """mean mIoU, per-seed mIoUs, steps per seed and mean images/s of one cell's rows."""
    mean = float(np.mean([r["miou"] for r in own]))
    seeds = " / ".join(f"{r['miou']:.3f}" for r in own)
    steps = " / ".join(f"{r['steps']:,}" for r in own)
    speed = float(np.mean([r["images_per_s"] for r in own]))
    return f"**{mean:.3f}**", seeds, steps, f"{speed:.2f}"


def comparison_table(results: dict[str, Any], dataset: str) -> list[str]:
    rows = [r for r in results["rows"] if r["dataset"] == dataset]
    lines = [
        "| budget | method | mIoU (mean) | mIoU per seed | optimizer steps per seed | images/s |",
        "|---|---|---|---|---|---|",
    ]
    for budget in results["budgets"]:
        for method in ("unetlab", "smp"):
            own = [r for r in rows if (r["method"], r["budget_s"]) == (method, budget)]
            if own:
                cells = " | ".join(cell_summary(own))
                lines.append(f"| {budget} s | {own[0]['label']} | {cells} |")
    return lines


def method_notes(results: dict[str, Any]) -> list[str]:
    return [
        "Each cell trains both methods from scratch **at the same time**, side by side: each "
        "in its own process with one thread (`torch.set_num_threads(1)`, `OMP_NUM_THREADS=1`), "
        "pinned to its own CPU core, so both get one core of the same machine over the same "
        "minutes. The clock counts training only (the data are read before it starts; "
        "prediction and scoring are not counted); training stops at the first optimizer step "
        "that ends past the budget, and the last weights predict the whole validation images. "
        "The score is the dataset-level mean IoU of the two classes: one confusion matrix "
        "summed over every pixel of every validation image (torchmetrics), then IoU = "
        "TP / (TP + FP + FN) per class. *images/s*: training images (patches or crops) per "
        "second of the training clock.",
        "",
        f"- unetlab: `python train.py {results['unetlab_overrides']} data=... "
        "++trainer.max_time=... trainer.max_epochs=-1 trainer.limit_val_batches=0`, then "
        "`unetlab-predict` on the validation images (no validation rounds: nothing is "
        "selected on the scored images).",
        f'- smp: `smp.Unet("resnet34", encoder_weights=None, in_channels=C, classes=2)`, '
        f"Adam {SMP_LR:g}, batch {SMP_BATCH}, random {results['crop']}x{results['crop']} crops "
        "(smaller images reflection-padded) with random horizontal and vertical flips, "
        "cross-entropy, constant learning rate; each image scaled to [0, 1] and standardised "
        "per channel; whole images predicted after reflection padding to a multiple of 32, "
        "argmax.",
        "- ISBI 2012 (`isbi2012_em`): images 00-23 train, 24-29 are scored; class 1 = membrane "
        "(mask 0). DSB 2018 (`dsb2018_nuclei_dev`): the first 80 % of the sorted names train, "
        "the rest are scored; class 1 = nucleus (instance label > 0), RGB input.",
    ]


def markdown(results: dict[str, Any]) -> str:
    """The comparison as this script's section of ``docs/benchmarks.md``."""
    lines = [
        "## Accuracy per CPU minute",
        "",
        f"Written by `make bench-quality` (`{results['command']}`); do not edit by hand.",
        "",
        *method_notes(results),
        "",
    ]
    for key, data in results["datasets"].items():
        lines += [
            f"### {DATASETS[key].title}",
            "",
            f"{data['train']} training and {data['validation']} validation images.",
            "",
            *comparison_table(results, key),
            "",
            *(f"- {line}" for line in verdict(results["rows"], key, results["budgets"])),
            "",
        ]
    lines += [*machine_table(results), "", "Compare rows of one run: a loaded machine trains less."]
    return "\n".join(lines) + "\n"


def levers_markdown(results: dict[str, Any]) -> str:
    """The recipe variants as their own section of ``docs/benchmarks.md``."""
    rows = results["rows"]
    reference = {r["dataset"]: r["miou"] for r in rows if r["label"] == "fast"}
    titles = " and ".join(DATASETS[key].title for key in results["datasets"])
    lines = [
        f"## Levers of the unetlab recipe at {results['lever_budget']} s",
        "",
        f"Written by `python scripts/bench_quality.py --levers ...` (`{results['command']}`); "
        "do not edit by hand.",
        "",
        f"Each recipe trains for {results['lever_budget']} s on {titles} (seed "
        f"{results['seeds'][0]}), two recipes at a time side by side, one core and one thread "
        "each, scored as in *Accuracy per CPU minute*. A lever stays in `experiment=fast` only "
        "if it wins on both data sets; a data set's own settings go to its data config.",
        "",
        "| data set | recipe | what it tries | overrides | mIoU | vs `fast` | optimizer steps "
        "| images/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        fast = reference.get(row["dataset"])
        delta = f"{row['miou'] - fast:+.3f}" if fast is not None else "—"
        overrides = " ".join(row["overrides"]) or "(defaults)"
        lines.append(
            f"| {row['dataset']} | `{row['label']}` | {row['what']} | `{overrides}` | "
            f"{row['miou']:.3f} | {delta} | {row['steps']:,} | {row['images_per_s']:.2f} |"
        )
    lines += ["", *machine_table(results)]
    return "\n".join(lines) + "\n"


def print_table(rows: list[dict[str, Any]]) -> None:
    print(
        f"{'data':5s} {'budget':>7s} {'seed':>4s} {'method':52s} {'mIoU':>6s} {'steps':>6s} "
        f"{'img/s':>6s}"
    )
    for row in rows:
        print(
            f"{row['dataset']:5s} {row['budget_s']:>6d}s {row['seed']:>4d} {row['label'][:52]:52s} "
            f"{row['miou']:6.3f} {row['steps']:>6d} {row['images_per_s']:6.2f}"
        )


# --- command line --------------------------------------------------------------------------


def parse_recipe(text: str) -> tuple[str, tuple[str, ...]]:
    """``NAME=OVERRIDE OVERRIDE ...`` -> (name, overrides)."""
    name, sep, overrides = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(
            f'--recipe {text!r}: write NAME="OVERRIDES", e.g. mine="experiment=fast loss=ce"'
        )
    return name, tuple(overrides.split())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--isbi", type=Path, default=DATASETS["isbi"].folder)
    parser.add_argument("--dsb", type=Path, default=DATASETS["dsb"].folder)
    parser.add_argument("--datasets", nargs="+", choices=sorted(DATASETS), default=list(DATASETS))
    parser.add_argument("--budgets", type=int, nargs="+", default=list(BUDGETS), help="seconds")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument(
        "--unetlab-recipe", choices=sorted(RECIPES), default="fast", help="named recipe"
    )
    parser.add_argument(
        "--unetlab-overrides", nargs="*", default=[], help="Hydra overrides after the recipe's"
    )
    parser.add_argument("--crop", type=int, default=SMP_CROP, help="smp training crop side")
    parser.add_argument(
        "--levers",
        nargs="*",
        help="compare unetlab recipes instead (all without names; KEY:NAME runs on data set KEY "
        f"only): {', '.join(RECIPES)}",
    )
    parser.add_argument(
        "--recipe",
        type=parse_recipe,
        action="append",
        default=[],
        help='an extra recipe NAME="OVERRIDES" for --levers (repeatable)',
    )
    parser.add_argument("--lever-budget", type=int, default=LEVER_BUDGET, help="seconds")
    add_run_options(
        parser,
        "bench_quality",
        f"smoke run: budgets {QUICK_BUDGETS} s, the {QUICK_TRAIN_IMAGES} smallest training "
        f"and {QUICK_VALIDATION_IMAGES} validation images, one seed",
    )
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    raw = argv if argv is not None else sys.argv[1:]
    args = parser.parse_args(argv)
    for name, overrides in args.recipe:
        RECIPES[name] = ("given on the command line", overrides)
    if args.levers is not None:
        args.levers = args.levers or list(RECIPES)
        unknown = [
            lever
            for lever in args.levers
            if lever.rpartition(":")[2] not in RECIPES
            or lever.rpartition(":")[0] not in ("", *DATASETS)
        ]
        if unknown:
            parser.error(f"--levers {' '.join(unknown)}: choose from {', '.join(RECIPES)}")
    if args.quick:
        if "--budgets" not in raw:
            args.budgets = list(QUICK_BUDGETS)
        if "--lever-budget" not in raw:
            args.lever_budget = QUICK_BUDGETS[0]
        if "--seeds" not in raw:
            args.seeds = args.seeds[:1]
    settle_run_options(args, raw, "bench_quality")
    args.roots = {"isbi": args.isbi.resolve(), "dsb": args.dsb.resolve()}
    args.raw = raw
    return args


def reproducing_command(args: argparse.Namespace) -> str:
    """The command line that runs the same benchmark."""
    kept, skip_value = [], False
    for arg in args.raw:
        if skip_value:
            skip_value = False
        elif arg in ("--work-dir", "--output"):
            skip_value = True  # and its value, the next argument
        elif not arg.startswith(("--work-dir=", "--output=")):
            kept.append(arg)
    return shlex.join(["python", "scripts/bench_quality.py", *kept])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.worker is not None:
        worker(args.worker)
        return {}
    args.work_dir.mkdir(parents=True, exist_ok=True)
    prepared = {
        key: prepare(DATASETS[key], args.roots[key], args.work_dir, args.quick)
        for key in args.datasets
    }
    results: dict[str, Any] = {
        "machine": machine(torch.device("cpu"), SOFTWARE),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "load_before": load_average(),
        "command": reproducing_command(args),
        "budgets": args.budgets,
        "seeds": args.seeds,
        "crop": args.crop,
        "unetlab_overrides": " ".join([*RECIPES[args.unetlab_recipe][1], *args.unetlab_overrides]),
        "datasets": {
            key: {"train": len(p.split["train"]), "validation": len(p.split["validation"])}
            for key, p in prepared.items()
        },
        "rows": [],
    }
    log(f"work folder {args.work_dir}; load average {results['load_before']}")
    for data in prepared.values():
        if args.levers is not None:
            results["lever_budget"] = args.lever_budget
            results["rows"] += run_levers(data, args)
        else:
            results["rows"] += run_comparison(data, args)
    results["load_after"] = load_average()
    (args.work_dir / "results.json").write_text(json.dumps(results, indent=2))
    print_table(results["rows"])
    if args.levers is None:
        for key in prepared:
            for line in verdict(results["rows"], key, args.budgets):
                print(f"{key}: {line.replace('**', '')}")
    if args.output is not None:
        section, text = (
            (f"{LEVERS_SECTION}_{args.lever_budget}s", levers_markdown(results))
            if args.levers is not None
            else (SECTION, markdown(results))
        )
        write_section(args.output, section, text)
        log(f"wrote {args.output}")
    return results


if __name__ == "__main__":
    main()
