"""Attention U-Net (Oktay et al. 2018): a U-Net whose skips pass through attention gates."""

from __future__ import annotations

from torch import nn

from unetlab.models.blocks import AttentionGate
from unetlab.models.unet import UNet


class AttentionUNet(UNet):
    """:class:`UNet` with an :class:`AttentionGate` on every skip connection.

    Takes exactly the keywords of :class:`UNet` (2-D and 3-D, same or valid padding).
    Each gate weights the skip feature per pixel using the upsampled decoder feature
    of the same level as gating signal; its intermediate width is half the skip's.
    """

    def skip_gate(self, skip_channels: int, gating_channels: int, spatial_dims: int) -> nn.Module:
        """An attention gate for a skip of ``skip_channels`` channels.

        Args:
            skip_channels: Channels of the skip feature.
            gating_channels: Channels of the upsampled decoder feature.
            spatial_dims: 2 or 3.
        """
        return AttentionGate(
            skip_channels, gating_channels, max(skip_channels // 2, 1), spatial_dims
        )
