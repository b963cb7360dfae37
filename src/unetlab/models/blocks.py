"""Building blocks shared by the U-Net variants, for 2-D and 3-D images alike.

Every block takes ``spatial_dims`` (2 or 3) and picks the matching convolution,
pooling and normalization layers, so one network class serves both image kinds.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

NORMS = ("batch", "instance", "group", "none")
NORM_ORDERS = ("conv_norm_act", "conv_act_norm")
UPSAMPLERS = ("transposed2x2", "transposed3x3", "bilinear")
PADDINGS = ("valid", "same")

_CONV = {2: nn.Conv2d, 3: nn.Conv3d}
_CONV_TRANSPOSE = {2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
_MAX_POOL = {2: nn.MaxPool2d, 3: nn.MaxPool3d}
_BATCH_NORM = {2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
_INSTANCE_NORM = {2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d}
_INTERPOLATION = {2: "bilinear", 3: "trilinear"}


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    """Raise a ValueError listing ``choices`` when ``value`` is not one of them.

    Args:
        name: Config key, used in the message (e.g. ``"model.norm"``).
        value: The given value.
        choices: The accepted values.
    """
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not supported; choose one of {', '.join(choices)}")


def _check_dims(spatial_dims: int) -> None:
    if spatial_dims not in _CONV:
        raise ValueError(f"spatial_dims={spatial_dims} is not supported; choose 2 or 3")


def conv_layer(spatial_dims: int) -> type[nn.Module]:
    """The convolution class for ``spatial_dims`` (``nn.Conv2d`` or ``nn.Conv3d``)."""
    _check_dims(spatial_dims)
    return _CONV[spatial_dims]


def _pointwise_forward(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor:
    if torch.jit.is_tracing():
        # A traced matrix product would freeze the spatial size; the convolution does not.
        if weight.dim() == 4:
            return F.conv2d(x, weight, bias)
        return F.conv3d(x, weight, bias)
    matrix = weight.flatten(1).expand(x.shape[0], -1, -1)
    if bias is None:
        out = torch.bmm(matrix, x.flatten(2))
    else:
        out = torch.baddbmm(bias.view(1, -1, 1), matrix, x.flatten(2))
    return out.unflatten(2, x.shape[2:])


class PointwiseConv2d(nn.Conv2d):
    """A 1x1 convolution computed as one batched matrix product.

    The parameters of ``nn.Conv2d(in_channels, out_channels, kernel_size=1)``. On CPU,
    PyTorch runs a 1x1 convolution through oneDNN whenever it uses more than one thread,
    which for few output channels (a 16 -> 2 head at full resolution) is many times slower
    than this product, forward and backward.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        bias: Add a learnable bias.
    """

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True) -> None:
        super().__init__(in_channels, out_channels, kernel_size=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _pointwise_forward(x, self.weight, self.bias)


class PointwiseConv3d(nn.Conv3d):
    """The 3-D :class:`PointwiseConv2d`.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        bias: Add a learnable bias.
    """

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True) -> None:
        super().__init__(in_channels, out_channels, kernel_size=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _pointwise_forward(x, self.weight, self.bias)


_POINTWISE = {2: PointwiseConv2d, 3: PointwiseConv3d}


def pointwise_conv(
    spatial_dims: int, in_channels: int, out_channels: int, bias: bool = True
) -> nn.Module:
    """A 1x1 convolution (:class:`PointwiseConv2d` or :class:`PointwiseConv3d`).

    Args:
        spatial_dims: 2 or 3.
        in_channels: Input channels.
        out_channels: Output channels.
        bias: Add a learnable bias.
    """
    _check_dims(spatial_dims)
    return _POINTWISE[spatial_dims](in_channels, out_channels, bias=bias)


def norm_layer(norm: str, channels: int, spatial_dims: int) -> nn.Module:
    """A normalization layer over ``channels`` feature maps.

    ``group`` uses ``gcd(32, channels)`` groups (32 groups as in Wu & He 2018 where the
    channels allow it); ``instance`` has learnable affine parameters.

    Args:
        norm: One of ``batch``, ``instance``, ``group``, ``none``.
        channels: Number of channels to normalize.
        spatial_dims: 2 or 3.
    """
    check_choice("norm", norm, NORMS)
    _check_dims(spatial_dims)
    if norm == "batch":
        return _BATCH_NORM[spatial_dims](channels)
    if norm == "instance":
        return _INSTANCE_NORM[spatial_dims](channels, affine=True)
    if norm == "group":
        return nn.GroupNorm(math.gcd(32, channels), channels)
    return nn.Identity()


class ConvBlock(nn.Sequential):
    """One 3x3 convolution with normalization and ReLU, in either order.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        spatial_dims: 2 or 3.
        padding: ``same`` pads by the dilation (size kept); ``valid`` does not pad.
        norm: One of ``batch``, ``instance``, ``group``, ``none``.
        norm_order: ``conv_norm_act`` or ``conv_act_norm`` (conv -> ReLU -> norm).
        dilation: Convolution dilation.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        spatial_dims: int = 2,
        padding: str = "same",
        norm: str = "batch",
        norm_order: str = "conv_norm_act",
        dilation: int = 1,
    ) -> None:
        check_choice("padding", padding, PADDINGS)
        check_choice("norm_order", norm_order, NORM_ORDERS)
        # A bias right before a normalization layer is redundant.
        bias = norm == "none" or norm_order == "conv_act_norm"
        conv = conv_layer(spatial_dims)(
            in_channels,
            out_channels,
            kernel_size=3,
            padding=dilation if padding == "same" else 0,
            dilation=dilation,
            bias=bias,
        )
        normalization = norm_layer(norm, out_channels, spatial_dims)
        activation = nn.ReLU(inplace=True)
        if norm_order == "conv_norm_act":
            super().__init__(conv, normalization, activation)
        else:
            super().__init__(conv, activation, normalization)


class DoubleConv(nn.Sequential):
    """Two :class:`ConvBlock` s, the unit of every U-Net level.

    Args:
        in_channels: Input channels.
        out_channels: Output channels of both convolutions.
        spatial_dims: 2 or 3.
        padding: ``same`` or ``valid``.
        norm: One of ``batch``, ``instance``, ``group``, ``none``.
        norm_order: ``conv_norm_act`` or ``conv_act_norm``.
        dilation: Dilation of both convolutions.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        spatial_dims: int = 2,
        padding: str = "same",
        norm: str = "batch",
        norm_order: str = "conv_norm_act",
        dilation: int = 1,
    ) -> None:
        options = {
            "spatial_dims": spatial_dims,
            "padding": padding,
            "norm": norm,
            "norm_order": norm_order,
            "dilation": dilation,
        }
        super().__init__(
            ConvBlock(in_channels, out_channels, **options),
            ConvBlock(out_channels, out_channels, **options),
        )


class Down(nn.Sequential):
    """2x max-pooling followed by a :class:`DoubleConv`.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        spatial_dims: 2 or 3.
        **conv_options: ``padding``, ``norm``, ``norm_order``, ``dilation`` for the DoubleConv.
    """

    def __init__(
        self, in_channels: int, out_channels: int, spatial_dims: int = 2, **conv_options: object
    ) -> None:
        _check_dims(spatial_dims)
        super().__init__(
            _MAX_POOL[spatial_dims](kernel_size=2, stride=2),
            DoubleConv(in_channels, out_channels, spatial_dims, **conv_options),
        )


def make_upsampler(kind: str, in_channels: int, spatial_dims: int = 2) -> nn.Module:
    """A 2x upsampling layer that halves the channels.

    Args:
        kind: ``transposed2x2`` (the paper's 2x2 up-convolution), ``transposed3x3``
            (3x3 transposed convolution, stride 2, padding 1, output padding 1) or
            ``bilinear`` ((tri)linear interpolation followed by a 1x1 convolution).
        in_channels: Input channels; the output has ``in_channels // 2``.
        spatial_dims: 2 or 3.
    """
    check_choice("upsample", kind, UPSAMPLERS)
    _check_dims(spatial_dims)
    out_channels = in_channels // 2
    if kind == "transposed2x2":
        return _CONV_TRANSPOSE[spatial_dims](in_channels, out_channels, kernel_size=2, stride=2)
    if kind == "transposed3x3":
        return _CONV_TRANSPOSE[spatial_dims](
            in_channels, out_channels, kernel_size=3, stride=2, padding=1, output_padding=1
        )
    return nn.Sequential(
        nn.Upsample(scale_factor=2.0, mode=_INTERPOLATION[spatial_dims], align_corners=False),
        pointwise_conv(spatial_dims, in_channels, out_channels),
    )


def center_crop(x: torch.Tensor, spatial_shape: list[int]) -> torch.Tensor:
    """Crop the trailing axes of ``x`` to ``spatial_shape``, centred.

    The one centre crop of the project: skips in valid-padding decoders, logits of padded
    inputs, and targets and weight maps cropped to a valid-padding network's output.

    Args:
        x: Tensor whose last ``len(spatial_shape)`` axes are cropped, e.g. (N, C, *spatial)
            logits or (N, *spatial) masks; each size must be >= the target.
        spatial_shape: Target sizes of the trailing axes.
    """
    first = x.dim() - len(spatial_shape)
    for axis, size in enumerate(spatial_shape):
        dim = first + axis
        start = (x.shape[dim] - size) // 2
        x = x.narrow(dim, start, size)
    return x


def center_crop_like(tensor: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """:func:`center_crop` of ``tensor`` to the spatial shape of ``reference`` (N, C, *spatial).

    Valid-padding networks predict a smaller centre region than their input; targets and
    weight maps are cropped to it.
    """
    return center_crop(tensor, list(reference.shape[2:]))


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Zero-pad the spatial axes of ``x`` to multiples of ``multiple``, split evenly.

    :func:`center_crop` to the original shape undoes it.

    Args:
        x: Tensor (N, C, *spatial).
        multiple: Every spatial size of the result is a multiple of this.
    """
    pads: list[int] = []
    for dim in range(x.dim() - 1, 1, -1):
        total = (multiple - x.shape[dim] % multiple) % multiple
        pads.append(total // 2)
        pads.append(total - total // 2)
    # Already a multiple: no copy (a traced graph keeps the pad, to serve every size).
    if not torch.jit.is_tracing() and sum(pads) == 0:
        return x
    return F.pad(x, pads)


class SkipPassthrough(nn.Module):
    """Hands a skip connection on unchanged (the plain U-Net's skip gate)."""

    def forward(self, skip: torch.Tensor, gating: torch.Tensor) -> torch.Tensor:
        """Return ``skip``; ``gating`` is ignored."""
        return skip


class AttentionGate(nn.Module):
    """Additive attention gate on a skip connection (Oktay et al. 2018).

    The gating signal is the upsampled decoder feature at the skip's resolution, so
    no resampling is needed: ``alpha = sigmoid(psi(relu(W_x skip + W_g gating)))`` and
    the gate returns ``skip * alpha`` (one coefficient per pixel).

    Args:
        skip_channels: Channels of the skip feature.
        gating_channels: Channels of the gating feature.
        inter_channels: Channels of the intermediate representation.
        spatial_dims: 2 or 3.
    """

    def __init__(
        self, skip_channels: int, gating_channels: int, inter_channels: int, spatial_dims: int = 2
    ) -> None:
        super().__init__()
        self.skip_proj = pointwise_conv(spatial_dims, skip_channels, inter_channels, bias=False)
        self.gating_proj = pointwise_conv(spatial_dims, gating_channels, inter_channels)
        self.psi = pointwise_conv(spatial_dims, inter_channels, 1)

    def forward(self, skip: torch.Tensor, gating: torch.Tensor) -> torch.Tensor:
        """Weight ``skip`` by attention coefficients computed from ``skip`` and ``gating``."""
        attention = torch.relu(self.skip_proj(skip) + self.gating_proj(gating))
        return skip * torch.sigmoid(self.psi(attention))


class Up(nn.Module):
    """2x upsampling, skip gating and concatenation, then a :class:`DoubleConv`.

    With ``padding="valid"`` the skip is center-cropped to the upsampled size (the
    paper's crop-and-concat); with ``same`` both already match.

    Args:
        in_channels: Channels of the coarser input; upsampling halves them.
        skip_channels: Channels of the skip feature (0 for no skip).
        out_channels: Output channels.
        spatial_dims: 2 or 3.
        upsample: ``transposed2x2``, ``transposed3x3`` or ``bilinear``.
        padding: ``same`` or ``valid``.
        norm: One of ``batch``, ``instance``, ``group``, ``none``.
        norm_order: ``conv_norm_act`` or ``conv_act_norm``.
        gate: Module ``(skip, gating) -> skip`` applied to the skip; default passthrough.
    """

    def __init__(
        self,
        in_channels: int,
        skip_channels: int,
        out_channels: int,
        spatial_dims: int = 2,
        upsample: str = "transposed2x2",
        padding: str = "same",
        norm: str = "batch",
        norm_order: str = "conv_norm_act",
        gate: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.crop_skip = padding == "valid"
        self.upsample = make_upsampler(upsample, in_channels, spatial_dims)
        self.gate = gate if gate is not None else SkipPassthrough()
        self.conv = DoubleConv(
            in_channels // 2 + skip_channels, out_channels, spatial_dims, padding, norm, norm_order
        )

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        """Upsample ``x``, concatenate the (cropped, gated) ``skip`` and convolve."""
        x = self.upsample(x)
        if skip is not None:
            if self.crop_skip:
                skip = center_crop(skip, x.shape[2:])
            x = torch.cat([self.gate(skip, x), x], dim=1)
        return self.conv(x)
