"""Training, evaluation, prediction and export hand the network bit-identical input.

The same files go through the data module's evaluation path (what ``unetlab-eval`` and
validation see) and through ``unetlab-predict`` (the array it hands the tiler), and for
2-D images through the BioImage Model Zoo export's test input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from PIL import Image

import unetlab.predict
from unetlab.checkpoint import CONFIG_KEY, DATA_KEY, load_trained_model
from unetlab.data import BiomedicalDataModule, FolderSource
from unetlab.export.bioimageio import model_input
from unetlab.models import UNet
from unetlab.predict import CONFIG_DIR, predict

RNG = np.random.default_rng(7)
PERCENTILES = [2.0, 98.0]
"""Not the default, so a step that ignored ``data.percentiles`` would show."""
SHAPE = (20, 24)


def save(path: Path, array: np.ndarray) -> None:
    """A PNG (Pillow), or a grayscale TIFF image, stack or volume (tifffile)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".tif":
        tifffile.imwrite(path, array, photometric="minisblack")
    else:
        Image.fromarray(array).save(path)


def write_pair(root: Path, name: str, image: np.ndarray, suffix: str) -> Path:
    """``images/<name><suffix>`` and a mask of its brighter half (first channel)."""
    grey = image[..., 0] if image.shape[-1] == 3 else image
    save(root / "images" / f"{name}{suffix}", image)
    save(root / "masks" / f"{name}{suffix}", (grey > np.median(grey)).astype(np.uint8))
    return root / "images" / f"{name}{suffix}"


def png8(root: Path, name: str) -> Path:
    return write_pair(root, name, RNG.integers(0, 256, SHAPE, dtype=np.uint8), ".png")


def tiff16(root: Path, name: str) -> Path:
    image = RNG.integers(800, 1500, SHAPE).astype(np.uint16)
    image[3, 4] = 65000
    return write_pair(root, name, image, ".tif")


def pages(root: Path, name: str) -> Path:
    return write_pair(root, name, RNG.integers(0, 4000, (3, *SHAPE)).astype(np.uint16), ".tif")


def rgb(root: Path, name: str) -> Path:
    return write_pair(root, name, RNG.integers(0, 256, (*SHAPE, 3), dtype=np.uint8), ".png")


def volume(root: Path, name: str) -> Path:
    image = RNG.normal(100.0, 20.0, (6, *SHAPE)).astype(np.float32)
    return write_pair(root, name, image, ".tif")


CASES = {
    "8-bit png": (png8, 1, 2, ["probe"]),
    "16-bit tiff": (tiff16, 1, 2, ["probe"]),
    "multi-page stack": (pages, 1, 2, ["probe_000", "probe_001", "probe_002"]),
    "rgb png": (rgb, 3, 2, ["probe"]),
    "volume": (volume, 1, 3, ["probe"]),
}
"""Writer, channels, spatial dims and the sample names the data module gives the file."""


def write_checkpoint(path: Path, channels: int, spatial_dims: int, mean, std) -> Path:
    """A checkpoint as training writes it: network, config (with the data's percentiles)."""
    model = {"in_channels": channels, "num_classes": 2, "base_channels": 2, "depth": 1}
    model["spatial_dims"] = spatial_dims
    torch.manual_seed(0)
    net = UNet(**model)
    torch.save(
        {
            "state_dict": {f"net.{k}": v for k, v in net.state_dict().items()},
            CONFIG_KEY: {
                "model": {"_target_": "unetlab.models.UNet", **model},
                "data": {"percentiles": PERCENTILES},
            },
            DATA_KEY: {"mean": mean, "std": std, "class_names": ["a", "b"]},
        },
        path,
    )
    return path


def predicted_inputs(ckpt: Path, image: Path, output: Path, monkeypatch) -> list[np.ndarray]:
    """The arrays ``unetlab-predict`` hands the tiler for one input file."""
    seen: list[np.ndarray] = []
    tile = unetlab.predict.overlap_tile_predict

    def recording(array: np.ndarray, *args: Any, **kwargs: Any) -> torch.Tensor:
        seen.append(np.array(array, copy=True))
        return tile(array, *args, **kwargs)

    monkeypatch.setattr(unetlab.predict, "overlap_tile_predict", recording)
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(
            "predict",
            overrides=[f"ckpt_path={ckpt}", f"input={image}", f"output={output}", "progress=false"],
        )
    GlobalHydra.instance().clear()
    predict(cfg)
    return seen


@pytest.mark.parametrize("case", list(CASES))
def test_data_module_and_prediction_give_bit_identical_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    write, channels, spatial_dims, names = CASES[case]
    root = tmp_path / "data"
    image = write(root, "probe")
    write(root, "train")
    mean, std = [0.3, 0.45, 0.6][:channels], [0.2, 0.25, 0.3][:channels]
    datamodule = BiomedicalDataModule(
        FolderSource(root),
        in_channels=channels,
        mean=mean,
        std=std,
        percentiles=PERCENTILES,
        spatial_dims=spatial_dims,
        split_lists={"train": [n.replace("probe", "train") for n in names], "test": names},
        batch_size=1,
    )
    datamodule.setup()
    test = datamodule.datasets["test"]
    served = {test[i]["name"]: test[i]["image"].numpy() for i in range(len(test))}
    assert sorted(served) == names

    ckpt = write_checkpoint(tmp_path / "model.ckpt", channels, spatial_dims, mean, std)
    predicted = predicted_inputs(ckpt, image, tmp_path / "out", monkeypatch)

    assert len(predicted) == len(names)
    for name, array in zip(names, predicted, strict=True):
        assert array.dtype == served[name].dtype == np.float32
        assert array.shape == served[name].shape
        assert np.array_equal(array, served[name]), f"{case}: {name} differs"
    if names == ["probe"] and spatial_dims == 2:
        stored = np.asarray(Image.open(image)) if image.suffix == ".png" else tifffile.imread(image)
        exported = model_input(load_trained_model(ckpt), stored.reshape(*SHAPE, channels))[0]
        assert np.array_equal(exported, served["probe"])
