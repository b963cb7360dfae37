"""Patch geometry of images and volumes: random crops, foreground oversampling, context.

A training patch is a *target* region (what the loss sees) plus, for valid-padding
networks, the context margin the network consumes around it (the overlap-tile idea of the
U-Net paper applied to training). Where the window leaves the image, the image is mirrored.
Whole images for validation and testing are padded the same way; target pixels that only
exist because of padding are marked ``ignore_index``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from unetlab.data.mirror import crop_mirrored

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


@dataclass(frozen=True)
class Window:
    """A crop: the input window and the size of the target region centred in it.

    Attributes:
        start: First position of the input window along every spatial axis.
        size: Input window size along every spatial axis.
        target: Target region size along every spatial axis.
    """

    start: tuple[int, ...]
    size: tuple[int, ...]
    target: tuple[int, ...]

    @property
    def margin(self) -> tuple[int, ...]:
        """Context pixels on each side, per spatial axis."""
        return tuple((n - t) // 2 for n, t in zip(self.size, self.target, strict=True))


class PatchSampler:
    """Chooses training windows: random target crops, some centred on foreground.

    Works on images and volumes alike (any number of spatial axes).

    Args:
        planner: Context sizes of the network.
        patch_size: Size of the target region (the network's output), one for every axis or
            one per axis (e.g. ``[16, 64, 64]`` for anisotropic volumes); ``None`` = the whole
            image. For valid-padding networks it is rounded up to an output size the network
            can produce, and the input window is larger by the context margin.
        foreground_fraction: Fraction of patches centred on a random foreground pixel
            (any class other than 0).
    """

    def __init__(
        self,
        planner: ContextPlanner,
        patch_size: int | Sequence[int] | None,
        foreground_fraction: float = 0.0,
    ) -> None:
        sizes = [patch_size] if isinstance(patch_size, int) else list(patch_size or [])
        if any(size < 1 for size in sizes):
            raise ValueError(f"data.patch_size={patch_size} must be >= 1 (or null)")
        if not 0 <= foreground_fraction <= 1:
            raise ValueError(f"data.foreground_fraction={foreground_fraction} must be in [0, 1]")
        self.planner = planner
        self.patch_size = patch_size
        self.foreground_fraction = foreground_fraction

    def target_shape(self, ndim: int) -> tuple[int, ...] | None:
        """The requested target size along each of ``ndim`` axes (None for whole images)."""
        if self.patch_size is None:
            return None
        if isinstance(self.patch_size, int):
            return (self.patch_size,) * ndim
        sizes = tuple(int(size) for size in self.patch_size)
        if len(sizes) != ndim:
            raise ValueError(
                f"data.patch_size={list(sizes)} has {len(sizes)} sizes for {ndim}-D data; "
                f"give one size or {ndim}"
            )
        return sizes

    def patch_shapes(self, ndim: int) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
        """``(input_shape, target_shape)`` of training patches, or None for whole images."""
        sizes = self.target_shape(ndim)
        if sizes is None:
            return None
        plans = [self.planner.plan(size) for size in sizes]
        return tuple(p[0] for p in plans), tuple(p[1] for p in plans)

    def whole_image(self, shape: tuple[int, ...]) -> Window:
        """The window holding a whole image plus its context: its target covers the image."""
        plans = [self.planner.plan(extent) for extent in shape]
        start = tuple(-((size - target) // 2) for size, target in plans)
        return Window(start, tuple(p[0] for p in plans), tuple(p[1] for p in plans))

    def sample(
        self, shape: tuple[int, ...], foreground: np.ndarray | None, rng: np.random.Generator
    ) -> Window:
        """A random training window for an image or volume of ``shape``.

        Args:
            shape: Spatial shape of the image.
            foreground: Flat indices of the image's foreground pixels (or None).
            rng: Source of randomness.
        """
        shapes = self.patch_shapes(len(shape))
        if shapes is None:
            return self.whole_image(shape)
        size, target = shapes
        use_foreground = (
            foreground is not None
            and foreground.size > 0
            and rng.random() < self.foreground_fraction
        )
        if use_foreground:
            assert foreground is not None
            centre = np.unravel_index(int(foreground[rng.integers(foreground.size)]), shape)
            starts = [
                int(np.clip(c - t // 2, 0, max(extent - t, 0)))
                for c, t, extent in zip(centre, target, shape, strict=True)
            ]
        else:
            starts = [
                int(rng.integers(max(extent - t, 0) + 1))
                for t, extent in zip(target, shape, strict=True)
            ]
        start = tuple(s - (n - t) // 2 for s, n, t in zip(starts, size, target, strict=True))
        return Window(start, size, target)


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
        image: (*spatial, C) image.
        mask: (*spatial) classes.
        weight_map: (*spatial) weights, or None.
        ignore_index: Mask value of padded pixels when ``label_padding`` is off.
        label_padding: Mirror labels too (training crops); otherwise pixels outside the
            image get ``ignore_index`` and weight 0 (whole-image evaluation).
    """
    image_crop = crop_mirrored(image, window.start, window.size)
    if label_padding:
        weights = (
            None if weight_map is None else crop_mirrored(weight_map, window.start, window.size)
        )
        return image_crop, crop_mirrored(mask, window.start, window.size), weights
    mask_crop = paste_into_window(window, mask, ignore_index)
    weights = None if weight_map is None else paste_into_window(window, weight_map, 0)
    return image_crop, mask_crop, weights


def paste_into_window(window: Window, labels: np.ndarray, fill: float) -> np.ndarray:
    """The window of ``labels`` (*spatial), with ``fill`` wherever it leaves the image."""
    crop = np.full(window.size, fill, labels.dtype)
    inside = tuple(
        slice(max(-start, 0), min(extent - start, size))
        for start, size, extent in zip(window.start, window.size, labels.shape, strict=True)
    )
    source = tuple(
        slice(part.start + start, part.stop + start)
        for part, start in zip(inside, window.start, strict=True)
    )
    crop[inside] = labels[source]
    return crop
