"""``data=folder``: layouts, file formats, mask encodings and the errors for bad inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from hydra.utils import instantiate
from PIL import Image

from unetlab.data import BiomedicalDataModule, FolderSource

SIZE = 16


def save(path: Path, array: np.ndarray) -> None:
    """Write an array as PNG, TIFF, JPEG or BMP (by suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix in (".tif", ".tiff"):
        tifffile.imwrite(path, array)
    else:
        Image.fromarray(array).save(path)


def blob_mask(seed: int, size: int = SIZE) -> np.ndarray:
    """A binary (0/1) mask with a rectangle of foreground."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((size, size), np.uint8)
    top, left = rng.integers(0, size // 2, 2)
    mask[top : top + size // 3, left : left + size // 3] = 1
    return mask


def write_dataset(
    root: Path,
    count: int = 6,
    mask_values: tuple[int, int] = (0, 1),
    image_suffix: str = ".png",
    mask_suffix: str = ".png",
    mask_name_suffix: str = "",
    size: int = SIZE,
) -> Path:
    """``root/images/img_i`` (uint8, bright where the mask is set) + ``root/masks/img_i``."""
    for index in range(count):
        mask = blob_mask(index, size)
        image = (40 + 150 * mask).astype(np.uint8)
        save(root / "images" / f"img_{index}{image_suffix}", image)
        stored = np.where(mask > 0, mask_values[1], mask_values[0]).astype(np.uint8)
        save(root / "masks" / f"img_{index}{mask_name_suffix}{mask_suffix}", stored)
    return root


def datamodule(root: Path, **kwargs) -> BiomedicalDataModule:
    source_keys = {"mask_suffix", "instances_dir"}
    source = FolderSource(root, **{k: kwargs.pop(k) for k in list(kwargs) if k in source_keys})
    options = {"batch_size": 2, "val_fraction": 0.2, "test_fraction": 0.2, **kwargs}
    return BiomedicalDataModule(source, **options)


def all_masks(dm: BiomedicalDataModule) -> np.ndarray:
    return np.concatenate([s.mask.ravel() for d in dm.datasets.values() for s in d.samples])


@pytest.mark.parametrize(
    ("image_suffix", "mask_suffix"),
    [(".png", ".png"), (".tif", ".tif"), (".jpg", ".png"), (".bmp", ".bmp")],
)
def test_formats_load_and_batch(tmp_path: Path, image_suffix: str, mask_suffix: str) -> None:
    dm = datamodule(write_dataset(tmp_path, image_suffix=image_suffix, mask_suffix=mask_suffix))
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (2, 1, SIZE, SIZE) and batch["mask"].shape == (2, SIZE, SIZE)
    assert set(np.unique(all_masks(dm))) == {0, 1}


def test_rgb_and_16_bit_images(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for index in range(5):
        save(
            tmp_path / "images" / f"rgb_{index}.png",
            rng.integers(0, 255, (SIZE, SIZE, 3), np.uint8),
        )
        save(tmp_path / "masks" / f"rgb_{index}.png", blob_mask(index))
    dm = datamodule(tmp_path, in_channels=3)
    dm.setup()
    assert next(iter(dm.train_dataloader()))["image"].shape[1] == 3

    deep = tmp_path / "deep"
    for index in range(5):
        image = rng.integers(1000, 1200, (SIZE, SIZE)).astype(np.uint16)
        image[0, 0] = 60000  # a hot pixel does not squash the range
        save(deep / "images" / f"d_{index}.tif", image)
        save(deep / "masks" / f"d_{index}.png", blob_mask(index))
    dm = datamodule(deep, mean=[0.5], std=[1.0])
    dm.setup()
    decoded = dm.datasets["train"].samples[0].image
    assert decoded.dtype == np.float32 and np.median(decoded) == pytest.approx(0.5, abs=0.2)


def test_mask_suffix_rule(tmp_path: Path) -> None:
    write_dataset(tmp_path, mask_name_suffix="_mask")
    dm = datamodule(tmp_path, mask_suffix="_mask")
    dm.setup()
    assert sum(len(v) for v in dm.split.values()) == 6


def test_binary_encoding_and_mapping_read_0_255_masks(tmp_path: Path) -> None:
    write_dataset(tmp_path, mask_values=(0, 255))
    for options in ({"mask_encoding": "binary"}, {"mask_mapping": {0: 0, 255: 1}}):
        dm = datamodule(tmp_path, **options)
        dm.setup()
        assert set(np.unique(all_masks(dm))) == {0, 1}


def test_mapping_can_invert_classes_and_ignore_value_is_skipped(tmp_path: Path) -> None:
    write_dataset(tmp_path, mask_values=(0, 255))
    save(tmp_path / "masks" / "img_0.png", np.full((SIZE, SIZE), 128, np.uint8))
    dm = datamodule(tmp_path, mask_mapping={0: 1, 255: 0}, ignore_value=128, split_seed=3)
    dm.setup()
    samples = {s.name: s for d in dm.datasets.values() for s in d.samples}
    assert np.all(samples["img_0"].mask == -100)
    original = blob_mask(1)
    assert np.array_equal(samples["img_1"].mask, 1 - original)


def test_instance_masks_become_classes_and_feed_the_weight_map(tmp_path: Path) -> None:
    for index in range(5):
        instances = np.zeros((SIZE, SIZE), np.uint16)
        instances[2:7, 2:7] = 1
        instances[2:7, 7:12] = 300 + index  # touching the first object
        save(tmp_path / "images" / f"c_{index}.png", (instances > 0).astype(np.uint8) * 200)
        save(tmp_path / "masks" / f"c_{index}.tif", instances)
    seen = []

    def weight_map_fn(objects: np.ndarray, mask: np.ndarray) -> np.ndarray:
        seen.append(objects)
        return np.ones(mask.shape, np.float32)

    dm = datamodule(tmp_path, mask_encoding="instances")
    dm.weight_map_fn = weight_map_fn
    dm.setup()
    assert set(np.unique(all_masks(dm))) == {0, 1}
    assert len(seen) == 5 and all(len(np.unique(objects)) == 3 for objects in seen)
    assert "weight_map" in next(iter(dm.train_dataloader()))


def test_object_class_selects_the_weight_map_objects(tmp_path: Path) -> None:
    write_dataset(tmp_path, count=5)
    seen = []
    for object_class in (1, 0):
        dm = datamodule(tmp_path, object_class=object_class)
        dm.weight_map_fn = lambda objects, mask: (seen.append((objects, mask)), mask * 1.0)[1]
        dm.setup()
        objects, mask = seen[-1]
        assert np.array_equal(objects > 0, mask == object_class)


def test_folder_config_composes_and_loads(make_config, tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "mine", mask_values=(0, 255))
    cfg = make_config(
        ["data=folder", f"data.root={root}", "data.mask_mapping={0:0,255:1}", "data.batch_size=2"],
        tiny=False,
    )
    dm = instantiate(cfg.data)
    dm.setup()
    assert next(iter(dm.train_dataloader()))["image"].shape == (2, 1, SIZE, SIZE)
    assert (Path(cfg.paths.output_dir) / "split.json").exists()


# Bad inputs: each is found in setup (main process) with a one-line message naming the file.


def expect_error(dm: BiomedicalDataModule, *fragments: str) -> str:
    with pytest.raises((ValueError, FileNotFoundError)) as info:
        dm.setup()
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_missing_or_empty_folder(tmp_path: Path) -> None:
    expect_error(datamodule(tmp_path / "nowhere"), str(tmp_path / "nowhere"), "data.root")
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    expect_error(datamodule(tmp_path), str(tmp_path / "images"), "no images")


def test_image_without_mask_and_mask_without_image(tmp_path: Path) -> None:
    write_dataset(tmp_path)
    (tmp_path / "masks" / "img_2.png").unlink()
    expect_error(datamodule(tmp_path), str(tmp_path / "images" / "img_2.png"), "no mask")
    save(tmp_path / "masks" / "img_2.png", blob_mask(2))
    save(tmp_path / "masks" / "stray.png", blob_mask(0))
    expect_error(datamodule(tmp_path), str(tmp_path / "masks" / "stray.png"), "without image")


def test_image_mask_size_mismatch(tmp_path: Path) -> None:
    write_dataset(tmp_path)
    save(tmp_path / "masks" / "img_3.png", np.zeros((SIZE, SIZE + 4), np.uint8))
    expect_error(datamodule(tmp_path), str(tmp_path / "masks" / "img_3.png"), "20x16", "16x16")


@pytest.mark.parametrize("damage", ["truncated", "empty", "not_an_image"])
def test_unreadable_file(tmp_path: Path, damage: str) -> None:
    write_dataset(tmp_path)
    path = tmp_path / "images" / "img_1.png"
    data = path.read_bytes()
    contents = {"truncated": data[: len(data) // 2], "empty": b"", "not_an_image": b"hello"}
    path.write_bytes(contents[damage])
    expect_error(datamodule(tmp_path), str(path), "cannot read")


def test_0_255_masks_with_two_classes_say_how_to_fix(tmp_path: Path) -> None:
    write_dataset(tmp_path, mask_values=(0, 255))
    message = expect_error(datamodule(tmp_path), "masks/img_0.png", "[255]")
    assert "data.mask_encoding=binary" in message and "'data.mask_mapping={0:0,255:1}'" in message


def test_unmapped_values_and_instance_hint(tmp_path: Path) -> None:
    write_dataset(tmp_path, mask_values=(0, 255))
    expect_error(datamodule(tmp_path, mask_mapping={0: 0, 200: 1}), "img_0.png", "[255]")
    labels = np.arange(SIZE * SIZE, dtype=np.uint16).reshape(SIZE, SIZE) % 7
    save(tmp_path / "masks" / "img_0.png", labels.astype(np.uint8))
    expect_error(
        datamodule(tmp_path, mask_encoding="classes"), "img_0.png", "data.mask_encoding=instances"
    )


def test_channel_count_mismatch(tmp_path: Path) -> None:
    write_dataset(tmp_path)
    save(tmp_path / "images" / "img_4.png", np.zeros((SIZE, SIZE, 3), np.uint8))
    expect_error(datamodule(tmp_path), "img_4.png", "3 channels", "model.in_channels=3")
    expect_error(datamodule(tmp_path, in_channels=3), "img_0.png", "1 channels")


def test_training_images_of_different_sizes_need_patches(tmp_path: Path) -> None:
    write_dataset(tmp_path, count=4)
    write_dataset(tmp_path / "big", count=4, size=24)
    for path in (tmp_path / "big").glob("*/*.png"):
        path.rename(tmp_path / path.parent.name / f"big_{path.name}")
    expect_error(datamodule(tmp_path, val_fraction=0.25), "data.patch_size")
    dm = BiomedicalDataModule(FolderSource(tmp_path), patch_size=12, batch_size=2)
    dm.setup()
    assert next(iter(dm.train_dataloader()))["image"].shape == (2, 1, 12, 12)
    assert dm.eval_batch_size == 1
