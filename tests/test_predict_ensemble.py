"""Ensembles of checkpoints in ``unetlab-predict``: mean probabilities, sweep folders, checks."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from omegaconf import DictConfig
from PIL import Image

from tests import test_predict_cli
from tests.test_predict_cli import save_png, write_checkpoint
from unetlab.checkpoint import load_trained_model
from unetlab.data.normalization import scale_to_unit, standardize
from unetlab.inference.ensemble import checkpoint_paths
from unetlab.inference.tiling import overlap_tile_predict
from unetlab.predict import predict

predict_config = test_predict_cli.predict_config
"""The fixture composing ``predict.yaml``, shared with the command's tests."""


def perturbed_copy(source: Path, target: Path, seed: int) -> Path:
    """``source`` with noise added to every weight and no biases (so labels vary), as ``target``."""
    checkpoint = torch.load(source, weights_only=False)
    generator = torch.Generator().manual_seed(seed)
    for key, value in checkpoint["state_dict"].items():
        if key.endswith("bias"):
            checkpoint["state_dict"][key] = torch.zeros_like(value)
        elif value.is_floating_point():
            noise = torch.randn(value.shape, generator=generator) * value.std().nan_to_num(0)
            checkpoint["state_dict"][key] = value + noise
    torch.save(checkpoint, target)
    return target


def written(out: Path, name: str = "a") -> tuple[np.ndarray, np.ndarray]:
    mask = np.asarray(Image.open(out / "masks" / f"{name}.png"))
    return mask, tifffile.imread(out / "probabilities" / f"{name}.tif").astype(np.float32)


def test_ensemble_of_identical_checkpoints_equals_one(
    tmp_path: Path, predict_config: Callable[..., DictConfig]
) -> None:
    one = write_checkpoint(tmp_path / "one.ckpt")
    twin = shutil.copy(one, tmp_path / "twin.ckpt")
    image = save_png(tmp_path / "a.png", (57, 71))
    options = {"input": image, "tile_size": 32, "save_probabilities": True}
    predict(predict_config(ckpt_path=one, output=tmp_path / "single", **options))
    summary = predict(
        predict_config(ckpt_path=f"[{one},{twin}]", output=tmp_path / "pair", **options)
    )
    single, pair = written(tmp_path / "single"), written(tmp_path / "pair")
    np.testing.assert_array_equal(pair[0], single[0])
    np.testing.assert_allclose(pair[1], single[1], atol=1e-3)
    assert summary["tiles"] == 2 * 9


def test_ensemble_averages_the_probabilities_of_its_members(
    tmp_path: Path, predict_config: Callable[..., DictConfig]
) -> None:
    base = write_checkpoint(tmp_path / "base.ckpt")
    first = perturbed_copy(base, tmp_path / "first.ckpt", seed=1)
    second = perturbed_copy(base, tmp_path / "second.ckpt", seed=2)
    image = save_png(tmp_path / "a.png", (57, 71))
    predict(
        predict_config(
            ckpt_path=f"[{first},{second}]",
            input=image,
            output=tmp_path / "out",
            tile_size=32,
            save_probabilities=True,
        )
    )
    mask, probabilities = written(tmp_path / "out")
    pixels = np.asarray(Image.open(image))[..., None]
    normalised = standardize(scale_to_unit(pixels), [0.5], [0.25]).transpose(2, 0, 1)
    members = [
        overlap_tile_predict(normalised, load_trained_model(path).net, tile_size=32).softmax(0)
        for path in (first, second)
    ]
    expected = ((members[0] + members[1]) / 2).numpy()
    assert (members[0] - members[1]).abs().max() > 0.05, "the members differ"
    np.testing.assert_allclose(probabilities, expected, atol=5e-4)
    decided = np.sort(expected, axis=0)[-1] - np.sort(expected, axis=0)[-2] > 1e-3
    np.testing.assert_array_equal(mask[decided], expected.argmax(0)[decided])
    assert len(np.unique(mask)) > 1


def test_sweep_folder_gives_the_best_checkpoint_of_every_run(
    tmp_path: Path, predict_config: Callable[..., DictConfig]
) -> None:
    sweep = tmp_path / "multirun"
    runs = [sweep / "0" / "checkpoints", sweep / "1" / "checkpoints"]
    for run in runs:
        run.mkdir(parents=True)
    first = write_checkpoint(runs[0] / "epoch_004.ckpt")
    shutil.copy(first, runs[0] / "last.ckpt")
    second = perturbed_copy(first, runs[1] / "epoch_002.ckpt", seed=2)
    assert checkpoint_paths(str(sweep)) == [first, second]
    image = save_png(tmp_path / "a.png", (40, 45))
    options = {"input": image, "tile_size": 32, "save_probabilities": True}
    predict(predict_config(ckpt_path=sweep, output=tmp_path / "folder", **options))
    predict(predict_config(ckpt_path=f"[{first},{second}]", output=tmp_path / "list", **options))
    folder, listed = written(tmp_path / "folder"), written(tmp_path / "list")
    np.testing.assert_array_equal(folder[0], listed[0])
    np.testing.assert_array_equal(folder[1], listed[1])
    shutil.copy(second, runs[1] / "epoch_003.ckpt")
    with pytest.raises(
        ValueError, match=r"holds 2 best checkpoints \(epoch_002.ckpt, epoch_003.ckpt\)"
    ):
        checkpoint_paths(sweep)
    with pytest.raises(ValueError, match="without run checkpoints"):
        checkpoint_paths(tmp_path / "folder")


@pytest.mark.parametrize(
    ("model", "data", "difference"),
    [
        ({"num_classes": 2}, None, r"number of classes \(3 vs 2\)"),
        ({"in_channels": 3}, None, r"input channels \(1 vs 3\)"),
        (
            {},
            {"mean": [0.4], "std": [0.25], "class_names": ["class_0", "class_1", "class_2"]},
            r"input mean \(\[0.5\] vs \[0.4\]\)",
        ),
    ],
)
def test_members_that_disagree_give_one_clear_error(
    tmp_path: Path,
    predict_config: Callable[..., DictConfig],
    model: dict,
    data: dict | None,
    difference: str,
) -> None:
    first = write_checkpoint(tmp_path / "first.ckpt")
    other = write_checkpoint(tmp_path / "other.ckpt", data, **model)
    cfg = predict_config(
        ckpt_path=f"[{first},{other}]",
        input=save_png(tmp_path / "a.png", (20, 20)),
        output=tmp_path / "out",
    )
    with pytest.raises(
        ValueError, match=f"^ckpt_path: {first} and {other} differ in {difference};"
    ) as error:
        predict(cfg)
    assert "\n" not in str(error.value)


def test_precision_and_channels_last_through_the_command(
    tmp_path: Path, predict_config: Callable[..., DictConfig]
) -> None:
    ckpt = write_checkpoint(tmp_path / "tiny.ckpt")
    image = save_png(tmp_path / "a.png", (57, 71))
    predict(predict_config(ckpt_path=ckpt, input=image, output=tmp_path / "plain", tile_size=32))
    predict(
        predict_config(
            ckpt_path=ckpt,
            input=image,
            output=tmp_path / "fast",
            tile_size=32,
            precision="bf16",
            channels_last=True,
        )
    )
    plain = np.asarray(Image.open(tmp_path / "plain" / "masks" / "a.png"))
    fast = np.asarray(Image.open(tmp_path / "fast" / "masks" / "a.png"))
    assert (plain == fast).mean() >= 0.9
    for value, message in [
        ("fp16", r"^precision=fp16 is not supported on the CPU"),
        ("64", r"^precision=64 is not supported; choose one of 32, bf16, fp16, fastest$"),
    ]:
        cfg = predict_config(
            ckpt_path=ckpt, input=image, output=tmp_path / "x", precision=value, device="cpu"
        )
        with pytest.raises(ValueError, match=message):
            predict(cfg)
