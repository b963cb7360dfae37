"""UNet++ (Zhou et al. 2018): a U-Net whose skips are nested, densely connected decoders."""

from __future__ import annotations

import torch
from torch import nn

from unetlab.models.base import SegmentationNet, checkpointed
from unetlab.models.blocks import DoubleConv, Down, Up, center_crop, pad_to_multiple, pointwise_conv


class UNetPlusPlus(SegmentationNet):
    """UNet++ with same padding and optional deep supervision.

    Node ``X[i][j]`` (level ``i``, column ``j >= 1``) upsamples ``X[i + 1][j - 1]`` and
    concatenates it with all of ``X[i][0..j-1]`` before a :class:`DoubleConv`; column 0 is
    the U-Net encoder. The input is zero-padded to a multiple of ``2**depth`` and the
    logits cropped back, so any input size works.

    With ``deep_supervision=True``, ``forward`` in training mode returns a list of
    ``depth`` logit maps, one per top-level node ``X[0][1..depth]``, all at input
    resolution, the final one last; in eval mode it returns only the final logits, so
    inference and export see a plain tensor.

    Args:
        in_channels: Input image channels.
        num_classes: Output channels (logits).
        base_channels: Channels of the first level; doubled at every level.
        depth: Number of poolings.
        norm: ``batch``, ``instance``, ``group`` or ``none``.
        deep_supervision: Add a 1x1 head on every top-level node (see above).
        spatial_dims: 2 for images, 3 for volumes.
        checkpointing: Activation checkpointing of every node in training
            (see :class:`~unetlab.models.base.SegmentationNet`, as for the next two).
        channels_last: Channels-last memory format.
        compile: ``torch.compile`` the forward for training.
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 2,
        base_channels: int = 32,
        depth: int = 4,
        norm: str = "batch",
        deep_supervision: bool = False,
        spatial_dims: int = 2,
        checkpointing: bool = False,
        channels_last: bool = False,
        compile: bool = False,
    ) -> None:
        super().__init__(checkpointing, channels_last, compile)
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self.padding = "same"
        self.depth = depth
        self.size_multiple = 2**depth
        self.deep_supervision = deep_supervision
        channels = [base_channels * 2**level for level in range(depth + 1)]
        self.stem = DoubleConv(in_channels, channels[0], spatial_dims, norm=norm)
        self.downs = nn.ModuleList(
            Down(channels[level], channels[level + 1], spatial_dims, norm=norm)
            for level in range(depth)
        )
        # Column by column, top level first: every node's inputs already exist.
        positions = [
            (level, column) for column in range(1, depth + 1) for level in range(depth + 1 - column)
        ]
        self.node_levels = [level for level, _ in positions]
        self.nodes = nn.ModuleList(
            Up(
                channels[level + 1],
                column * channels[level],
                channels[level],
                spatial_dims,
                norm=norm,
            )
            for level, column in positions
        )
        self.head = pointwise_conv(spatial_dims, channels[0], num_classes)
        self.aux_heads = nn.ModuleList(
            pointwise_conv(spatial_dims, channels[0], num_classes)
            for _ in range(depth - 1 if deep_supervision else 0)
        )

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Spatial output shape for a spatial input shape (the same)."""
        return tuple(input_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        """Logits (N, num_classes, *spatial) for images (N, in_channels, *spatial).

        A list of logits (final last) in training mode with deep supervision.
        """
        input_shape = x.shape[2:]
        x = self.to_memory_format(pad_to_multiple(x, self.size_multiple))
        if self.checkpointing and self.training and not torch.jit.is_scripting():
            x = checkpointed(self.stem, x)
        else:
            x = self.stem(x)
        grid: list[list[torch.Tensor]] = [[x]]
        for down in self.downs:
            if self.checkpointing and self.training and not torch.jit.is_scripting():
                x = checkpointed(down, x)
            else:
                x = down(x)
            grid.append([x])
        for index, node in enumerate(self.nodes):
            level = self.node_levels[index]
            skips = torch.cat(grid[level], dim=1)
            if self.checkpointing and self.training and not torch.jit.is_scripting():
                x = checkpointed(node, grid[level + 1][-1], skips)
            else:
                x = node(grid[level + 1][-1], skips)
            grid[level].append(x)
        logits = center_crop(self.head(grid[0][-1]), input_shape)
        if self.deep_supervision and self.training:
            outputs = [
                center_crop(head(grid[0][index + 1]), input_shape)
                for index, head in enumerate(self.aux_heads)
            ]
            outputs.append(logits)
            return outputs
        return logits
