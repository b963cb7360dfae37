"""Stitching tile outputs into the whole image: every class's logits, or labels only.

:class:`LogitStitcher` keeps one float32 array of all classes over the image.
:class:`LabelStitcher` keeps only a band one output tile high along the first spatial
axis: tiles arrive row by row, so once a row of tiles starts, every image row above it is
final; those rows are normalised, reduced to class labels and dropped. Its float memory
is that of one row of tiles, whatever the image size, and its labels equal the argmax of
the full stitching exactly (the same sums in the same order).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from unetlab.inference.outputs import labels_from_logits
from unetlab.inference.windows import blend_window_1d, window_weight_sum

if TYPE_CHECKING:
    from unetlab.inference.tiling import TileGrid


def _outer(vectors: Sequence[np.ndarray]) -> np.ndarray:
    """Outer product of 1-D arrays: an array of shape ``[v.size for v in vectors]``."""
    product = vectors[0]
    for vector in vectors[1:]:
        product = np.multiply.outer(product, vector)
    return product


class LogitStitcher:
    """Blends (or places side by side) tile outputs into float32 logits of the whole image.

    Args:
        grid: The tile plan (a :class:`~unetlab.inference.tiling.TileGrid`).
        blend: Window of blended grids: ``gaussian`` or ``linear``.
    """

    def __init__(self, grid: TileGrid, blend: str = "gaussian") -> None:
        self.grid = grid
        self.windows = (
            [blend_window_1d(blend, axis.output_size) for axis in grid.axes] if grid.blended else []
        )
        self.window = torch.from_numpy(_outer(self.windows)) if self.windows else None
        self.totals = (
            [
                torch.from_numpy(window_weight_sum(window, list(axis.starts), axis.length))
                for axis, window in zip(grid.axes, self.windows, strict=True)
            ]
            if grid.blended
            else []
        )
        self.offset = 0
        self.output: torch.Tensor | None = None

    def _allocate(self, classes: int, rows: int) -> torch.Tensor:
        allocate = torch.zeros if self.grid.blended else torch.empty
        return allocate((classes, rows, *self.grid.image_shape[1:]), dtype=torch.float32)

    def add(self, tile: tuple[int, ...], logits: torch.Tensor) -> None:
        """Add the float32 output (K, *output_shape) of the tile at grid index ``tile``."""
        if self.output is None:
            self.output = self._allocate(logits.shape[0], self._rows())
        target, source = [slice(None)], [slice(None)]
        for axis, k in zip(self.grid.axes, tile, strict=True):
            start, end = axis.starts[k], axis.ends[k]
            low = max(start, 0)
            target.append(slice(low, end))
            source.append(slice(low - start, end - start))
        target[1] = slice(target[1].start - self.offset, target[1].stop - self.offset)
        region = self.output[tuple(target)]
        if self.window is None:
            region.copy_(logits[tuple(source)])
        else:
            region.addcmul_(logits[tuple(source)], self.window[tuple(source[1:])])

    def _rows(self) -> int:
        return self.grid.axes[0].length

    def _normalise(self, block: torch.Tensor, first_row: int) -> torch.Tensor:
        """Divide blended sums by the summed window weight, one axis after the other."""
        for index, total in enumerate(self.totals):
            if index == 0:
                total = total[first_row : first_row + block.shape[1]]
            shape = [1] * block.ndim
            shape[index + 1] = total.numel()
            block.div_(total.view(shape))
        return block

    def result(self) -> torch.Tensor:
        """Float32 CPU tensor (K, *spatial): the blended or assembled logits."""
        assert self.output is not None, "no tile was added"
        return self._normalise(self.output, 0)


class LabelStitcher(LogitStitcher):
    """Stitches tiles row by row and keeps only the class labels of finished rows.

    Tiles must arrive in row-major order (:meth:`TileGrid.tiles`).

    Args:
        grid: The tile plan.
        blend: Window of blended grids.
        dtype: Unsigned integer type of the labels.
    """

    def __init__(
        self, grid: TileGrid, blend: str = "gaussian", dtype: type | np.dtype = np.uint8
    ) -> None:
        super().__init__(grid, blend)
        self.labels = np.empty(grid.image_shape, dtype)
        self.row = 0

    def _rows(self) -> int:
        first = self.grid.axes[0]
        return min(first.output_size, first.length)

    def add(self, tile: tuple[int, ...], logits: torch.Tensor) -> None:
        if tile[0] != self.row:
            self.row = tile[0]
            self._finish(max(self.grid.axes[0].starts[self.row], 0))
        super().add(tile, logits)

    def _finish(self, until: int) -> None:
        """Label the rows before ``until`` (no later tile reaches them) and drop them."""
        count = until - self.offset
        if count <= 0 or self.output is None:
            return
        block = self._normalise(self.output[:, :count], self.offset)
        self.labels[self.offset : until] = labels_from_logits(block, self.labels.dtype)
        kept = self.output.shape[1] - count
        self.output[:, :kept] = self.output[:, count:].clone()
        if self.grid.blended:
            self.output[:, kept:] = 0
        self.offset = until

    def result(self) -> np.ndarray:
        """Class labels (*spatial) of the whole image."""
        assert self.output is not None, "no tile was added"
        self._finish(self.grid.axes[0].length)
        return self.labels
