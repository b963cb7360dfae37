"""Patch geometry: random crops with foreground oversampling and context margins.

A training patch is a *target* region (what the loss sees) plus, for valid-padding
networks, the context margin the network consumes around it (the overlap-tile idea of the
U-Net paper applied to training). Where the window leaves the image, the image is mirrored.
Whole images for validation and testing are padded the same way; target pixels that only
exist because of padding are marked ``ignore_index``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from unetlab.data.transforms.elastic import reflect_indices

OutputShape = Callable[[tuple[int, ...]], tuple[int, ...]]

MAX_CONTEXT_SEARCH = 4096
"""Largest input size tried when looking for a valid input size."""


class ContextPlanner:
    """Input sizes a network needs for a wanted output size, one axis at a time.

    Args:
        output_shape: The network's ``output_shape`` for a valid-padding network, or
            ``None`` for same padding (input size = output size).
    """

    def __init__(self, output_shape: OutputShape | None = None) -> None:
        self.output_shape = output_shape
        self._plans: dict[int, tuple[int, int]] = {}

    @property
    def valid(self) -> bool:
        """Whether the network's output is smaller than its input."""
        return self.output_shape is not None

    def plan(self, size: int) -> tuple[int, int]:
        """``(input_size, output_size)``: the smallest input whose output covers ``size``.

        Raises:
            ValueError: If no input size up to ``MAX_CONTEXT_SEARCH`` works.
        """
        if self.output_shape is None:
            return size, size
        if size not in self._plans:
            self._plans[size] = self._search(size)
        return self._plans[size]

    def _search(self, size: int) -> tuple[int, int]:
        assert self.output_shape is not None
        for candidate in range(size, MAX_CONTEXT_SEARCH + 1):
            try:
                output = self.output_shape((candidate, candidate))[0]
            except ValueError:
                continue
            if output >= size:
                if (candidate - output) % 2:
                    raise ValueError(
                        f"input {candidate} gives output {output}: the context margin is not "
                        "symmetric; this network cannot be trained on patches"
                    )
                return candidate, output
        raise ValueError(
            f"no input size up to {MAX_CONTEXT_SEARCH} gives an output of {size} pixels; "
            "lower data.patch_size"
        )


def crop_reflect(array: np.ndarray, top: int, left: int, height: int, width: int) -> np.ndarray:
    """``array[top:top+height, left:left+width]``, mirrored where the window leaves it."""
    rows, cols = array.shape[:2]
    if top >= 0 and left >= 0 and top + height <= rows and left + width <= cols:
        return array[top : top + height, left : left + width]
    row_index = reflect_indices(np.arange(top, top + height), rows)
    col_index = reflect_indices(np.arange(left, left + width), cols)
    return array[row_index[:, None], col_index[None, :]]


@dataclass(frozen=True)
class Window:
    """A crop: the input window and where its target region starts inside it."""

    top: int
    left: int
    height: int
    width: int
    target_height: int
    target_width: int

    @property
    def margin(self) -> tuple[int, int]:
        """Context pixels on each side (rows, columns)."""
        return (self.height - self.target_height) // 2, (self.width - self.target_width) // 2


class PatchSampler:
    """Chooses training windows: random target crops, some centred on foreground.

    Args:
        planner: Context sizes of the network.
        patch_size: Side of the target region (the network's output); ``None`` = the whole
            image. For valid-padding networks it is rounded up to an output size the network
            can produce, and the input window is larger by the context margin.
        foreground_fraction: Fraction of patches centred on a random foreground pixel
            (any class other than 0).
    """

    def __init__(
        self, planner: ContextPlanner, patch_size: int | None, foreground_fraction: float = 0.0
    ) -> None:
        if patch_size is not None and patch_size < 1:
            raise ValueError(f"data.patch_size={patch_size} must be >= 1 (or null)")
        if not 0 <= foreground_fraction <= 1:
            raise ValueError(f"data.foreground_fraction={foreground_fraction} must be in [0, 1]")
        self.planner = planner
        self.patch_size = patch_size
        self.foreground_fraction = foreground_fraction

    @property
    def sizes(self) -> tuple[int, int] | None:
        """``(input_size, target_size)`` of training patches, or None for whole images."""
        return None if self.patch_size is None else self.planner.plan(self.patch_size)

    def whole_image(self, shape: tuple[int, int]) -> Window:
        """The window holding a whole image plus its context: its target covers the image."""
        (in_h, out_h), (in_w, out_w) = self.planner.plan(shape[0]), self.planner.plan(shape[1])
        top, left = -((in_h - out_h) // 2), -((in_w - out_w) // 2)
        return Window(top, left, in_h, in_w, out_h, out_w)

    def sample(
        self, shape: tuple[int, int], foreground: np.ndarray | None, rng: np.random.Generator
    ) -> Window:
        """A random training window for an image of ``shape``.

        Args:
            shape: Image height and width.
            foreground: Flat indices of the image's foreground pixels (or None).
            rng: Source of randomness.
        """
        if self.patch_size is None:
            return self.whole_image(shape)
        size, target = self.planner.plan(self.patch_size)
        use_foreground = (
            foreground is not None
            and foreground.size > 0
            and rng.random() < self.foreground_fraction
        )
        if use_foreground:
            centre = np.unravel_index(int(foreground[rng.integers(foreground.size)]), shape)
            starts = [
                int(np.clip(c - target // 2, 0, max(extent - target, 0)))
                for c, extent in zip(centre, shape, strict=True)
            ]
        else:
            starts = [int(rng.integers(max(extent - target, 0) + 1)) for extent in shape]
        margin = (size - target) // 2
        return Window(starts[0] - margin, starts[1] - margin, size, size, target, target)


def cut_window(
    window: Window,
    image: np.ndarray,
    mask: np.ndarray,
    weight_map: np.ndarray | None,
    ignore_index: int,
    label_padding: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Image, mask and weight map of a window, mirrored beyond the image.

    Args:
        window: The crop.
        image: (H, W, C) image.
        mask: (H, W) classes.
        weight_map: (H, W) weights, or None.
        ignore_index: Mask value of padded pixels when ``label_padding`` is off.
        label_padding: Mirror labels too (training crops); otherwise pixels outside the
            image get ``ignore_index`` and weight 0 (whole-image evaluation).
    """
    args = (window.top, window.left, window.height, window.width)
    image_crop = crop_reflect(image, *args)
    if label_padding:
        weights = None if weight_map is None else crop_reflect(weight_map, *args)
        return image_crop, crop_reflect(mask, *args), weights
    mask_crop = np.full((window.height, window.width), ignore_index, mask.dtype)
    weights = None if weight_map is None else np.zeros(mask_crop.shape, weight_map.dtype)
    rows = slice(max(-window.top, 0), min(mask.shape[0] - window.top, window.height))
    cols = slice(max(-window.left, 0), min(mask.shape[1] - window.left, window.width))
    source = (
        slice(rows.start + window.top, rows.stop + window.top),
        slice(cols.start + window.left, cols.stop + window.left),
    )
    mask_crop[rows, cols] = mask[source]
    if weights is not None and weight_map is not None:
        weights[rows, cols] = weight_map[source]
    return image_crop, mask_crop, weights
