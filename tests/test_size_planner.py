"""Size planner of valid-padding U-Nets, checked against closed forms and real networks."""

from __future__ import annotations

import pytest
import torch

from unetlab.models import (
    UNet,
    input_size_for_output,
    is_valid_input_size,
    valid_input_sizes,
    valid_output_size,
)


@pytest.mark.parametrize(
    ("input_size", "depth", "output_size"),
    [(572, 4, 388), (132, 3, 44), (116, 3, 28), (188, 4, 4), (18, 1, 2)],
)
def test_known_sizes(input_size: int, depth: int, output_size: int) -> None:
    assert valid_output_size(input_size, depth) == output_size


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_valid_sizes_follow_the_closed_form(depth: int) -> None:
    # Valid inputs are 2**depth * k + 4 * (2**depth - 1), from the smallest k whose
    # intermediate sizes all stay positive.
    step, offset = 2**depth, 4 * (2**depth - 1)
    sizes = valid_input_sizes(depth, 1, 400)
    assert sizes == [s for s in range(sizes[0], 401) if (s - offset) % step == 0]
    assert all(is_valid_input_size(s, depth) for s in sizes)
    assert not any(is_valid_input_size(s, depth) for s in range(1, 401) if s not in sizes)
    assert all(valid_output_size(s, depth) == s - 4 * step - 2 * offset for s in sizes)


def test_invalid_size_names_the_nearest_valid_sizes() -> None:
    with pytest.raises(
        ValueError, match=r"input size 500 .* depth 4; nearest valid sizes: 492 or 508"
    ):
        valid_output_size(500, 4)
    with pytest.raises(ValueError, match="smallest valid size is 188"):
        valid_output_size(100, 4)


@pytest.mark.parametrize(("depth", "dilation"), [(1, 1), (2, 1), (4, 1), (3, 2)])
@pytest.mark.parametrize("wanted", [1, 7, 100, 388])
def test_input_size_for_output_is_the_smallest_tile(depth: int, dilation: int, wanted: int) -> None:
    tile = input_size_for_output(wanted, depth, dilation)
    assert valid_output_size(tile, depth, dilation) >= wanted
    smaller = valid_input_sizes(depth, 1, tile - 1, dilation)
    assert all(valid_output_size(s, depth, dilation) < wanted for s in smaller)


def test_paper_tile_for_388_output() -> None:
    assert input_size_for_output(388, 4) == 572


@pytest.mark.parametrize("dilation", [1, 2])
def test_planner_matches_a_real_network(dilation: int) -> None:
    model = UNet(
        1, 1, base_channels=2, depth=2, padding="valid", norm="none", bottleneck_dilation=dilation
    )
    height, width = valid_input_sizes(2, 40, 80, dilation)[:2]
    with torch.no_grad():
        out = model(torch.zeros(1, 1, height, width))
    assert tuple(out.shape[2:]) == model.output_shape((height, width))
    assert model.output_shape((height, width)) == (
        valid_output_size(height, 2, dilation),
        valid_output_size(width, 2, dilation),
    )


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="depth must be >= 1"):
        valid_output_size(572, 0)
    with pytest.raises(ValueError, match="output size must be >= 1"):
        input_size_for_output(0, 4)
