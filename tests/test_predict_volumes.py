"""Predicting volumes: NIfTI and TIFF outputs on the input's voxel grid, exact 3-D tiling."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from tests.test_data_volumes import OBLIQUE_AFFINE
from tests.test_predict_cli import write_checkpoint
from unetlab.checkpoint import CONFIG_KEY
from unetlab.config_location import CONFIG_DIR
from unetlab.data.io import read_volume
from unetlab.data.mirror import mirror_pad
from unetlab.data.normalization import scale_to_unit, standardize
from unetlab.data.resampling import resize
from unetlab.data.volumes import Volume, write_volume
from unetlab.inference import overlap_tile_predict, plan_tiles
from unetlab.inference.io import read_input
from unetlab.models import UNet, input_size_for_output, valid_output_size
from unetlab.predict import predict

TINY_3D = {"spatial_dims": 3, "base_channels": 2}


def tiny_net(**options: object) -> UNet:
    """The network ``write_checkpoint`` saves for these options."""
    torch.manual_seed(0)
    return UNet(1, 3, depth=2, **{"norm": "batch", **TINY_3D, **options}).eval()


def run_predict(**options: Any) -> dict[str, Any]:
    """``unetlab-predict key=value ...`` in this process (progress bar off)."""
    GlobalHydra.instance().clear()
    overrides = ["progress=false", *(f"{key}={value}" for key, value in options.items())]
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("predict", overrides=overrides)
    GlobalHydra.instance().clear()
    return predict(cfg)


def normalised(volume: np.ndarray) -> np.ndarray:
    """A stored (Z, Y, X) volume as the checkpoint's network takes it: (1, Z, Y, X)."""
    return np.moveaxis(standardize(scale_to_unit(volume[..., None]), [0.5], [0.25]), -1, 0)


def test_nifti_volume_keeps_its_affine_and_tiles_equal_the_whole_volume(tmp_path: Path) -> None:
    ckpt = write_checkpoint(tmp_path / "valid.ckpt", padding="valid", norm="none", **TINY_3D)
    pixels = np.random.default_rng(0).integers(0, 256, (13, 23, 17)).astype(np.uint8)
    source = write_volume(
        tmp_path / "scan.nii.gz", Volume(pixels, affine=OBLIQUE_AFFINE, unit="mm")
    )
    out = tmp_path / "out"
    summary = run_predict(
        ckpt_path=ckpt, input=source, output=out, tile_size=28, save_probabilities=True
    )
    assert summary["tiles"] > 1
    mask = read_volume(out / "masks" / "scan.nii.gz")
    assert mask.array.shape == (13, 23, 17) and mask.array.dtype == np.uint8
    np.testing.assert_allclose(mask.affine, OBLIQUE_AFFINE)
    assert mask.unit == "mm"
    probabilities = read_volume(out / "probabilities" / "scan.nii.gz")
    assert probabilities.array.shape == (13, 23, 17, 3)
    np.testing.assert_allclose(probabilities.affine, OBLIQUE_AFFINE)

    inputs = [input_size_for_output(n, 2) for n in pixels.shape]
    margin = (inputs[0] - valid_output_size(inputs[0], 2)) // 2
    after = [i - n - margin for i, n in zip(inputs, pixels.shape, strict=True)]
    padded = mirror_pad(normalised(pixels), [margin] * 3, after)
    with torch.no_grad():
        logits = tiny_net(padding="valid", norm="none")(torch.from_numpy(padded)[None])[0]
    expected = logits[:, :13, :23, :17].argmax(0).numpy()
    np.testing.assert_array_equal(mask.array, expected)
    np.testing.assert_array_equal(probabilities.array.argmax(-1), expected)


def test_tiff_volume_mask_keeps_the_spacing(tmp_path: Path) -> None:
    ckpt = write_checkpoint(tmp_path / "same.ckpt", **TINY_3D)
    pixels = np.random.default_rng(1).integers(0, 4000, (6, 20, 18)).astype(np.uint16)
    source = write_volume(tmp_path / "stack.tif", Volume(pixels, (2.0, 0.5, 0.25), unit="um"))
    run_predict(ckpt_path=ckpt, input=source, output=tmp_path / "out")
    mask = read_volume(tmp_path / "out" / "masks" / "stack.tif")
    assert mask.shape == (6, 20, 18) and mask.spacing == (2.0, 0.5, 0.25) and mask.unit == "um"


def test_volumes_are_predicted_on_the_training_spacing_and_written_on_their_own(
    tmp_path: Path,
) -> None:
    ckpt = write_checkpoint(tmp_path / "resampled.ckpt", **TINY_3D)
    checkpoint = torch.load(ckpt, weights_only=True)
    checkpoint[CONFIG_KEY]["data"] = {"target_spacing": [1.0, 1.0, 1.0]}
    torch.save(checkpoint, ckpt)
    pixels = np.random.default_rng(2).integers(0, 256, (6, 16, 16)).astype(np.uint8)
    affine = np.diag([0.5, 0.5, 2.0, 1.0])
    source = write_volume(tmp_path / "aniso.nii", Volume(pixels, affine=affine))
    summary = run_predict(ckpt_path=ckpt, input=source, output=tmp_path / "out")
    mask = read_volume(tmp_path / "out" / "masks" / "aniso.nii.gz")
    assert mask.shape == (6, 16, 16)
    np.testing.assert_allclose(mask.affine, affine)
    # One tile covers the resampled (12, 8, 8) volume: the whole-volume prediction.
    assert summary["tiles"] == 1
    grid_input = resize(normalised(pixels)[0], (12, 8, 8), order=1)[None]
    with torch.no_grad():
        logits = tiny_net()(torch.from_numpy(np.ascontiguousarray(grid_input))[None])[0].numpy()
    back = np.moveaxis(resize(np.moveaxis(logits, 0, -1), (6, 16, 16), order=1), -1, 0)
    np.testing.assert_array_equal(mask.array, back.argmax(0))


def test_same_padding_3d_tiles_blend_into_the_whole_volume_prediction() -> None:
    net = tiny_net()
    volume = np.random.default_rng(3).normal(size=(1, 20, 28, 24)).astype(np.float32)
    assert plan_tiles(volume.shape[1:], net, 16, 0.5).num_tiles > 1
    tiled = overlap_tile_predict(volume, net, tile_size=16, overlap=0.5, batch_size=3)
    with torch.no_grad():
        whole = net(torch.from_numpy(volume)[None])[0]
    assert tiled.shape == whole.shape
    # Tiles see less context than the whole volume, but agree with it away from the seams.
    assert (tiled - whole).abs().mean() < 0.1 * whole.abs().mean()


def test_nifti_needs_a_3d_model(tmp_path: Path) -> None:
    source = write_volume(tmp_path / "v.nii.gz", Volume(np.zeros((4, 5, 6), np.uint8)))
    with pytest.raises(ValueError, match=r"v.nii.gz: a NIfTI volume, but the model is 2-D"):
        read_input(source, spatial_dims=2)
    assert read_input(source, spatial_dims=3).items.shape == (1, 4, 5, 6, 1)
