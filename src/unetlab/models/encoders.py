"""Registry of torchvision ResNet encoders and loading of their ImageNet weights.

Each entry is a plain dict: ``builder`` (the torchvision constructor), ``channels``
(output channels of the stem and of layer1..layer4), ``weights_file`` (the file name
torchvision uses in the torch hub cache) and ``url`` (where to fetch it). Weights are
only ever read from disk, never downloaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn

_DOWNLOAD_ROOT = "https://download.pytorch.org/models/"

ENCODERS: dict[str, dict[str, Any]] = {
    "resnet18": {
        "builder": torchvision.models.resnet18,
        "channels": (64, 64, 128, 256, 512),
        "weights_file": "resnet18-f37072fd.pth",
    },
    "resnet34": {
        "builder": torchvision.models.resnet34,
        "channels": (64, 64, 128, 256, 512),
        "weights_file": "resnet34-b627a593.pth",
    },
    "resnet50": {
        "builder": torchvision.models.resnet50,
        "channels": (64, 256, 512, 1024, 2048),
        "weights_file": "resnet50-0676ba61.pth",
    },
    "resnet101": {
        "builder": torchvision.models.resnet101,
        "channels": (64, 256, 512, 1024, 2048),
        "weights_file": "resnet101-63fe2227.pth",
    },
}
for _spec in ENCODERS.values():
    _spec["url"] = _DOWNLOAD_ROOT + _spec["weights_file"]

ENCODER_WEIGHTS = ("imagenet",)


def encoder_spec(name: str) -> dict[str, Any]:
    """The registry entry for encoder ``name``.

    Raises:
        ValueError: For an unknown name; the message lists the valid ones.
    """
    if name not in ENCODERS:
        raise ValueError(
            f"model.encoder={name!r} is not supported; choose one of {', '.join(ENCODERS)}"
        )
    return ENCODERS[name]


def imagenet_weights_file(name: str, weights_path: str | Path | None = None) -> Path:
    """Where the ImageNet weights of encoder ``name`` are read from.

    Args:
        name: Encoder name.
        weights_path: Explicit file; default ``<torch.hub.get_dir()>/checkpoints/<weights_file>``.

    Raises:
        FileNotFoundError: When the file is absent; the message says what to put where.
    """
    spec = encoder_spec(name)
    path = Path(
        weights_path
        if weights_path is not None
        else Path(torch.hub.get_dir()) / "checkpoints" / spec["weights_file"]
    ).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"ImageNet weights for {name} not found at {path}; download {spec['url']} "
            f"and save it there, or set model.weights_path=/path/to/{spec['weights_file']}"
        )
    return path


def adapt_first_conv(conv: nn.Conv2d, in_channels: int, pretrained: bool) -> nn.Conv2d:
    """A copy of ``conv`` (RGB input) that takes ``in_channels`` channels.

    With pretrained weights, the filters are averaged over RGB, repeated for every new
    channel and scaled by ``3 / in_channels``, so an image repeated across the new
    channels gives the response the RGB filters give to that image in gray; for one
    channel this is the sum of the RGB filters. (segmentation_models_pytorch uses the
    same sum for one channel but cycles the RGB filters for more.) Without pretrained
    weights the new convolution is freshly initialized.

    Args:
        conv: The first convolution of the ResNet.
        in_channels: Wanted number of input channels.
        pretrained: Whether ``conv`` holds pretrained weights to carry over.
    """
    new_conv = nn.Conv2d(
        in_channels,
        conv.out_channels,
        kernel_size=conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        bias=conv.bias is not None,
    )
    if pretrained:
        with torch.no_grad():
            mean = conv.weight.mean(dim=1, keepdim=True)
            new_conv.weight.copy_(mean.repeat(1, in_channels, 1, 1) * (3 / in_channels))
            if conv.bias is not None:
                new_conv.bias.copy_(conv.bias)
    return new_conv


def build_resnet(
    name: str,
    in_channels: int = 3,
    encoder_weights: str | None = None,
    weights_path: str | Path | None = None,
) -> torchvision.models.ResNet:
    """A torchvision ResNet, optionally with ImageNet weights read from disk.

    Args:
        name: Encoder name (a key of :data:`ENCODERS`).
        in_channels: Input channels; other than 3 adapts the first convolution.
        encoder_weights: ``imagenet`` or None (random initialization).
        weights_path: File with the ImageNet state dict; default the torch hub cache.

    Raises:
        FileNotFoundError: When ImageNet weights are asked for and the file is absent.
    """
    spec = encoder_spec(name)
    if encoder_weights is not None and encoder_weights not in ENCODER_WEIGHTS:
        raise ValueError(
            f"encoder_weights={encoder_weights!r} is not supported; choose imagenet or null"
        )
    if encoder_weights is None and weights_path is not None:
        raise ValueError(
            f"weights_path={weights_path} is set but encoder_weights is null; "
            "set model.encoder_weights=imagenet to load it"
        )
    resnet = spec["builder"](weights=None)
    if encoder_weights == "imagenet":
        path = imagenet_weights_file(name, weights_path)
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
        try:
            resnet.load_state_dict(state_dict)
        except RuntimeError as error:
            detail = " ".join(str(error).split())[:300]
            raise ValueError(f"{path}: not a torchvision {name} state dict: {detail}") from None
    if in_channels != 3:
        resnet.conv1 = adapt_first_conv(resnet.conv1, in_channels, encoder_weights is not None)
    return resnet
