"""Train StarDist 2D from scratch for a wall-clock budget and label the validation images.

The StarDist part of ``scripts/bench_instances.py``, run in StarDist's own virtual
environment (``.venv-stardist``: ``stardist``, ``tensorflow-cpu``, ``tensorboard``; unetlab
is not installed there, and TensorFlow is no dependency of unetlab)::

    .venv-stardist/bin/python scripts/stardist_worker.py SPEC.json

``SPEC.json`` names the data folder (``images/<id>.png``, ``masks/<id>.png``), the ids of
the ``train``, ``tuning`` and ``validation`` images, ``budget_s``, ``seed`` and ``output``.
Training follows StarDist's example notebook (``examples/2D/2_training.ipynb``) with its
defaults: ``Config2D(n_rays=32, grid=(2, 2), n_channel_in=3)``, images normalised with
``normalize(x, 1, 99.8, axis=(0, 1))``, label holes filled, the notebook's augmenter (flips,
rotations by 90 degrees, intensity change, noise), validation on the tuning images, then
``optimize_thresholds`` on them. A Keras callback ends training once ``budget_s`` seconds
have passed since it began (after the batch that crosses it; Keras then validates and keeps
the best weights as usual). Writes ``output/labels/<id>.npy`` (the instance labels of each
validation image from ``predict_instances``) and ``output/result.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from importlib import metadata
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
from csbdeep.utils import normalize
from PIL import Image
from stardist import fill_label_holes
from stardist.models import Config2D, StarDist2D

N_RAYS = 32
GRID = (2, 2)
PERCENTILES = (1, 99.8)
CHANNEL_AXES = (0, 1)  # normalise channels independently, as the notebook does


class Deadline(keras.callbacks.Callback):
    """Stops training after the batch that ends past ``seconds`` from the start of training.

    Args:
        seconds: The wall-clock budget of training.
    """

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds
        self.start = 0.0
        self.elapsed = 0.0
        self.steps = 0
        self.epochs = 0

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.steps += 1
        if time.perf_counter() - self.start >= self.seconds:
            self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.epochs = epoch + 1

    def on_train_end(self, logs: dict | None = None) -> None:
        self.elapsed = time.perf_counter() - self.start


def read_image(path: Path) -> np.ndarray:
    """An RGB image scaled per channel between its 1st and 99.8th percentile."""
    image = np.asarray(Image.open(path).convert("RGB"))
    return normalize(image, *PERCENTILES, axis=CHANNEL_AXES)


def read_labels(path: Path) -> np.ndarray:
    """Instance labels with their holes filled (0 = background)."""
    return fill_label_holes(np.asarray(Image.open(path)).astype(np.int32))


def random_fliprot(image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The notebook's random axis permutation and flips of image and mask alike."""
    axes = tuple(range(mask.ndim))
    permutation = tuple(np.random.permutation(axes))
    image = image.transpose(permutation + tuple(range(mask.ndim, image.ndim)))
    mask = mask.transpose(permutation)
    for axis in axes:
        if np.random.rand() > 0.5:
            image, mask = np.flip(image, axis=axis), np.flip(mask, axis=axis)
    return image, mask


def augmenter(image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The notebook's augmenter: flips and rotations, intensity change, Gaussian noise."""
    image, mask = random_fliprot(image, mask)
    image = image * np.random.uniform(0.6, 2) + np.random.uniform(-0.2, 0.2)
    sigma = 0.02 * np.random.uniform(0, 1)
    return image + sigma * np.random.normal(0, 1, image.shape), mask


def run(spec: dict[str, Any]) -> dict[str, Any]:
    """Train, tune the thresholds, label the validation images; return the summary."""
    data, output = Path(spec["data"]), Path(spec["output"])
    keras.utils.set_random_seed(spec["seed"])

    def load(ids: list[str]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        images = [read_image(data / "images" / f"{name}.png") for name in ids]
        return images, [read_labels(data / "masks" / f"{name}.png") for name in ids]

    x_train, y_train = load(spec["train"])
    x_tune, y_tune = load(spec["tuning"])
    config = Config2D(n_rays=N_RAYS, grid=GRID, n_channel_in=x_train[0].shape[-1])
    model = StarDist2D(config, name="stardist", basedir=str(output / "model"))
    model.prepare_for_training()
    deadline = Deadline(spec["budget_s"])
    model.callbacks.append(deadline)
    model.train(
        x_train, y_train, validation_data=(x_tune, y_tune), augmenter=augmenter, seed=spec["seed"]
    )
    started = time.perf_counter()
    model.optimize_thresholds(x_tune, y_tune)
    tuned = time.perf_counter() - started

    labels_dir = output / "labels"
    labels_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for name in spec["validation"]:
        image = read_image(data / "images" / f"{name}.png")
        labels, _ = model.predict_instances(
            image, n_tiles=model._guess_n_tiles(image), show_tile_progress=False
        )
        np.save(labels_dir / f"{name}.npy", labels.astype(np.int32))
    return {
        "train_s": deadline.elapsed,
        "steps": deadline.steps,
        "epochs": deadline.epochs,
        "optimize_thresholds_s": tuned,
        "predict_s": time.perf_counter() - started,
        "thresholds": {"prob": float(model.thresholds.prob), "nms": float(model.thresholds.nms)},
        "software": {name: metadata.version(name) for name in ("stardist", "tensorflow-cpu")},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", type=Path, help="JSON file: data, ids, budget_s, seed, output")
    spec = json.loads(parser.parse_args().spec.read_text())
    result = run(spec)
    (Path(spec["output"]) / "result.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
