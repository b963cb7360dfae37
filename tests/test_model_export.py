"""Every variant exports to ONNX (same output under onnxruntime) and to TorchScript."""

from __future__ import annotations

import functools
import io
from pathlib import Path

import pytest
import torch
from torch import nn

from unetlab.models import AttentionUNet, ResNetUNet, UNet, UNetPlusPlus

pytestmark = [
    pytest.mark.export,
    pytest.mark.filterwarnings("ignore:`torch.jit.*` is deprecated:FutureWarning"),
    pytest.mark.filterwarnings("ignore:You are using the legacy TorchScript-based ONNX export"),
    pytest.mark.filterwarnings("ignore:The feature will be removed"),
    # Instance norm always normalizes with the input's statistics, as exported, and its
    # channel-count check is a constant in the trace.
    pytest.mark.filterwarnings("ignore:ONNX export mode is set to TrainingMode.EVAL"),
    pytest.mark.filterwarnings(r"ignore::torch.jit.TracerWarning:torch\.nn\."),
]

BUILDERS = {
    "unet": lambda: UNet(1, 2, base_channels=4, depth=2),
    "unet_valid": lambda: UNet(
        1, 3, base_channels=4, depth=2, padding="valid", norm="none", upsample="bilinear"
    ),
    "attention_unet": lambda: AttentionUNet(3, 2, base_channels=4, depth=2, norm="instance"),
    "unet_plusplus": lambda: UNetPlusPlus(1, 2, base_channels=4, depth=2, deep_supervision=True),
    "resnet_unet": lambda: ResNetUNet(1, 2, "resnet18", decoder_channels=(16, 16, 8, 8, 8)),
    "unet_3d": lambda: UNet(1, 2, base_channels=2, depth=2, spatial_dims=3),
}
INPUT_SHAPES = {
    "unet_valid": (1, 1, 44, 52),
    "attention_unet": (1, 3, 37, 29),
    "unet_3d": (1, 1, 9, 10, 11),
}


@functools.lru_cache
def exported_model(name: str) -> nn.Module:
    """Variant ``name`` in eval mode, with trained-looking batch-norm statistics."""
    torch.manual_seed(0)
    model = BUILDERS[name]()
    with torch.no_grad():
        model.train()(torch.randn(2, *input_shape(name)[1:]))
    return model.eval()


def input_shape(name: str) -> tuple[int, ...]:
    return INPUT_SHAPES.get(name, (1, 1, 33, 47))


@pytest.mark.parametrize("name", list(BUILDERS))
def test_onnx_matches_pytorch(name: str, tmp_path: Path) -> None:
    onnxruntime = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    model = exported_model(name)
    x = torch.randn(input_shape(name))
    path = tmp_path / f"{name}.onnx"
    # The TorchScript-based exporter: seconds faster per model than dynamo=True, same parity.
    torch.onnx.export(
        model, (x,), path, input_names=["image"], output_names=["logits"], dynamo=False
    )
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    (onnx_logits,) = session.run(None, {"image": x.numpy()})
    with torch.no_grad():
        expected = model(x)
    assert onnx_logits.shape == tuple(expected.shape)
    assert abs(torch.from_numpy(onnx_logits) - expected).max() <= 1e-4


@pytest.mark.parametrize("name", list(BUILDERS))
def test_torchscript_round_trip(name: str) -> None:
    model = exported_model(name)
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(model), buffer)
    buffer.seek(0)
    loaded = torch.jit.load(buffer)
    x = torch.randn(input_shape(name))
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))


def test_scripted_unet_accepts_other_sizes() -> None:
    scripted = torch.jit.script(exported_model("unet"))
    with torch.no_grad():
        assert scripted(torch.randn(2, 1, 21, 30)).shape == (2, 2, 21, 30)


def test_traced_unet_matches() -> None:
    model = exported_model("unet")
    x = torch.randn(input_shape("unet"))
    traced = torch.jit.trace(model, x)
    with torch.no_grad():
        torch.testing.assert_close(traced(x), model(x))
