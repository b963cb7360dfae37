"""Finding image / mask pairs (or volume / label-volume pairs) in a dataset folder."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from unetlab.data.formats import SAMPLE_SUFFIXES, file_stem, file_suffix, is_tiff
from unetlab.data.io import count_images, describe


@dataclass(frozen=True)
class Sample:
    """Where one image, its mask and (optionally) its instance labels are stored.

    Attributes:
        name: Unique name of the sample (the image's file stem, or ``slice_NN``).
        image: Image file.
        mask: Mask file.
        instances: Instance-label file (0 = background, 1..N objects), if any.
        page: Page of multi-page TIFF files holding image and mask; ``None`` for single images.
    """

    name: str
    image: Path
    mask: Path
    instances: Path | None = None
    page: int | None = None

    @property
    def image_origin(self) -> str:
        """The image as named in messages."""
        return describe(self.image, self.page)

    @property
    def mask_origin(self) -> str:
        """The mask as named in messages."""
        return describe(self.mask, self.page)


def _files_by_stem(folder: Path, suffix: str = "") -> dict[str, Path]:
    files = {}
    for path in sorted(folder.iterdir()):
        stem = file_stem(path)
        if file_suffix(path) in SAMPLE_SUFFIXES and stem.endswith(suffix):
            files[stem[: len(stem) - len(suffix)] if suffix else stem] = path
    return files


def find_samples(
    root: str | Path,
    images_dir: str = "images",
    masks_dir: str = "masks",
    instances_dir: str | None = "instances",
    mask_suffix: str = "",
) -> list[Sample]:
    """Pair ``root/images/<name>.*`` with ``root/masks/<name><mask_suffix>.*``.

    Image and mask may have different formats (``a.jpg`` with ``a_mask.png``).

    Args:
        root: The dataset folder.
        images_dir: Sub-folder of the images.
        masks_dir: Sub-folder of the masks.
        instances_dir: Optional sub-folder of instance-label images named like the images.
        mask_suffix: Mask file stem = image stem + this suffix.

    Raises:
        FileNotFoundError: The folder or a sub-folder is missing or empty.
        ValueError: An image has no mask or a mask has no image.
    """
    root = Path(root)
    image_folder, mask_folder = root / images_dir, root / masks_dir
    for folder in (image_folder, mask_folder):
        if not folder.is_dir():
            raise FileNotFoundError(
                f"{folder}: folder not found; expected {root}/{images_dir}/ and "
                f"{root}/{masks_dir}/ (set data.root=PATH)"
            )
    images, masks = _files_by_stem(image_folder), _files_by_stem(mask_folder, mask_suffix)
    if not images:
        raise FileNotFoundError(
            f"{image_folder}: no images ({', '.join(SAMPLE_SUFFIXES)}) found; "
            "put the training images there or set data.root=PATH"
        )
    missing_masks = sorted(set(images) - set(masks))
    if missing_masks:
        hint = (
            f"set data.source.mask_suffix (now {mask_suffix!r})"
            if masks
            else f"put the masks in {mask_folder} or set data.source.mask_suffix"
        )
        raise ValueError(
            f"{images[missing_masks[0]]}: no mask {mask_folder}/{missing_masks[0]}{mask_suffix}.* "
            f"({len(missing_masks)} images without mask); add the masks or {hint}"
        )
    orphan_masks = sorted(set(masks) - set(images))
    if orphan_masks:
        raise ValueError(
            f"{masks[orphan_masks[0]]}: mask without image {image_folder}/{orphan_masks[0]}.* "
            f"({len(orphan_masks)} masks without image); add the image or remove the mask"
        )
    instances = {}
    if instances_dir and (root / instances_dir).is_dir():
        instances = _files_by_stem(root / instances_dir)
    return [Sample(name, images[name], masks[name], instances.get(name)) for name in sorted(images)]


def pages_of_stacks(samples: Sequence[Sample]) -> list[Sample]:
    """The 2-D images of a dataset: a TIFF stack becomes one sample per page.

    Pages are read as :func:`unetlab.data.io.read_pixels` arranges them (the images
    ``unetlab-predict`` sees in the file) and named ``<name>_000``, ``<name>_001``, ...
    Their masks (and instance labels) are the pages of stacks of the same length.

    Raises:
        ValueError: A mask or instance-label file holds another number of images.
    """
    pages: list[Sample] = []
    for sample in samples:
        count = 1
        if sample.page is None and is_tiff(sample.image):
            count = count_images(sample.image)
        if count == 1:
            pages.append(sample)
            continue
        for labels in (sample.mask, sample.instances):
            if labels is not None and count_images(labels) != count:
                raise ValueError(
                    f"{labels}: {count_images(labels)} label image(s) for the {count} images "
                    f"of the stack {sample.image}; give one label page per image page"
                )
        pages += [replace(sample, name=f"{sample.name}_{i:03d}", page=i) for i in range(count)]
    return pages
