"""``data.intensity_scaling=per_image``: every image between its own percentiles, everywhere."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from omegaconf import DictConfig
from PIL import Image

from tests import test_predict_cli
from tests.test_data_folder import datamodule, save, write_dataset
from tests.test_predict_cli import TINY_MODEL
from unetlab.checkpoint import CONFIG_KEY, DATA_KEY, load_trained_model
from unetlab.data.normalization import preprocess, scale_to_unit
from unetlab.models import UNet
from unetlab.predict import predict

predict_config = test_predict_cli.predict_config


def test_8_bit_images_are_stretched_between_their_own_percentiles() -> None:
    dim = np.random.default_rng(0).integers(0, 12, (30, 40, 3)).astype(np.uint8)
    low, high = np.percentile(dim.astype(np.float32), [1, 99], axis=(0, 1))
    scaled = scale_to_unit(dim, (1.0, 99.0), "per_image")
    assert np.allclose(scaled, (dim - low) / (high - low), atol=1e-6)
    assert np.allclose(scale_to_unit(dim, (1.0, 99.0)), dim / 255)  # by_dtype: as stored
    with pytest.raises(
        ValueError, match=r"data\.intensity_scaling='zscore'.*by_dtype or per_image"
    ):
        scale_to_unit(dim, scaling="zscore")


def test_the_data_module_serves_dim_and_bright_copies_alike(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "data", count=8)
    for index in range(0, 8, 2):  # every other image a tenth as bright (4 / 19 for 40 / 190)
        path = root / "images" / f"img_{index}.png"
        save(path, np.asarray(Image.open(path)) // 10)
    cache = tmp_path / "stats"
    scaled = datamodule(root, intensity_scaling="per_image", stats_cache=cache)
    scaled.setup()
    as_stored = datamodule(root, stats_cache=cache)
    as_stored.setup()
    images = [s.image for stage in scaled.datasets.values() for s in stage.samples]
    assert all(set(np.unique(image)) == {0.0, 1.0} for image in images)
    stored_max = {float(s.image.max()) for d in as_stored.datasets.values() for s in d.samples}
    assert sorted(stored_max) == pytest.approx([19 / 255, 190 / 255])
    assert len(list(cache.glob("stats_*.json"))) == 2  # one cache entry per scaling
    raw = np.asarray(Image.open(root / "images" / f"{scaled.split['val'][0]}.png"))[..., None]
    served = scaled.datasets["val"][0]["image"].numpy()
    assert np.allclose(served, preprocess(raw, scaled.mean, scaled.std, scaling="per_image"))
    with pytest.raises(ValueError, match=r"data\.intensity_scaling='minmax'"):
        datamodule(root, intensity_scaling="minmax")


def scaled_checkpoint(path: Path, scaling: str) -> Path:
    """A tiny seeded network trained, as its config says, with ``scaling``."""
    model = {**TINY_MODEL, "num_classes": 2}
    torch.manual_seed(0)
    net = UNet(**{k: v for k, v in model.items() if k != "_target_"})
    torch.save(
        {
            "state_dict": {f"net.{k}": v for k, v in net.state_dict().items()},
            CONFIG_KEY: {"model": model, "data": {"intensity_scaling": scaling}},
            DATA_KEY: {"mean": [0.4], "std": [0.3], "class_names": ["background", "nucleus"]},
        },
        path,
    )
    return path


@pytest.mark.parametrize("scaling", ["per_image", "by_dtype"])
def test_prediction_scales_as_training_did(
    tmp_path: Path, predict_config: Callable[..., DictConfig], scaling: str
) -> None:
    levels = np.random.default_rng(1).integers(2, 26, (32, 32))
    inputs = tmp_path / "in"
    save(inputs / "bright.png", (10 * levels).astype(np.uint8))
    save(inputs / "dim.png", levels.astype(np.uint8))
    ckpt = scaled_checkpoint(tmp_path / "net.ckpt", scaling)
    output = tmp_path / "out"
    predict(predict_config(ckpt_path=ckpt, input=inputs, output=output, save_probabilities=True))
    probabilities = {
        name: tifffile.imread(output / "probabilities" / f"{name}.tif")
        for name in ("bright", "dim")
    }
    trained = load_trained_model(ckpt)
    x = preprocess(levels.astype(np.uint8)[..., None], [0.4], [0.3], scaling=scaling)
    with torch.no_grad():
        expected = trained.net.eval()(torch.from_numpy(x)[None]).softmax(1)[0].numpy()
    assert np.allclose(probabilities["dim"], expected, atol=1e-3)  # stored as float16
    # Scaled per image, a tenfold brighter copy is the same input to the network.
    same = np.allclose(probabilities["bright"], probabilities["dim"], atol=1e-3)
    assert same == (scaling == "per_image")


def test_an_ensemble_refuses_members_scaled_differently(
    tmp_path: Path, predict_config: Callable[..., DictConfig]
) -> None:
    first = scaled_checkpoint(tmp_path / "first.ckpt", "by_dtype")
    other = scaled_checkpoint(tmp_path / "other.ckpt", "per_image")
    save(tmp_path / "in" / "a.png", np.zeros((16, 16), np.uint8))
    cfg = predict_config(
        ckpt_path=f"[{first},{other}]", input=tmp_path / "in", output=tmp_path / "out"
    )
    with pytest.raises(ValueError, match=f"^ckpt_path: {first} and {other} differ in intensity"):
        predict(cfg)
