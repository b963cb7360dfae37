"""BioImage Model Zoo packages: valid, reproducible offline, and runnable by ``unetlab-predict``."""

from __future__ import annotations

import socket
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig
from PIL import Image

from unetlab.checkpoint import CONFIG_KEY, DATA_KEY
from unetlab.config_location import CONFIG_DIR
from unetlab.data.synthetic import generate_nuclei_image
from unetlab.export.command import export
from unetlab.models import UNet
from unetlab.predict import predict

pytest.importorskip("bioimageio.core")

pytestmark = pytest.mark.export


def _compose(name: str, overrides: dict[str, Any]) -> DictConfig:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose(name, overrides=[f"{k}={v}" for k, v in overrides.items()])


def _checkpoint(path: Path, padding: str, scaling: str = "by_dtype") -> Path:
    model = {
        "_target_": "unetlab.models.UNet",
        "in_channels": 1,
        "num_classes": 2,
        "base_channels": 4,
        "depth": 2,
        "padding": padding,
    }
    torch.manual_seed(0)
    net = UNet(**{key: value for key, value in model.items() if key != "_target_"})
    torch.save(
        {
            "state_dict": {f"net.{key}": value for key, value in net.state_dict().items()},
            CONFIG_KEY: {"model": model, "data": {"intensity_scaling": scaling}},
            DATA_KEY: {"mean": [0.2], "std": [0.3], "class_names": ["background", "nucleus"]},
        },
        path,
    )
    return path


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a network connection fails the test."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _export_package(
    tmp_path: Path, padding: str, test: bool, scaling: str = "by_dtype"
) -> tuple[Path, Path]:
    """Export a tiny checkpoint; ``test`` runs ``bioimageio.core``'s model test on it."""
    ckpt = _checkpoint(tmp_path / f"{padding}.ckpt", padding, scaling)
    cfg = _compose(
        "export",
        {
            "ckpt_path": ckpt,
            "format": "bioimageio",
            "output": tmp_path / "package" / "model.zip",
            "bioimageio.authors": "[Ada Lovelace]",
            "bioimageio.license": "CC-BY-4.0",
            "bioimageio.test": test,
        },
    )
    result = export(cfg)
    assert result == {"format": "bioimageio", "output": str(cfg.output), "tested": test}
    return ckpt, Path(cfg.output)


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_package_is_valid_and_reproduces_its_test_output_offline(
    tmp_path: Path, padding: str, offline: None
) -> None:
    from bioimageio.spec import load_description

    # Export fails unless bioimageio.core's model test passes on the package.
    _, package = _export_package(tmp_path, padding, test=True)

    description = load_description(package, perform_io_checks=True)
    assert description.validation_summary.status in ("valid-format", "passed")
    with zipfile.ZipFile(package) as archive:
        rdf = yaml.safe_load(archive.read("rdf.yaml"))
        assert {"cover.png", "test_input.npy", "test_output.npy", "weights.pt", "weights.onnx"} <= (
            set(archive.namelist())
        )
    assert rdf["license"] == "CC-BY-4.0"
    assert [author["name"] for author in rdf["authors"]] == ["Ada Lovelace"]
    assert "10.1007/978-3-319-24574-4_28" in [entry.get("doi") for entry in rdf["cite"]]
    assert set(rdf["weights"]) == {"torchscript", "onnx"}
    y_in, y_out = rdf["inputs"][0]["axes"][2], rdf["outputs"][0]["axes"][2]
    steps = [p["id"] for p in rdf["inputs"][0]["preprocessing"]]
    assert steps == [
        "ensure_dtype",
        "scale_linear",
        "fixed_zero_mean_unit_variance",
        "ensure_dtype",
    ]
    if padding == "valid":
        # Depth 2: inputs 44 + 4k; 20 pixels lost per side.
        assert y_in["size"] == {"min": 44, "step": 4}
        assert y_out["size"]["offset"] == -40
    else:
        assert y_in["size"] == {"min": 4, "step": 4}
        assert y_out["size"]["offset"] == 0


def test_images_scaled_per_image_are_scaled_so_in_the_package(
    tmp_path: Path, offline: None
) -> None:
    # The model test fails unless the package's preprocessing reproduces training's.
    _, package = _export_package(tmp_path, "same", test=True, scaling="per_image")
    with zipfile.ZipFile(package) as archive:
        rdf = yaml.safe_load(archive.read("rdf.yaml"))
    steps = {p["id"]: p.get("kwargs") for p in rdf["inputs"][0]["preprocessing"]}
    assert "scale_linear" not in steps
    assert (steps["scale_range"]["min_percentile"], steps["scale_range"]["max_percentile"]) == (
        0.5,
        99.5,
    )


@pytest.mark.parametrize("scaling", ["by_dtype", "per_image"])
def test_predict_runs_a_package_like_its_checkpoint(tmp_path: Path, scaling: str) -> None:
    ckpt, package = _export_package(tmp_path, "valid", test=False, scaling=scaling)
    image, _ = generate_nuclei_image(np.random.default_rng(1), 70)
    image = image // 4  # dim: the two scalings give different inputs
    Image.fromarray(image).save(tmp_path / "cells.png")

    masks = []
    for source in ({"ckpt_path": ckpt}, {"package": package}):
        output = tmp_path / next(iter(source))
        cfg = _compose(
            "predict",
            {**source, "input": tmp_path / "cells.png", "output": output, "progress": False},
        )
        predict(cfg)
        masks.append(np.array(Image.open(output / "masks" / "cells.png")))
    assert masks[0].shape == (70, 70)
    np.testing.assert_array_equal(masks[0], masks[1])


def test_predict_refuses_a_checkpoint_and_a_package_together(tmp_path: Path) -> None:
    cfg = _compose(
        "predict",
        {"ckpt_path": "a.ckpt", "package": "b.zip", "input": "x.png", "output": tmp_path},
    )
    with pytest.raises(ValueError, match="not both"):
        predict(cfg)
