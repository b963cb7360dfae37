"""U-Net with a torchvision ResNet encoder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torchvision
from torch import nn

from unetlab.models.base import SegmentationNet, checkpointed
from unetlab.models.blocks import PointwiseConv2d, Up, center_crop, pad_to_multiple
from unetlab.models.encoders import build_resnet, encoder_spec


class ResNetEncoder(nn.Module):
    """The stem and four stages of a torchvision ResNet, returning every stage's output.

    Parameter names match torchvision's (``conv1``, ``bn1``, ``layer1`` ...), without ``fc``.

    Args:
        resnet: The torchvision ResNet to take the layers from.
    """

    def __init__(self, resnet: torchvision.models.ResNet) -> None:
        super().__init__()
        self.conv1 = resnet.conv1
        self.bn1 = resnet.bn1
        self.relu = resnet.relu
        self.maxpool = resnet.maxpool
        self.layer1 = resnet.layer1
        self.layer2 = resnet.layer2
        self.layer3 = resnet.layer3
        self.layer4 = resnet.layer4

    def forward(self, x: torch.Tensor, checkpointing: bool = False) -> list[torch.Tensor]:
        """Features at strides 2 (stem), 4, 8, 16 and 32 (layer1..layer4).

        Args:
            x: Images (N, C, H, W).
            checkpointing: Run layer1..layer4 through :func:`checkpointed`.
        """
        stem = self.relu(self.bn1(self.conv1(x)))
        if checkpointing and not torch.jit.is_scripting():
            stage1 = checkpointed(self.layer1, self.maxpool(stem))
            stage2 = checkpointed(self.layer2, stage1)
            stage3 = checkpointed(self.layer3, stage2)
            stage4 = checkpointed(self.layer4, stage3)
        else:
            stage1 = self.layer1(self.maxpool(stem))
            stage2 = self.layer2(stage1)
            stage3 = self.layer3(stage2)
            stage4 = self.layer4(stage3)
        return [stem, stage1, stage2, stage3, stage4]


class ResNetUNet(SegmentationNet):
    """U-Net decoder on a torchvision ResNet encoder, output at input resolution.

    Skips come from the stem (stride 2) and layer1..layer3; layer4 (stride 32) is the
    bottleneck. Five :class:`Up` blocks (2x2 up-convolution, concat, DoubleConv) bring
    the features back to full resolution, the last one without a skip. The input is
    zero-padded to a multiple of 32 and the logits cropped back, so any size works.

    Args:
        in_channels: Input image channels; other than 3 adapts the first convolution
            (see :func:`unetlab.models.encoders.adapt_first_conv`).
        num_classes: Output channels (logits).
        encoder: ``resnet18``, ``resnet34``, ``resnet50`` or ``resnet101``.
        encoder_weights: ``imagenet`` or None (random initialization).
        weights_path: File with the ImageNet weights; default the torch hub cache
            (``<torch.hub.get_dir()>/checkpoints/<torchvision file name>``). Never downloaded.
        freeze_encoder: Exclude the encoder from training: no gradients, and its batch
            norms stay in eval mode (running statistics frozen).
        decoder_channels: Output channels of the five decoder blocks, coarse to fine.
        checkpointing: Activation checkpointing of layer1..layer4 and every decoder block
            in training (see :class:`~unetlab.models.base.SegmentationNet`, as for the
            next two).
        channels_last: Channels-last memory format.
        compile: ``torch.compile`` the forward for training.
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 2,
        encoder: str = "resnet34",
        encoder_weights: str | None = None,
        weights_path: str | Path | None = None,
        freeze_encoder: bool = False,
        decoder_channels: Sequence[int] = (256, 128, 64, 32, 16),
        checkpointing: bool = False,
        channels_last: bool = False,
        compile: bool = False,
    ) -> None:
        super().__init__(checkpointing, channels_last, compile)
        self.padding = "same"
        self.size_multiple = 32
        encoder_channels = encoder_spec(encoder)["channels"]
        decoder_channels = tuple(decoder_channels)
        if len(decoder_channels) != len(encoder_channels):
            raise ValueError(
                f"decoder_channels={list(decoder_channels)} must have "
                f"{len(encoder_channels)} entries, one per upsampling"
            )
        self.encoder = ResNetEncoder(
            build_resnet(encoder, in_channels, encoder_weights, weights_path)
        )
        self.freeze_encoder = freeze_encoder
        if freeze_encoder:
            self.encoder.requires_grad_(False)
            self.encoder.eval()
        inputs = (encoder_channels[-1], *decoder_channels[:-1])
        skips = (*encoder_channels[-2::-1], 0)
        self.decoder = nn.ModuleList(
            Up(in_ch, skip_ch, out_ch)
            for in_ch, skip_ch, out_ch in zip(inputs, skips, decoder_channels, strict=True)
        )
        self.head = PointwiseConv2d(decoder_channels[-1], num_classes)

    def train(self, mode: bool = True) -> ResNetUNet:
        """Set training mode, keeping a frozen encoder in eval mode."""
        super().train(mode)
        if self.freeze_encoder:
            self.encoder.eval()
        return self

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Spatial output shape for a spatial input shape (the same)."""
        return tuple(input_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, num_classes, H, W) for images (N, in_channels, H, W)."""
        input_shape = x.shape[2:]
        x = self.to_memory_format(pad_to_multiple(x, self.size_multiple))
        features = self.encoder(x, self.checkpointing and self.training)
        x = features[-1]
        for index, up in enumerate(self.decoder):
            skip_index = len(features) - 2 - index
            skip = features[skip_index] if skip_index >= 0 else None
            if self.checkpointing and self.training and not torch.jit.is_scripting():
                x = checkpointed(up, x, skip)
            else:
                x = up(x, skip)
        return center_crop(self.head(x), input_shape)
