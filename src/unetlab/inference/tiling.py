"""Overlap-tile prediction (Ronneberger et al. 2015) for images and volumes of any size.

Tiles are read from the image with mirrored borders (:mod:`unetlab.data.mirror`), run
through the network a batch at a time, and their outputs are stitched as they come
(:mod:`unetlab.inference.stitching`): into one preallocated array of logits, or row by row
of tiles into labels, so memory grows with the tile batch and the output, never with a
list of tiles.

* ``padding="valid"`` networks predict only the centre of their input. The planner picks
  input tiles whose output tiles cover the image side by side, without blending, and
  steps them by a multiple of ``2**depth`` so every tile sees the pooling grid of the
  whole image: the result equals the whole-image prediction.
* ``padding="same"`` networks predict their whole input. Tiles overlap by ``overlap`` and
  are blended with a Gaussian or linear window.

Every function here works on any number of spatial axes (2-D images, 3-D volumes).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from unetlab.data.mirror import crop_mirrored
from unetlab.inference.runner import TileRunner, parse_precision
from unetlab.inference.stitching import LabelStitcher, LogitStitcher
from unetlab.inference.tta import TTAPredictor, parse_tta
from unetlab.models.size_planner import valid_input_sizes, valid_output_size

Predictor = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class AxisPlan:
    """Where tiles go along one spatial axis.

    Attributes:
        length: Image size along the axis.
        input_size: Tile size fed to the network.
        output_size: Tile size the network returns.
        margin: Output pixel ``i`` of a tile lies at input pixel ``i + margin``.
        starts: Image coordinate of every output tile's first pixel (may be negative).
        ends: Image coordinate after the last pixel each tile writes.
    """

    length: int
    input_size: int
    output_size: int
    margin: int
    starts: tuple[int, ...]
    ends: tuple[int, ...]


@dataclass(frozen=True)
class TileGrid:
    """A regular grid of tiles over an image: one :class:`AxisPlan` per spatial axis.

    Attributes:
        axes: The plan of every spatial axis.
        blended: Whether output tiles overlap and are blended (same padding), or are
            written side by side (valid padding).
    """

    axes: tuple[AxisPlan, ...]
    blended: bool

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(axis.length for axis in self.axes)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(axis.input_size for axis in self.axes)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return tuple(axis.output_size for axis in self.axes)

    @property
    def num_tiles(self) -> int:
        return math.prod(len(axis.starts) for axis in self.axes)

    def tiles(self) -> Iterator[tuple[int, ...]]:
        """Grid index of every tile, in row-major order."""
        return itertools.product(*(range(len(axis.starts)) for axis in self.axes))


def _tile_sizes(tile_size: int | Sequence[int], ndim: int) -> tuple[int, ...]:
    sizes = (tile_size,) * ndim if isinstance(tile_size, int) else tuple(tile_size)
    if len(sizes) != ndim:
        raise ValueError(f"tile_size={list(sizes)} has {len(sizes)} sizes for a {ndim}-D image")
    if min(sizes) < 1:
        raise ValueError(f"tile_size={list(sizes)} must be positive")
    return tuple(int(size) for size in sizes)


def _valid_tile_count(length: int, output_size: int, step: int) -> int | None:
    if output_size >= length:
        return 1
    if step == 0:
        return None
    return math.ceil((length - output_size) / step) + 1


def plan_valid_axis(
    length: int, max_tile: int, depth: int, bottleneck_dilation: int = 1
) -> AxisPlan:
    """Tiles of a valid-padding U-Net along one axis; their outputs cover ``[0, length)``.

    Tiles are stepped by the largest multiple of ``2**depth`` not above their output size,
    so every tile is pooled on the grid of the whole image. Among the valid input sizes up
    to ``max_tile``, the smallest one that needs no more tiles than the largest is taken,
    which mirrors as little as possible beyond the image.

    Args:
        length: Image size along the axis.
        max_tile: Largest input tile (raised to the smallest usable one if below it).
        depth: Number of poolings of the network.
        bottleneck_dilation: Dilation of its bottleneck convolutions.
    """
    multiple = 2**depth

    def step_of(tile: int) -> int:
        return valid_output_size(tile, depth, bottleneck_dilation) // multiple * multiple

    def count(tile: int) -> int | None:
        output = valid_output_size(tile, depth, bottleneck_dilation)
        return _valid_tile_count(length, output, step_of(tile))

    sizes = valid_input_sizes(depth, 1, max(max_tile, 64 * multiple), bottleneck_dilation)
    usable = [tile for tile in sizes if count(tile)]
    candidates = [tile for tile in usable if tile <= max_tile] or usable[:1]
    fewest = count(candidates[-1])
    tile = next(t for t in candidates if count(t) == fewest)
    output = valid_output_size(tile, depth, bottleneck_dilation)
    step = step_of(tile)
    starts = tuple(k * step for k in range(fewest))
    ends = (*starts[1:], length)
    return AxisPlan(length, tile, output, (tile - output) // 2, starts, ends)


def plan_same_axis(length: int, max_tile: int, overlap: float, multiple: int = 1) -> AxisPlan:
    """Overlapping tiles of a same-padding network along one axis.

    Tiles step by ``tile * (1 - overlap)``, rounded down to a multiple of ``multiple`` (the
    network's pooling factor) so overlapping tiles share their pooling grid. The grid is
    centred on the image, and the slack it leaves is filled by mirroring.

    Args:
        length: Image size along the axis.
        max_tile: Tile size (reduced to the image size for smaller images).
        overlap: Fraction of a tile shared with its neighbour, in ``[0, 1)``.
        multiple: The step is rounded down to a multiple of this when it is larger.
    """
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap={overlap} must be in [0, 1)")
    tile = min(max_tile, length)
    step = max(1, int(tile * (1 - overlap)))
    if step >= multiple:
        step -= step % multiple
    count = 1 if length <= tile else math.ceil((length - tile) / step) + 1
    first = -(((count - 1) * step + tile - length) // 2)
    starts = tuple(first + k * step for k in range(count))
    ends = tuple(min(start + tile, length) for start in starts)
    return AxisPlan(length, tile, tile, 0, starts, ends)


def plan_tiles(
    image_shape: Sequence[int],
    net: nn.Module,
    tile_size: int | Sequence[int] = 512,
    overlap: float = 0.25,
) -> TileGrid:
    """Plan the tiles of ``net`` over an image of spatial shape ``image_shape``.

    Args:
        image_shape: Spatial shape of the image.
        net: The network; its ``padding`` (``valid`` or ``same``, default ``same``),
            ``depth``, ``bottleneck_dilation`` and ``size_multiple`` are read.
        tile_size: Largest input tile, one size for all axes or one per axis.
        overlap: Overlap of same-padding tiles (valid tiles never overlap).
    """
    sizes = _tile_sizes(tile_size, len(image_shape))
    if getattr(net, "padding", "same") == "valid":
        depth = getattr(net, "depth", None)
        if depth is None:
            raise ValueError(
                f"{type(net).__name__} has padding='valid' but no 'depth' attribute; "
                "the tile planner needs the number of poolings"
            )
        dilation = getattr(net, "bottleneck_dilation", 1)
        axes = tuple(
            plan_valid_axis(n, t, depth, dilation) for n, t in zip(image_shape, sizes, strict=True)
        )
        grid = TileGrid(axes, blended=False)
        output_shape = getattr(net, "output_shape", None)
        if output_shape is not None and tuple(output_shape(grid.input_shape)) != grid.output_shape:
            raise ValueError(
                f"{type(net).__name__}.output_shape({grid.input_shape}) disagrees with the "
                f"size planner ({grid.output_shape})"
            )
        return grid
    multiple = getattr(net, "size_multiple", 1)
    axes = tuple(
        plan_same_axis(n, t, overlap, multiple) for n, t in zip(image_shape, sizes, strict=True)
    )
    return TileGrid(axes, blended=True)


def _module_device(net: object) -> torch.device:
    if isinstance(net, nn.Module):
        parameter = next(net.parameters(), None)
        if parameter is not None:
            return parameter.device
    return torch.device("cpu")


def predict_tiles(
    image: np.ndarray,
    predict: Predictor,
    grid: TileGrid,
    batch_size: int = 4,
    blend: str = "gaussian",
    device: torch.device | str = "cpu",
    progress: Callable[[int], None] | None = None,
    stitcher: LogitStitcher | None = None,
) -> torch.Tensor | np.ndarray:
    """Run ``predict`` over the tiles of ``grid`` and stitch its outputs.

    Args:
        image: Normalised image (C, *spatial), float32.
        predict: Maps a batch (N, C, *grid.input_shape) to (N, K, *grid.output_shape).
        grid: The tile plan (from :func:`plan_tiles`).
        batch_size: Tiles per call of ``predict``.
        blend: Window of blended grids: ``gaussian`` or ``linear``.
        device: Where tiles are sent; the output stays on the CPU.
        progress: Called with the number of tiles finished after every batch.
        stitcher: What is kept of the outputs (default: a :class:`LogitStitcher` of
            ``grid`` and ``blend``; a :class:`LabelStitcher` keeps labels only).

    Returns:
        The stitcher's result: by default a float32 CPU tensor (K, *spatial) of blended or
        assembled network outputs.
    """
    if tuple(image.shape[1:]) != grid.image_shape:
        raise ValueError(
            f"image shape {image.shape[1:]} differs from the grid's {grid.image_shape}"
        )
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be >= 1")
    stitcher = LogitStitcher(grid, blend) if stitcher is None else stitcher
    axes = grid.axes
    tiles = list(grid.tiles())
    for first in range(0, len(tiles), batch_size):
        batch = tiles[first : first + batch_size]
        inputs = np.stack(
            [
                crop_mirrored(
                    image,
                    [axis.starts[k] - axis.margin for axis, k in zip(axes, tile, strict=True)],
                    grid.input_shape,
                    first_axis=1,
                )
                for tile in batch
            ]
        )
        with torch.inference_mode():
            logits = predict(torch.from_numpy(inputs).to(device))
        logits = logits.float().cpu()
        if tuple(logits.shape[2:]) != grid.output_shape:
            raise ValueError(
                f"the network returned tiles of shape {tuple(logits.shape[2:])} for input tiles "
                f"{grid.input_shape}; expected {grid.output_shape}"
            )
        for tile, tile_logits in zip(batch, logits, strict=True):
            stitcher.add(tile, tile_logits)
        if progress is not None:
            progress(len(batch))
    return stitcher.result()


def tile_predictor(
    net: nn.Module,
    tta: str | Sequence[str] | None = None,
    precision: str | int | None = None,
    channels_last: bool = False,
    device: torch.device | str | None = None,
) -> tuple[Predictor, torch.device]:
    """What runs a batch of tiles: ``net`` with its precision, memory format and TTA.

    Args:
        net: The network in eval mode.
        tta: Test-time augmentation (see :func:`~unetlab.inference.tta.parse_tta`).
        precision: ``32``, ``bf16`` or ``fp16`` (autocast; see
            :func:`~unetlab.inference.runner.parse_precision`).
        channels_last: Run in channels-last memory format (converts ``net`` in place).
        device: Where the network runs (default: the device of its parameters).

    Returns:
        The predictor and the device tiles are sent to.
    """
    device = torch.device(_module_device(net) if device is None else device)
    runner = TileRunner(net, parse_precision(precision, device), channels_last)
    names = parse_tta(tta)
    predict: Predictor = runner if names == ("identity",) else TTAPredictor(runner, names)
    return predict, device


def overlap_tile_predict(
    image: np.ndarray | torch.Tensor,
    net: nn.Module,
    tile_size: int | Sequence[int] = 512,
    overlap: float = 0.25,
    batch_size: int = 4,
    blend: str = "gaussian",
    tta: str | Sequence[str] | None = None,
    device: torch.device | str | None = None,
    progress: Callable[[int], None] | None = None,
    precision: str | int | None = None,
    channels_last: bool = False,
    labels_only: bool = False,
    label_dtype: type | np.dtype = np.uint8,
) -> torch.Tensor | np.ndarray:
    """Predict an image of any size with a network, tile by tile.

    Args:
        image: Normalised image (C, *spatial) as the network expects it (2-D or 3-D).
        net: The network in eval mode.
        tile_size: Largest input tile, one size or one per spatial axis. For valid-padding
            networks the planner picks the tile (at most this size) and ignores ``overlap``.
        overlap: Fraction of a tile shared with each neighbour (same-padding networks).
        batch_size: Tiles per forward pass; with ``tile_size`` it bounds the memory.
        blend: ``gaussian`` or ``linear`` window for overlapping tiles.
        tta: Test-time augmentation: names of D4 transforms, ``d4`` for all eight, or
            ``None`` for none.
        device: Where the network runs (default: the device of its parameters).
        progress: Called with the number of tiles finished after every batch.
        precision: ``32`` (default), ``bf16`` or ``fp16``: autocast dtype of the network.
        channels_last: Run the network in channels-last memory format.
        labels_only: Return class labels, stitched row by row of tiles without a
            float32 array of all classes over the image.
        label_dtype: Unsigned integer type of the labels.

    Returns:
        Float32 CPU tensor (K, *spatial) of logits the size of the image, or with
        ``labels_only`` an array (*spatial) of class labels.
    """
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    image = np.asarray(image, dtype=np.float32)
    grid = plan_tiles(image.shape[1:], net, tile_size, overlap)
    predict, device = tile_predictor(net, tta, precision, channels_last, device)
    stitcher = (
        LabelStitcher(grid, blend, label_dtype) if labels_only else LogitStitcher(grid, blend)
    )
    return predict_tiles(image, predict, grid, batch_size, blend, device, progress, stitcher)
