"""Dataset sources: where the image / mask pairs of a dataset come from."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from unetlab.data.samples import Sample, find_samples


class DatasetSource(Protocol):
    """Anything that can list a dataset's samples.

    ``prepare`` runs once in the main process (generate, download); ``samples`` lists
    where every image and mask is.
    """

    def prepare(self) -> Path: ...

    def samples(self) -> list[Sample]: ...


class FolderSource:
    """An ``images/`` + ``masks/`` (+ optional ``instances/``) folder.

    Args:
        root: The dataset folder.
        mask_suffix: Mask file stem = image stem + this suffix (e.g. ``"_mask"``).
        images_dir: Sub-folder of the images.
        masks_dir: Sub-folder of the masks.
        instances_dir: Optional sub-folder of instance labels named like the images.
    """

    def __init__(
        self,
        root: str | Path,
        mask_suffix: str = "",
        images_dir: str = "images",
        masks_dir: str = "masks",
        instances_dir: str | None = "instances",
    ) -> None:
        self.root = Path(root)
        self.mask_suffix = mask_suffix
        self.images_dir = images_dir
        self.masks_dir = masks_dir
        self.instances_dir = instances_dir

    def prepare(self) -> Path:
        """Check the folder exists and return it."""
        if not self.root.is_dir():
            raise FileNotFoundError(
                f"{self.root}: dataset folder not found; set data.root=PATH to a folder with "
                f"{self.images_dir}/ and {self.masks_dir}/"
            )
        return self.root

    def samples(self) -> list[Sample]:
        """Pair the images with their masks (and instance labels)."""
        return find_samples(
            self.prepare(), self.images_dir, self.masks_dir, self.instances_dir, self.mask_suffix
        )
