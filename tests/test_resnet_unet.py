"""ResNetUNet: encoder registry, sizes, weights read from disk, frozen encoder."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from unetlab.models import ENCODERS, ResNetUNet

SMALL_DECODER = (16, 16, 8, 8, 8)


@functools.lru_cache
def tiny(in_channels: int = 1, num_classes: int = 2) -> ResNetUNet:
    """A ResNet-18 U-Net with a narrow decoder, built once per argument set."""
    torch.manual_seed(0)
    return ResNetUNet(in_channels, num_classes, "resnet18", decoder_channels=SMALL_DECODER)


@pytest.fixture
def resnet18_file(tmp_path: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    """A torchvision ResNet-18 state dict written to disk, standing in for ImageNet weights."""
    torch.manual_seed(1)
    state_dict = torchvision.models.resnet18(weights=None).state_dict()
    path = tmp_path / "resnet18-f37072fd.pth"
    torch.save(state_dict, path)
    return path, state_dict


@pytest.mark.parametrize(
    ("in_channels", "size", "training"),
    [(1, (33, 45), True), (3, (64, 31), False), (2, (17, 40), True)],
)
def test_output_at_input_resolution(
    in_channels: int, size: tuple[int, int], training: bool
) -> None:
    model = tiny(in_channels, num_classes=3).train(training)
    with torch.no_grad():
        out = model(torch.randn(1, in_channels, *size))
    assert out.shape == (1, 3, *size)
    assert model.output_shape(size) == size


def test_encoder_returns_every_stage() -> None:
    with torch.no_grad():
        features = tiny(3).eval().encoder(torch.zeros(1, 3, 64, 64))
    assert tuple(f.shape[1] for f in features) == ENCODERS["resnet18"]["channels"]
    assert [f.shape[-1] for f in features] == [32, 16, 8, 4, 2]


@pytest.mark.parametrize("name", list(ENCODERS))
def test_registry_channels_match_torchvision(name: str) -> None:
    with torch.device("meta"):
        resnet = ENCODERS[name]["builder"]()
    stages = [resnet.conv1, resnet.layer1, resnet.layer2, resnet.layer3, resnet.layer4]
    last_convs = [[m for m in s.modules() if isinstance(m, nn.Conv2d)][-1] for s in stages]
    assert tuple(c.out_channels for c in last_convs) == ENCODERS[name]["channels"]


@pytest.mark.parametrize("name", list(ENCODERS))
def test_registry_file_names_match_torchvision(name: str) -> None:
    weights = torchvision.models.get_model_weights(name).IMAGENET1K_V1
    assert ENCODERS[name]["url"] == weights.url
    assert weights.url.endswith("/" + ENCODERS[name]["weights_file"])


def test_unknown_encoder_lists_the_valid_names() -> None:
    with pytest.raises(ValueError, match="choose one of resnet18, resnet34, resnet50, resnet101"):
        ResNetUNet(encoder="resnet99")


def test_loads_weights_from_a_file(resnet18_file: tuple[Path, dict[str, torch.Tensor]]) -> None:
    path, state_dict = resnet18_file
    model = ResNetUNet(3, 2, "resnet18", "imagenet", str(path), decoder_channels=SMALL_DECODER)
    loaded = model.encoder.state_dict()
    assert set(loaded) == {k for k in state_dict if not k.startswith("fc.")}
    for key, value in loaded.items():
        torch.testing.assert_close(value, state_dict[key], rtol=0, atol=0)


def test_loads_weights_from_the_hub_cache(
    resnet18_file: tuple[Path, dict[str, torch.Tensor]], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, state_dict = resnet18_file
    checkpoints = path.parent / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    path.rename(checkpoints / path.name)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(path.parent / "hub"))
    model = ResNetUNet(3, 2, "resnet18", "imagenet", decoder_channels=SMALL_DECODER)
    torch.testing.assert_close(
        model.encoder.layer4[1].conv2.weight, state_dict["layer4.1.conv2.weight"]
    )


@pytest.mark.parametrize("in_channels", [1, 4])
def test_first_conv_adapts_pretrained_filters(
    in_channels: int, resnet18_file: tuple[Path, dict[str, torch.Tensor]]
) -> None:
    path, state_dict = resnet18_file
    model = ResNetUNet(in_channels, 2, "resnet18", "imagenet", path, decoder_channels=SMALL_DECODER)
    rgb = state_dict["conv1.weight"]
    expected = rgb.mean(1, keepdim=True).repeat(1, in_channels, 1, 1) * 3 / in_channels
    torch.testing.assert_close(model.encoder.conv1.weight, expected)
    if in_channels == 1:
        torch.testing.assert_close(model.encoder.conv1.weight, rgb.sum(1, keepdim=True))
    torch.testing.assert_close(
        model.encoder.layer1[0].conv1.weight, state_dict["layer1.0.conv1.weight"]
    )


def test_missing_weights_file_says_what_to_put_where(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(FileNotFoundError) as error:
        ResNetUNet(encoder="resnet34", encoder_weights="imagenet")
    message = str(error.value)
    assert "\n" not in message
    assert str(tmp_path / "hub" / "checkpoints" / "resnet34-b627a593.pth") in message
    assert "https://download.pytorch.org/models/resnet34-b627a593.pth" in message
    assert "model.weights_path=" in message


def test_bad_weights_arguments(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"missing\.pth"):
        ResNetUNet(
            encoder="resnet18", encoder_weights="imagenet", weights_path=tmp_path / "missing.pth"
        )
    with pytest.raises(ValueError, match=r"set model\.encoder_weights=imagenet"):
        ResNetUNet(encoder="resnet18", weights_path=tmp_path / "w.pth")
    with pytest.raises(ValueError, match="choose imagenet or null"):
        ResNetUNet(encoder="resnet18", encoder_weights="coco")
    torch.save({"weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="not a torchvision resnet18 state dict"):
        ResNetUNet(
            encoder="resnet18", encoder_weights="imagenet", weights_path=tmp_path / "other.pth"
        )


def test_every_parameter_gets_a_gradient() -> None:
    model = tiny(1).train()
    model.zero_grad(set_to_none=True)
    model(torch.randn(2, 1, 32, 30)).square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_frozen_encoder_gets_no_gradient_and_keeps_its_statistics() -> None:
    model = ResNetUNet(1, 2, "resnet18", freeze_encoder=True, decoder_channels=SMALL_DECODER)
    model.train()
    assert not model.encoder.training and model.decoder.training
    before = model.encoder.bn1.running_mean.clone()
    model(torch.randn(2, 1, 32, 32)).square().mean().backward()
    torch.testing.assert_close(model.encoder.bn1.running_mean, before)
    assert all(p.grad is None for p in model.encoder.parameters())
    assert all(p.grad is not None for p in model.decoder.parameters())
    assert isinstance(model.head, nn.Conv2d) and model.head.weight.grad is not None
