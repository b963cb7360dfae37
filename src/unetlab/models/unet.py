"""U-Net (Ronneberger et al. 2015) and its 3-D form (Çiçek et al. 2016)."""

from __future__ import annotations

import torch
from torch import nn

from unetlab.models.base import SegmentationNet, checkpointed
from unetlab.models.blocks import (
    PADDINGS,
    DoubleConv,
    Down,
    Up,
    center_crop,
    check_choice,
    pad_to_multiple,
    pointwise_conv,
)
from unetlab.models.size_planner import valid_output_size


class UNet(SegmentationNet):
    """U-Net with a configurable padding, normalization and upsampling.

    ``padding="valid"``, ``base_channels=64``, ``depth=4``, ``norm="none"`` is the
    paper's network (31,030,658 parameters for 1 input channel and 2 classes; 572 ->
    388 pixels). ``padding="same"`` pads every convolution and pads the input to a
    multiple of ``2**depth`` (zeros, split evenly) and crops the logits back, so any
    input size works and the output has the input's size.

    Args:
        in_channels: Input image channels.
        num_classes: Output channels (logits).
        base_channels: Channels of the first level; doubled at every level.
        depth: Number of poolings.
        padding: ``same`` or ``valid`` (unpadded convolutions, crop-and-concat skips).
        norm: ``batch``, ``instance``, ``group`` or ``none``.
        norm_order: ``conv_norm_act`` or ``conv_act_norm`` (conv -> ReLU -> norm).
        upsample: ``transposed2x2``, ``transposed3x3`` or ``bilinear``.
        dropout: Dropout probability at the end of the contracting path.
        bottleneck_dilation: Dilation of the two bottleneck convolutions.
        spatial_dims: 2 for images, 3 for volumes.
        checkpointing: Activation checkpointing of every block in training
            (see :class:`~unetlab.models.base.SegmentationNet`, as for the next two).
        channels_last: Channels-last memory format.
        compile: ``torch.compile`` the forward for training.
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 2,
        base_channels: int = 64,
        depth: int = 4,
        padding: str = "same",
        norm: str = "batch",
        norm_order: str = "conv_norm_act",
        upsample: str = "transposed2x2",
        dropout: float = 0.0,
        bottleneck_dilation: int = 1,
        spatial_dims: int = 2,
        checkpointing: bool = False,
        channels_last: bool = False,
        compile: bool = False,
    ) -> None:
        super().__init__(checkpointing, channels_last, compile)
        check_choice("padding", padding, PADDINGS)
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self.padding = padding
        self.depth = depth
        self.size_multiple = 2**depth
        self.bottleneck_dilation = bottleneck_dilation
        channels = [base_channels * 2**level for level in range(depth + 1)]
        options = {"padding": padding, "norm": norm, "norm_order": norm_order}
        self.stem = DoubleConv(in_channels, channels[0], spatial_dims, **options)
        self.downs = nn.ModuleList(
            Down(
                channels[level],
                channels[level + 1],
                spatial_dims,
                dilation=bottleneck_dilation if level == depth - 1 else 1,
                **options,
            )
            for level in range(depth)
        )
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.ups = nn.ModuleList(
            Up(
                channels[level + 1],
                channels[level],
                channels[level],
                spatial_dims,
                upsample,
                gate=self.skip_gate(channels[level], channels[level + 1] // 2, spatial_dims),
                **options,
            )
            for level in reversed(range(depth))
        )
        self.head = pointwise_conv(spatial_dims, channels[0], num_classes)

    def skip_gate(
        self, skip_channels: int, gating_channels: int, spatial_dims: int
    ) -> nn.Module | None:
        """The module ``(skip, gating) -> skip`` on each skip; none for the plain U-Net.

        Args:
            skip_channels: Channels of the skip feature.
            gating_channels: Channels of the upsampled decoder feature.
            spatial_dims: 2 or 3.
        """
        return None

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Spatial output shape for a spatial input shape.

        Raises:
            ValueError: For a valid-padding model and a size it does not accept.
        """
        if self.padding == "same":
            return tuple(input_shape)
        return tuple(
            valid_output_size(size, self.depth, self.bottleneck_dilation) for size in input_shape
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, num_classes, *spatial_out) for images (N, in_channels, *spatial)."""
        input_shape = x.shape[2:]
        if self.padding == "same":
            x = pad_to_multiple(x, self.size_multiple)
        elif not torch.jit.is_scripting() and not torch.jit.is_tracing():
            self.output_shape(tuple(input_shape))
        x = self.to_memory_format(x)
        skips: list[torch.Tensor] = []
        if self.checkpointing and self.training and not torch.jit.is_scripting():
            x = checkpointed(self.stem, x)
        else:
            x = self.stem(x)
        for down in self.downs:
            skips.append(x)
            if self.checkpointing and self.training and not torch.jit.is_scripting():
                x = checkpointed(down, x)
            else:
                x = down(x)
        x = self.dropout(x)
        for index, up in enumerate(self.ups):
            if self.checkpointing and self.training and not torch.jit.is_scripting():
                x = checkpointed(up, x, skips[-1 - index])
            else:
                x = up(x, skips[-1 - index])
        logits = self.head(x)
        if self.padding == "same":
            logits = center_crop(logits, input_shape)
        return logits
