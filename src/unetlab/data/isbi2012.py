"""The ISBI 2012 EM segmentation challenge (the U-Net paper's Table 1 data).

Two layouts are read:

- the challenge's own: multi-page TIFF stacks ``train-volume.tif`` (30 slices, 512 x 512,
  8-bit) and ``train-labels.tif`` (0 = membrane, 255 = cell interior);
- a folder ``images/`` + ``masks/`` of PNGs with the same conventions.

Which value is which class is set by ``data.mask_mapping`` (membrane = class 1 by default).
"""

from __future__ import annotations

import logging
from pathlib import Path

from unetlab.data.download import download_file
from unetlab.data.io import count_images
from unetlab.data.samples import Sample
from unetlab.data.sources import FolderSource

log = logging.getLogger(__name__)

VOLUME = "train-volume.tif"
LABELS = "train-labels.tif"


class Isbi2012(FolderSource):
    """Source of the ISBI 2012 training data in either layout, optionally downloaded.

    The download is off by default. When on, each stack is fetched from its URL, checked
    against its SHA-256 and written atomically, with retries.

    Args:
        root: Folder with the stacks, or with ``images/`` + ``masks/``.
        download: Fetch the stacks when ``root`` has neither layout.
        volume_url: URL of ``train-volume.tif``.
        volume_sha256: Its SHA-256.
        labels_url: URL of ``train-labels.tif``.
        labels_sha256: Its SHA-256.
        retries: Download attempts per file.
        mask_suffix: Mask file stem = image stem + this suffix (folder layout).
        images_dir: Sub-folder of the images (folder layout).
        masks_dir: Sub-folder of the masks (folder layout).
        instances_dir: Optional sub-folder of instance labels (folder layout).
    """

    def __init__(
        self,
        root: str | Path,
        download: bool = False,
        volume_url: str | None = None,
        volume_sha256: str | None = None,
        labels_url: str | None = None,
        labels_sha256: str | None = None,
        retries: int = 3,
        mask_suffix: str = "",
        images_dir: str = "images",
        masks_dir: str = "masks",
        instances_dir: str | None = "instances",
    ) -> None:
        super().__init__(root, mask_suffix, images_dir, masks_dir, instances_dir)
        self.download = download
        self.downloads = {
            "volume": (VOLUME, volume_url, volume_sha256),
            "labels": (LABELS, labels_url, labels_sha256),
        }
        self.retries = retries

    @property
    def has_stacks(self) -> bool:
        """Whether ``root`` holds the two TIFF stacks."""
        return (self.root / VOLUME).is_file() and (self.root / LABELS).is_file()

    @property
    def has_folder(self) -> bool:
        """Whether ``root`` holds ``images/``."""
        return (self.root / self.images_dir).is_dir()

    def prepare(self) -> Path:
        """Download the stacks if asked to and needed; return ``root``."""
        if self.has_stacks or self.has_folder:
            return self.root
        if not self.download:
            raise FileNotFoundError(
                f"{self.root}: no ISBI 2012 data (expected {VOLUME} + {LABELS}, or "
                f"{self.images_dir}/ + {self.masks_dir}/); set data.root=PATH, or "
                "data.source.download=true with the stacks' URLs and SHA-256 "
                "(data.source.volume_url, ...)"
            )
        for key, (name, url, sha256) in self.downloads.items():
            if not url or not sha256:
                raise ValueError(
                    f"{self.root / name}: cannot download without URL and SHA-256; set "
                    f"data.source.{key}_url and data.source.{key}_sha256"
                )
            log.info("downloading %s to %s", url, self.root / name)
            download_file(url, self.root / name, sha256, retries=self.retries)
        return self.root

    def samples(self) -> list[Sample]:
        """One sample per slice: pages of the stacks, or pairs of the folder."""
        root = self.prepare()
        if not self.has_stacks:
            return super().samples()
        volume, labels = root / VOLUME, root / LABELS
        pages, label_pages = count_images(volume), count_images(labels)
        if pages != label_pages:
            raise ValueError(
                f"{labels}: {label_pages} label slices for {pages} image slices in {volume}; "
                "the stacks must have one label slice per image slice"
            )
        return [Sample(f"slice_{i:02d}", volume, labels, page=i) for i in range(pages)]
