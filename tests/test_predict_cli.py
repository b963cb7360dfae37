"""`unetlab-predict`: outputs, exactness through the command, clear errors, end to end."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig
from PIL import Image

from unetlab.checkpoint import CONFIG_KEY, DATA_KEY
from unetlab.config_location import CONFIG_DIR
from unetlab.data.mirror import mirror_pad
from unetlab.data.normalization import scale_to_unit, standardize
from unetlab.models import UNet, input_size_for_output, valid_output_size
from unetlab.predict import predict

TINY_MODEL = {
    "_target_": "unetlab.models.UNet",
    "in_channels": 1,
    "num_classes": 3,
    "base_channels": 4,
    "depth": 2,
    "padding": "same",
    "norm": "batch",
    "spatial_dims": 2,
}


def write_checkpoint(path: Path, data: dict[str, Any] | None = None, **model: Any) -> Path:
    """Save a checkpoint as training writes it, for a tiny seeded network.

    Args:
        path: The ``.ckpt`` file.
        data: What ``UNetModule.on_save_checkpoint`` stores about the data.
        **model: Overrides of :data:`TINY_MODEL`.
    """
    config = {**TINY_MODEL, **model}
    torch.manual_seed(0)
    net = UNet(**{k: v for k, v in config.items() if k != "_target_"})
    if data is None:
        channels, classes = config["in_channels"], config["num_classes"]
        data = {
            "mean": [0.5] * channels,
            "std": [0.25] * channels,
            "class_names": [f"class_{i}" for i in range(classes)],
        }
    checkpoint = {
        "state_dict": {f"net.{key}": value for key, value in net.state_dict().items()},
        CONFIG_KEY: {"model": config},
        DATA_KEY: data,
    }
    torch.save(checkpoint, path)
    return path


@pytest.fixture
def predict_config() -> Callable[..., DictConfig]:
    """Compose ``predict.yaml`` with ``key=value`` overrides (progress bar off)."""

    def _make(**overrides: Any) -> DictConfig:
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            return compose(
                "predict", overrides=["progress=false", *(f"{k}={v}" for k, v in overrides.items())]
            )

    yield _make
    GlobalHydra.instance().clear()


def save_png(path: Path, shape: tuple[int, ...], seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(path)
    return path


def test_predicts_images_and_stacks_with_every_output(
    tmp_path: Path, predict_config: Callable[..., DictConfig]
) -> None:
    ckpt = write_checkpoint(tmp_path / "tiny.ckpt")
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    save_png(inputs / "a.png", (97, 131))
    stack = np.random.default_rng(1).integers(0, 60000, (3, 40, 50), dtype=np.uint16)
    tifffile.imwrite(inputs / "stack.tif", stack, photometric="minisblack")
    out = tmp_path / "out"
    cfg = predict_config(
        ckpt_path=ckpt,
        input=inputs,
        output=out,
        tile_size=32,
        tta="[identity,hflip]",
        save_probabilities=True,
        save_overlay=True,
    )
    summary = predict(cfg)
    assert summary["images"] == 2 and summary["tiles"] > 2
    mask = np.asarray(Image.open(out / "masks" / "a.png"))
    assert mask.shape == (97, 131) and mask.dtype == np.uint8 and mask.max() < 3
    stack_mask = tifffile.imread(out / "masks" / "stack.tif")
    assert stack_mask.shape == (3, 40, 50) and stack_mask.max() < 3
    probabilities = tifffile.imread(out / "probabilities" / "a.tif")
    assert probabilities.shape == (3, 97, 131) and probabilities.dtype == np.float16
    np.testing.assert_allclose(probabilities.astype(np.float32).sum(0), 1.0, atol=3e-3)
    np.testing.assert_array_equal(probabilities.argmax(0), mask)
    assert tifffile.imread(out / "probabilities" / "stack.tif").shape == (3, 3, 40, 50)
    overlays = sorted(p.name for p in (out / "overlays").iterdir())
    assert overlays == ["a.png", "stack_000.png", "stack_001.png", "stack_002.png"]
    assert np.asarray(Image.open(out / "overlays" / "a.png")).shape == (97, 131, 3)
    assert set(summary["files"]) == {p for p in out.rglob("*") if p.is_file()}


def test_valid_checkpoint_mask_equals_whole_image_prediction(
    tmp_path: Path, predict_config: Callable[..., DictConfig]
) -> None:
    ckpt = write_checkpoint(tmp_path / "valid.ckpt", padding="valid", norm="none")
    image = save_png(tmp_path / "odd.png", (61, 83))
    predict(predict_config(ckpt_path=ckpt, input=image, output=tmp_path / "out", tile_size=44))
    torch.manual_seed(0)
    net = UNet(1, 3, base_channels=4, depth=2, padding="valid", norm="none").eval()
    pixels = np.asarray(Image.open(image))[..., None]
    normalised = standardize(scale_to_unit(pixels), [0.5], [0.25]).transpose(2, 0, 1)
    height, width = (input_size_for_output(n, 2) for n in (61, 83))
    margin = (height - valid_output_size(height, 2)) // 2
    padded = mirror_pad(normalised, (margin, margin), (height - 61 - margin, width - 83 - margin))
    with torch.no_grad():
        expected = net(torch.from_numpy(padded)[None])[0, :, :61, :83].argmax(0).numpy()
    np.testing.assert_array_equal(
        np.asarray(Image.open(tmp_path / "out" / "masks" / "odd.png")), expected
    )


def test_predicts_3d_volumes(tmp_path: Path, predict_config: Callable[..., DictConfig]) -> None:
    ckpt = write_checkpoint(tmp_path / "3d.ckpt", spatial_dims=3, base_channels=2)
    volume = np.random.default_rng(2).random((9, 20, 24)).astype(np.float32)
    tifffile.imwrite(tmp_path / "volume.tif", volume, metadata={"axes": "ZYX"})
    out = tmp_path / "out"
    predict(
        predict_config(
            ckpt_path=ckpt,
            input=tmp_path / "volume.tif",
            output=out,
            tile_size=16,
            save_overlay=True,
        )
    )
    assert tifffile.imread(out / "masks" / "volume.tif").shape == (9, 20, 24)
    assert (out / "overlays" / "volume_z004.png").is_file()


def test_errors_are_one_line_naming_the_problem(
    tmp_path: Path, predict_config: Callable[..., DictConfig]
) -> None:
    ckpt = write_checkpoint(tmp_path / "tiny.ckpt")
    rgb = save_png(tmp_path / "rgb.png", (20, 20, 3))
    gray = save_png(tmp_path / "gray.png", (20, 20))
    out = tmp_path / "out"

    def error_of(**overrides: Any) -> str:
        with pytest.raises((ValueError, FileNotFoundError)) as error:
            predict(predict_config(**overrides))
        message = str(error.value)
        assert "\n" not in message
        return message

    assert error_of(ckpt_path=ckpt, input=rgb, output=out) == (
        f"{rgb}: image has 3 channels but the model expects 1 (model.in_channels=1 in the "
        "checkpoint's config); convert the image to grayscale"
    )
    blocker = tmp_path / "file.txt"
    blocker.write_text("")
    assert error_of(ckpt_path=ckpt, input=gray, output=blocker / "out").startswith(
        f"output={blocker / 'out'}: cannot write there"
    )
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    assert error_of(ckpt_path=ckpt, input=broken, output=out).startswith(
        f"{broken}: cannot read image"
    )
    names = write_checkpoint(
        tmp_path / "names.ckpt", {"mean": [0.5], "std": [0.25], "class_names": ["a", "b"]}
    )
    assert "names 2 classes (a, b) but model.num_classes=3" in error_of(
        ckpt_path=names, input=gray, output=out
    )
    stats = write_checkpoint(tmp_path / "stats.ckpt", {"mean": [0.5] * 3, "std": [0.25] * 3})
    assert "statistics of 3 channels but model.in_channels=1" in error_of(
        ckpt_path=stats, input=gray, output=out
    )
    assert "not found" in error_of(ckpt_path=tmp_path / "none.ckpt", input=gray, output=out)
    assert error_of(ckpt_path=ckpt, input=gray, output=out, blend="box").startswith("blend=box")
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        missing = compose("predict", overrides=[f"input={gray}"])
    with pytest.raises(ValueError, match=r"missing ckpt_path=\.\.\., output=\.\.\."):
        predict(missing)
    (tmp_path / "gray.tif").write_bytes(b"")
    assert "would write the same output name 'gray'" in error_of(
        ckpt_path=ckpt, input=f"{tmp_path}/gray.*", output=out
    )


def run_predict(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "unetlab.predict", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_trained_checkpoint_end_to_end(
    tmp_path: Path, trained_run: dict[str, Any], data_cache: Path
) -> None:
    metrics = trained_run
    images = sorted(data_cache.glob("synthetic/*/images"))[0]
    out = tmp_path / "predictions"
    result = run_predict(
        [f"ckpt_path={metrics['ckpt_path']}", f"input={images}/*.png", f"output={out}", "tta=d4"],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    last = result.stdout.strip().splitlines()[-1]
    match = re.fullmatch(r"RESULT images=(\d+) tiles=(\d+) seconds=[\d.]+ output=(\S+)", last)
    assert match, last
    count = len(list(images.glob("*.png")))
    assert int(match[1]) == count and Path(match[3]) == out
    assert len(list((out / "masks").glob("*.png"))) == count
    assert sorted(p.name for p in tmp_path.iterdir()) == ["predictions"]

    rgb = save_png(tmp_path / "rgb.png", (20, 20, 3))
    result = run_predict(
        [f"ckpt_path={metrics['ckpt_path']}", f"input={rgb}", f"output={out}"], tmp_path
    )
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith(f"unetlab-predict: error: {rgb}: image has 3 channels but the model expects 1")
    )
