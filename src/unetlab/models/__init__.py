"""U-Net variants for segmentation: plain, ResNet-encoder, attention-gated and nested."""

from __future__ import annotations

from unetlab.models.attention_unet import AttentionUNet
from unetlab.models.base import SegmentationNet
from unetlab.models.encoders import ENCODERS
from unetlab.models.resnet_unet import ResNetUNet
from unetlab.models.size_planner import (
    input_size_for_output,
    is_valid_input_size,
    nearest_valid_input_sizes,
    valid_input_sizes,
    valid_output_size,
)
from unetlab.models.unet import UNet
from unetlab.models.unet_plusplus import UNetPlusPlus

__all__ = [
    "ENCODERS",
    "AttentionUNet",
    "ResNetUNet",
    "SegmentationNet",
    "UNet",
    "UNetPlusPlus",
    "input_size_for_output",
    "is_valid_input_size",
    "nearest_valid_input_sizes",
    "valid_input_sizes",
    "valid_output_size",
]
