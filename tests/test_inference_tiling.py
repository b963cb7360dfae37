"""Overlap-tile planning and prediction: exact for valid U-Nets, seamless blending otherwise."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from torch import nn

from unetlab.data.mirror import crop_mirrored, mirror_pad, reflect_indices
from unetlab.inference.tiling import (
    overlap_tile_predict,
    plan_same_axis,
    plan_tiles,
    plan_valid_axis,
    predict_tiles,
)
from unetlab.models import UNet, input_size_for_output, valid_input_sizes, valid_output_size


@functools.lru_cache
def valid_unet(norm: str = "none", depth: int = 2, spatial_dims: int = 2) -> UNet:
    """A tiny valid-padding U-Net in eval mode (batch norm with trained-looking statistics)."""
    torch.manual_seed(0)
    net = UNet(
        1,
        3,
        base_channels=2 if spatial_dims == 3 else 4,
        depth=depth,
        padding="valid",
        norm=norm,
        spatial_dims=spatial_dims,
    )
    if norm == "batch":
        size = input_size_for_output(8, depth)
        with torch.no_grad():
            net.train()(torch.randn(2, 1, *(size,) * spatial_dims))
    return net.eval()


class Passthrough(nn.Module):
    """A same-padding "network" whose logits are its input, to check where tiles land."""

    padding = "same"
    size_multiple = 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clone()


def whole_image_logits(net: UNet, image: np.ndarray) -> torch.Tensor:
    """Logits of the whole mirror-padded image in one pass, cropped to the image."""
    shape = image.shape[1:]
    inputs = [input_size_for_output(n, net.depth) for n in shape]
    margin = (inputs[0] - valid_output_size(inputs[0], net.depth)) // 2
    padded = mirror_pad(
        image, [margin] * len(shape), [i - n - margin for i, n in zip(inputs, shape, strict=True)]
    )
    with torch.no_grad():
        logits = net(torch.from_numpy(padded)[None])[0]
    return logits[(slice(None), *(slice(0, n) for n in shape))]


@pytest.mark.parametrize(
    ("tile_size", "shape"),
    # The smallest tile (4-pixel outputs) on a smaller image: the same cases, fewer tiles.
    [(44, (29, 37)), *((size, (97, 131)) for size in (60, 64, 100, 140, 512))],
)
def test_valid_tiling_equals_whole_image_on_odd_size(
    tile_size: int, shape: tuple[int, int]
) -> None:
    net = valid_unet()
    image = np.random.default_rng(0).normal(size=(1, *shape)).astype(np.float32)
    tiled = overlap_tile_predict(image, net, tile_size=tile_size, batch_size=3)
    assert tiled.shape == (3, *shape)
    assert (tiled - whole_image_logits(net, image)).abs().max() <= 1e-4


@pytest.mark.parametrize("tile_size", [(60, 92), (76, 44)])
def test_valid_tiling_exact_with_batch_norm_and_per_axis_tiles(tile_size: tuple[int, int]) -> None:
    net = valid_unet(norm="batch")
    image = np.random.default_rng(1).normal(size=(1, 83, 59)).astype(np.float32)
    tiled = overlap_tile_predict(image, net, tile_size=tile_size, batch_size=2)
    assert (tiled - whole_image_logits(net, image)).abs().max() <= 1e-4


def test_valid_tiling_exact_for_depth_3_where_outputs_are_not_pooling_aligned() -> None:
    # Depth-3 output tiles are 4 more than a multiple of 8: tiles step by the multiple.
    net = valid_unet(depth=3)
    grid = plan_tiles((61, 75), net, 100)
    assert all(axis.output_size % 8 == 4 for axis in grid.axes)
    assert all(start % 8 == 0 for axis in grid.axes for start in axis.starts)
    image = np.random.default_rng(2).normal(size=(1, 61, 75)).astype(np.float32)
    tiled = overlap_tile_predict(image, net, tile_size=100, batch_size=4)
    assert (tiled - whole_image_logits(net, image)).abs().max() <= 1e-4


def test_valid_tiling_exact_in_3d() -> None:
    net = valid_unet(spatial_dims=3)
    image = np.random.default_rng(3).normal(size=(1, 13, 23, 17)).astype(np.float32)
    tiled = overlap_tile_predict(image, net, tile_size=48, batch_size=4)
    assert plan_tiles(image.shape[1:], net, 48).num_tiles > 1
    assert (tiled - whole_image_logits(net, image)).abs().max() <= 1e-4


@pytest.mark.parametrize("length", [1, 5, 97, 131, 400])
@pytest.mark.parametrize("max_tile", [1, 60, 92, 256])
@pytest.mark.parametrize("depth", [2, 4])
def test_valid_plan_covers_the_axis_exactly(length: int, max_tile: int, depth: int) -> None:
    plan = plan_valid_axis(length, max_tile, depth)
    assert plan.output_size == valid_output_size(plan.input_size, depth)
    assert plan.starts[0] == 0 and plan.ends[-1] == length
    assert all(end == start for end, start in zip(plan.ends[:-1], plan.starts[1:], strict=True))
    assert all(start % 2**depth == 0 for start in plan.starts)
    assert all(e - s <= plan.output_size for s, e in zip(plan.starts, plan.ends, strict=True))
    usable = [
        t for t in valid_input_sizes(depth, 1, max_tile) if valid_output_size(t, depth) >= 2**depth
    ]
    if usable:
        assert plan.input_size <= max_tile


def test_valid_plan_takes_the_smallest_tile_with_the_fewest_tiles() -> None:
    largest = plan_valid_axis(97, 512, 2)
    assert len(largest.starts) == 1
    assert largest.input_size == input_size_for_output(97, 2)
    split = plan_valid_axis(400, 252, 4)
    for smaller in valid_input_sizes(4, 1, split.input_size - 1):
        assert len(plan_valid_axis(400, smaller, 4).starts) > len(split.starts)


@pytest.mark.parametrize("length", [7, 64, 100, 333])
@pytest.mark.parametrize("overlap", [0.0, 0.25, 0.5])
def test_same_plan_is_regular_centred_and_covers(length: int, overlap: float) -> None:
    plan = plan_same_axis(length, 64, overlap, multiple=16)
    steps = np.diff(plan.starts)
    assert len(set(steps.tolist())) <= 1
    assert plan.starts[0] <= 0 and plan.starts[-1] + plan.input_size >= length
    slack_before = -plan.starts[0]
    slack_after = plan.starts[-1] + plan.input_size - length
    assert 0 <= slack_after - slack_before <= 1
    if len(plan.starts) > 1:
        assert steps[0] % 16 == 0 and steps[0] <= int(64 * (1 - overlap))
        assert len(plan.starts) == int(np.ceil((length - 64) / steps[0])) + 1


@pytest.mark.parametrize("blend", ["gaussian", "linear"])
@pytest.mark.parametrize("shape", [(1, 97, 131), (2, 40, 23), (1, 9, 30, 21)])
def test_blending_puts_every_tile_back_in_place(blend: str, shape: tuple[int, ...]) -> None:
    image = np.random.default_rng(4).normal(size=shape).astype(np.float32)
    tile = 16 if len(shape) == 4 else 32
    blended = overlap_tile_predict(
        image, Passthrough(), tile, overlap=0.5, batch_size=5, blend=blend
    )
    assert plan_tiles(shape[1:], Passthrough(), tile, 0.5).num_tiles > 1
    torch.testing.assert_close(blended, torch.from_numpy(image), atol=1e-5, rtol=1e-5)


def test_same_padding_unet_result_does_not_depend_on_batch_size() -> None:
    torch.manual_seed(0)
    net = UNet(1, 2, base_channels=4, depth=2).eval()
    image = np.random.default_rng(5).normal(size=(1, 70, 90)).astype(np.float32)
    one = overlap_tile_predict(image, net, 32, overlap=0.25, batch_size=1)
    many = overlap_tile_predict(image, net, 32, overlap=0.25, batch_size=7)
    torch.testing.assert_close(one, many)
    with torch.no_grad():
        whole = net(torch.from_numpy(image)[None])[0]
    # Tiles see less context than the whole image, but the result is close away from seams.
    assert (one - whole).abs().mean() < 0.1 * whole.abs().mean()


def test_progress_counts_every_tile() -> None:
    image = np.zeros((1, 50, 70), np.float32)
    counts: list[int] = []
    overlap_tile_predict(image, Passthrough(), 24, batch_size=4, progress=counts.append)
    assert sum(counts) == plan_tiles((50, 70), Passthrough(), 24, 0.25).num_tiles
    assert max(counts) <= 4


def test_mirror_matches_numpy_reflect_and_extends_beyond_the_image() -> None:
    image = np.arange(2 * 5 * 7, dtype=np.float32).reshape(2, 5, 7)
    expected = np.pad(image, ((0, 0), (3, 4), (6, 2)), mode="reflect")
    np.testing.assert_array_equal(mirror_pad(image, (3, 6), (4, 2)), expected)
    assert reflect_indices(np.arange(-9, 11), 4).tolist() == [
        3,
        2,
        1,
        0,
        1,
        2,
        3,
        2,
        1,
        0,
        1,
        2,
        3,
        2,
        1,
        0,
        1,
        2,
        3,
        2,
    ]
    assert reflect_indices(np.arange(-2, 2), 1).tolist() == [0, 0, 0, 0]
    inside = crop_mirrored(image, (1, 2), (3, 4), first_axis=1)
    assert np.shares_memory(inside, image)


def test_wrong_output_shape_is_reported() -> None:
    grid = plan_tiles((40, 40), Passthrough(), 32)
    with pytest.raises(ValueError, match=r"returned tiles of shape \(30, 30\)"):
        predict_tiles(np.zeros((1, 40, 40), np.float32), lambda x: x[..., :30, :30], grid)


def test_bad_options_are_reported() -> None:
    with pytest.raises(ValueError, match=r"overlap=1\.0"):
        plan_tiles((40, 40), Passthrough(), 32, overlap=1.0)
    with pytest.raises(ValueError, match=r"tile_size=.*3 sizes"):
        plan_tiles((40, 40), Passthrough(), (8, 8, 8))
    with pytest.raises(ValueError, match="blend='box'"):
        overlap_tile_predict(np.zeros((1, 40, 40), np.float32), Passthrough(), 32, blend="box")
