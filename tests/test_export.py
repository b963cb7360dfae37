"""`unetlab-export`: ONNX and TorchScript files that give PyTorch's logits."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from tests.test_predict_cli import write_checkpoint
from unetlab.config_location import CONFIG_DIR
from unetlab.export.command import export
from unetlab.export.formats import METADATA_KEY
from unetlab.models import is_valid_input_size

pytestmark = [
    pytest.mark.export,
    pytest.mark.filterwarnings("ignore:`torch.jit.*` is deprecated:FutureWarning"),
]


@pytest.fixture
def export_config() -> Callable[..., DictConfig]:
    """Compose ``export.yaml`` with ``key=value`` overrides."""

    def _make(**overrides: Any) -> DictConfig:
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            return compose("export", overrides=[f"{k}={v}" for k, v in overrides.items()])

    yield _make
    GlobalHydra.instance().clear()


def test_onnx_export_beside_the_checkpoint_with_parity_and_metadata(
    tmp_path: Path, export_config: Callable[..., DictConfig], capsys: pytest.CaptureFixture
) -> None:
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    ckpt = write_checkpoint(tmp_path / "tiny.ckpt")
    result = export(export_config(ckpt_path=ckpt, format="onnx", input_size=64))
    assert result["output"] == str(tmp_path / "tiny.onnx")
    assert result["max_abs_diff"] <= 1e-4
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("parity onnxruntime vs PyTorch: max abs diff")
    assert "(1, 1, 49, 49)" in lines[0] and "(2, 1, 64, 64)" in lines[1]
    metadata = {p.key: p.value for p in onnx.load(result["output"]).metadata_props}
    stored = json.loads(metadata[METADATA_KEY])
    assert stored["class_names"] == ["class_0", "class_1", "class_2"]
    assert stored["mean"] == [0.5] and stored["model"]["num_classes"] == 3


def test_valid_padding_network_exports_at_valid_sizes(
    tmp_path: Path, export_config: Callable[..., DictConfig], capsys: pytest.CaptureFixture
) -> None:
    pytest.importorskip("onnxruntime")
    ckpt = write_checkpoint(tmp_path / "valid.ckpt", padding="valid", norm="none")
    result = export(export_config(ckpt_path=ckpt, format="onnx", input_size="[50,70]"))
    assert result["max_abs_diff"] <= 1e-4
    shapes = re.findall(r"on input \((\d+), 1, (\d+), (\d+)\)", capsys.readouterr().out)
    assert len(shapes) == 2
    assert all(is_valid_input_size(int(size), 2) for shape in shapes for size in shape[1:])


def test_torchscript_export_runs_at_other_sizes(
    tmp_path: Path, export_config: Callable[..., DictConfig]
) -> None:
    ckpt = write_checkpoint(tmp_path / "tiny.ckpt")
    output = tmp_path / "exported" / "model.pt"
    result = export(
        export_config(ckpt_path=ckpt, format="torchscript", output=output, input_size=48)
    )
    assert result["output"] == str(output) and result["max_abs_diff"] <= 1e-4
    files = {f"{METADATA_KEY}.json": ""}
    scripted = torch.jit.load(str(output), _extra_files=files)
    assert json.loads(files[f"{METADATA_KEY}.json"])["std"] == [0.25]
    with torch.no_grad():
        assert scripted(torch.randn(3, 1, 21, 30)).shape == (3, 3, 21, 30)


def test_unknown_format_lists_the_choices(
    tmp_path: Path, export_config: Callable[..., DictConfig]
) -> None:
    ckpt = write_checkpoint(tmp_path / "tiny.ckpt")
    with pytest.raises(
        ValueError, match="format=tflite is not supported; choose one of onnx, torchscript"
    ):
        export(export_config(ckpt_path=ckpt, format="tflite"))


def test_export_command_prints_the_parity_check(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    ckpt = write_checkpoint(tmp_path / "tiny.ckpt")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "unetlab.export",
            f"ckpt_path={ckpt}",
            "format=onnx",
            "input_size=32",
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert sum(line.startswith("parity onnxruntime vs PyTorch") for line in lines) == 2
    assert re.fullmatch(
        rf"RESULT format=onnx output={tmp_path}/tiny\.onnx max_abs_diff=\S+", lines[-1]
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.ckpt", "tiny.onnx"]
