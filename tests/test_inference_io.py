"""Finding and reading inputs; writing masks, probabilities and overlays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from unetlab.inference import outputs
from unetlab.inference.io import (
    display_range,
    find_inputs,
    label_dtype,
    mask_path,
    overlay_rgb,
    read_input,
    write_mask,
    write_probabilities,
)
from unetlab.inference.outputs import labels_from_logits, probabilities_from_logits

RNG = np.random.default_rng(0)


def save_png(path: Path, shape: tuple[int, ...]) -> Path:
    Image.fromarray(RNG.integers(0, 256, shape, dtype=np.uint8)).save(path)
    return path


def test_find_inputs_from_file_folder_and_glob(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    a = save_png(tmp_path / "a.png", (8, 8))
    b = save_png(tmp_path / "b.PNG", (8, 8))
    c = save_png(tmp_path / "sub" / "c.png", (8, 8))
    (tmp_path / "notes.txt").write_text("not an image")
    assert find_inputs(a) == [a]
    assert find_inputs(tmp_path) == [a, b]
    assert find_inputs(f"{tmp_path}/**/*.png") == [a, c]


def test_find_inputs_errors_name_the_input(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"missing\.png: no such file or folder"):
        find_inputs(tmp_path / "missing.png")
    with pytest.raises(FileNotFoundError, match="the folder holds no images"):
        find_inputs(tmp_path)
    with pytest.raises(FileNotFoundError, match="the pattern matches no images"):
        find_inputs(f"{tmp_path}/*.tif")


def test_read_png_gray_and_rgb(tmp_path: Path) -> None:
    gray = read_input(save_png(tmp_path / "g.png", (9, 11)))
    assert gray.items.shape == (1, 9, 11, 1) and not gray.stacked
    rgb = read_input(save_png(tmp_path / "c.png", (9, 11, 3)))
    assert rgb.items.shape == (1, 9, 11, 3)


def test_read_tiff_stacks_however_they_were_written(tmp_path: Path) -> None:
    pages = RNG.integers(0, 60000, (3, 10, 12), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "stack.tif", pages, photometric="minisblack")
    tifffile.imwrite(tmp_path / "fiji.tif", pages, imagej=True, metadata={"axes": "ZYX"})
    for page in pages:
        tifffile.imwrite(tmp_path / "appended.tif", page, append=True)
    for name in ("stack.tif", "fiji.tif", "appended.tif"):
        image = read_input(tmp_path / name)
        assert image.stacked, name
        np.testing.assert_array_equal(image.items[..., 0], pages)


def test_read_tiff_channels_and_volumes(tmp_path: Path) -> None:
    rgb = RNG.integers(0, 256, (10, 12, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb)
    image = read_input(tmp_path / "rgb.tif")
    assert image.items.shape == (1, 10, 12, 3) and not image.stacked
    volume = RNG.normal(size=(5, 10, 12)).astype(np.float32)
    tifffile.imwrite(tmp_path / "volume.tif", volume, metadata={"axes": "ZYX"})
    image = read_input(tmp_path / "volume.tif", spatial_dims=3)
    assert image.items.shape == (1, 5, 10, 12, 1) and not image.stacked
    with pytest.raises(ValueError, match=r"g\.png: image has axes YX \(.* model is 3-D"):
        read_input(save_png(tmp_path / "g.png", (9, 11)), spatial_dims=3)


@pytest.mark.parametrize("name", ["broken.png", "broken.tif"])
def test_unreadable_files_raise_one_line_naming_the_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"\x89PNG\r\n\x1a\n not really" if name.endswith("png") else b"II*\x00junk")
    with pytest.raises(ValueError, match=rf"{name}: cannot read image") as error:
        read_input(path)
    assert "\n" not in str(error.value)


def test_mask_path_and_round_trips(tmp_path: Path) -> None:
    png = read_input(save_png(tmp_path / "g.png", (9, 11)))
    assert mask_path(tmp_path, png, "auto") == tmp_path / "masks" / "g.png"
    assert mask_path(tmp_path, png, "tif") == tmp_path / "masks" / "g.tif"
    with pytest.raises(ValueError, match="mask_format='jpg'"):
        mask_path(tmp_path, png, "jpg")
    labels = RNG.integers(0, 3, (9, 11)).astype(label_dtype(3))
    write_mask(tmp_path / "masks" / "g.png", labels)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "masks" / "g.png")), labels)
    many = RNG.integers(0, 300, (2, 9, 11)).astype(label_dtype(300))
    assert many.dtype == np.uint16
    write_mask(tmp_path / "stack.tif", many)
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "stack.tif"), many)
    probabilities = RNG.random((2, 9, 11)).astype(np.float32)
    write_probabilities(tmp_path / "p.tif", probabilities, "CYX")
    with tifffile.TiffFile(tmp_path / "p.tif") as tiff:
        assert tiff.series[0].axes == "CYX"
        stored = tiff.asarray()
    assert stored.dtype == np.float16
    np.testing.assert_allclose(stored, probabilities, atol=1e-3)


def test_overlay_stretches_the_image_and_tints_classes() -> None:
    image = np.linspace(10, 60, 48, dtype=np.float32).reshape(6, 8, 1)
    labels = np.zeros((6, 8), np.uint8)
    labels[1:5, 2:7] = 1
    rgb = overlay_rgb(image, labels, alpha=0.5, chunk_rows=4)
    assert rgb.shape == (6, 8, 3) and rgb.dtype == np.uint8
    low, high = display_range(image)[:, 0]
    grey = np.clip((image[..., 0] - low) / (high - low) * 255, 0, 255)
    assert rgb[0, 0].tolist() == [0, 0, 0] and rgb[-1, -1].tolist() == [255, 255, 255]
    np.testing.assert_array_equal(rgb[0, 3], np.rint([grey[0, 3]] * 3))
    np.testing.assert_array_equal(rgb[1, 2], [255, 127, 14])  # outline: opaque class colour
    np.testing.assert_array_equal(rgb[2, 3], np.rint((grey[2, 3] + np.array([255, 127, 14])) / 2))


def test_labels_and_probabilities_slab_by_slab(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outputs, "SLAB_ELEMENTS", 50)
    logits = torch.randn(3, 17, 13)
    np.testing.assert_array_equal(labels_from_logits(logits), logits.argmax(0).numpy())
    probabilities = probabilities_from_logits(logits)
    assert probabilities.dtype == np.float16
    np.testing.assert_allclose(probabilities, torch.softmax(logits, 0).numpy(), atol=1e-3)
    single = torch.randn(1, 5, 4, 3)
    np.testing.assert_array_equal(labels_from_logits(single), (single[0] > 0).numpy())
    np.testing.assert_allclose(
        probabilities_from_logits(single), torch.sigmoid(single).numpy(), atol=1e-3
    )
