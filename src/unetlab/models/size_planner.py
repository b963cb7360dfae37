"""Tile sizes for valid-padding (unpadded) U-Nets, one spatial axis at a time.

In a valid U-Net every unpadded 3x3 convolution trims 1 pixel per side (``dilation``
pixels when dilated), every 2x2 max-pool halves the size and must see an even size,
and every 2x upsampling doubles it. With ``depth`` poolings an input is valid when
the size reaching the bottleneck is a whole number and every intermediate size stays
positive. For depth 4 that is ``input = 16 * k + 60`` (e.g. 572 -> 388, Ronneberger
et al. 2015); for depth 3, 132 -> 44 and 116 -> 28 (the 3-D U-Net of Çiçek et al. 2016).
"""

from __future__ import annotations

CONV_TRIM = 2
"""Pixels one unpadded, undilated 3x3 convolution removes along an axis."""


def _check_depth(depth: int, bottleneck_dilation: int) -> None:
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    if bottleneck_dilation < 1:
        raise ValueError(f"bottleneck_dilation must be >= 1, got {bottleneck_dilation}")


def _output_size_or_none(input_size: int, depth: int, bottleneck_dilation: int) -> int | None:
    """Output size of a valid U-Net, or None when ``input_size`` does not fit it."""
    size = input_size
    for _ in range(depth):
        size -= 2 * CONV_TRIM
        if size < 2 or size % 2:
            return None
        size //= 2
    size -= 2 * CONV_TRIM * bottleneck_dilation
    if size < 1:
        return None
    for _ in range(depth):
        size = 2 * size - 2 * CONV_TRIM
        if size < 1:
            return None
    return size


def _input_size(bottleneck_input: int, depth: int) -> int:
    """Input size whose contracting path delivers ``bottleneck_input`` to the bottleneck."""
    return 2**depth * bottleneck_input + 2 * CONV_TRIM * (2**depth - 1)


def _smallest_bottleneck_input(depth: int, bottleneck_dilation: int) -> int:
    bottleneck_input = 1
    while (
        _output_size_or_none(_input_size(bottleneck_input, depth), depth, bottleneck_dilation)
        is None
    ):
        bottleneck_input += 1
    return bottleneck_input


def is_valid_input_size(input_size: int, depth: int, bottleneck_dilation: int = 1) -> bool:
    """Whether a valid-padding U-Net of this depth accepts ``input_size`` along an axis.

    Args:
        input_size: Size of the input along one spatial axis.
        depth: Number of poolings (4 in the paper).
        bottleneck_dilation: Dilation of the two bottleneck convolutions.
    """
    _check_depth(depth, bottleneck_dilation)
    return _output_size_or_none(input_size, depth, bottleneck_dilation) is not None


def valid_input_sizes(
    depth: int, min_size: int = 1, max_size: int = 1024, bottleneck_dilation: int = 1
) -> list[int]:
    """All valid input sizes in ``[min_size, max_size]``, ascending.

    Args:
        depth: Number of poolings.
        min_size: Smallest size to list.
        max_size: Largest size to list.
        bottleneck_dilation: Dilation of the two bottleneck convolutions.
    """
    _check_depth(depth, bottleneck_dilation)
    first = _smallest_bottleneck_input(depth, bottleneck_dilation)
    sizes = (_input_size(b, depth) for b in range(first, max_size // 2**depth + 1))
    return [size for size in sizes if min_size <= size <= max_size]


def nearest_valid_input_sizes(
    input_size: int, depth: int, bottleneck_dilation: int = 1
) -> tuple[int | None, int]:
    """The largest valid size below ``input_size`` (None if there is none) and the smallest above.

    Args:
        input_size: Size of the input along one spatial axis.
        depth: Number of poolings.
        bottleneck_dilation: Dilation of the two bottleneck convolutions.
    """
    _check_depth(depth, bottleneck_dilation)
    first = _smallest_bottleneck_input(depth, bottleneck_dilation)
    step = 2**depth
    offset = _input_size(0, depth)
    above_b = max(first, -(-(input_size - offset) // step))
    if _input_size(above_b, depth) == input_size:
        above_b += 1
    below_b = min(above_b - 1, (input_size - offset - 1) // step)
    below = _input_size(below_b, depth) if below_b >= first else None
    return below, _input_size(above_b, depth)


def valid_output_size(input_size: int, depth: int, bottleneck_dilation: int = 1) -> int:
    """Output size of a valid-padding U-Net for ``input_size`` along one axis.

    Args:
        input_size: Size of the input along one spatial axis.
        depth: Number of poolings.
        bottleneck_dilation: Dilation of the two bottleneck convolutions.

    Raises:
        ValueError: If the size is not valid; the message names the nearest valid sizes.
    """
    _check_depth(depth, bottleneck_dilation)
    output_size = _output_size_or_none(input_size, depth, bottleneck_dilation)
    if output_size is None:
        below, above = nearest_valid_input_sizes(input_size, depth, bottleneck_dilation)
        nearest = (
            f"nearest valid sizes: {below} or {above}"
            if below is not None
            else f"the smallest valid size is {above}"
        )
        dilation = (
            f" and bottleneck dilation {bottleneck_dilation}" if bottleneck_dilation > 1 else ""
        )
        raise ValueError(
            f"input size {input_size} is not valid for a valid-padding U-Net of depth "
            f"{depth}{dilation}; {nearest}"
        )
    return output_size


def input_size_for_output(output_size: int, depth: int, bottleneck_dilation: int = 1) -> int:
    """Smallest valid input tile whose output covers at least ``output_size`` pixels.

    The output of that tile may be larger than asked for (outputs come in steps of
    ``2**depth``); crop it, or step overlapping tiles by the output size it gives.

    Args:
        output_size: Wanted output size along one axis (>= 1).
        depth: Number of poolings.
        bottleneck_dilation: Dilation of the two bottleneck convolutions.
    """
    _check_depth(depth, bottleneck_dilation)
    if output_size < 1:
        raise ValueError(f"output size must be >= 1, got {output_size}")
    # output = 2**depth * (b - 2 * CONV_TRIM * dilation) - 2 * CONV_TRIM * (2**depth - 1)
    # for a bottleneck input b; take the smallest b that reaches output_size.
    step = 2**depth
    needed = -(-(output_size + 2 * CONV_TRIM * (step - 1)) // step)
    bottleneck_input = needed + 2 * CONV_TRIM * bottleneck_dilation
    first = _smallest_bottleneck_input(depth, bottleneck_dilation)
    return _input_size(max(bottleneck_input, first), depth)
