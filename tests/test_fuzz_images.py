"""Fuzzing image and mask files through the readers and the sample decoder.

Every file either decodes to exactly what was written (or, for random bytes, to what a second
decoder, imagecodecs' libpng / libtiff / libjpeg / BMP codecs, reads), or raises one
``ValueError`` line that names the file: never another exception, a hang, or a silently
different array.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import imagecodecs
import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from unetlab.data.decoding import SampleDecoder
from unetlab.data.io import read_image, read_mask
from unetlab.data.masks import MaskEncoding
from unetlab.data.samples import Sample

FUZZ = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
SUFFIXES = (".png", ".tif", ".jpg", ".bmp")
# Real headers in front of random bytes get the fuzzing past the format detection.
HEADERS = (b"", b"\x89PNG\r\n\x1a\n", b"II*\x00", b"MM\x00*", b"\xff\xd8\xff\xe0", b"BM")
LOSSLESS = (".png", ".tif", ".bmp")


def write_image(path: Path, array: np.ndarray) -> None:
    if path.suffix == ".tif":
        tifffile.imwrite(path, array)
    else:
        Image.fromarray(array).save(path)


def assert_clear_error(error: ValueError, path: Path) -> None:
    message = str(error)
    assert message.startswith(str(path)), message
    assert "\n" not in message


def reference_decode(path: Path) -> np.ndarray | None:
    """The file as imagecodecs decodes it, as (H, W, C); None where it cannot."""
    try:
        array = np.asarray(imagecodecs.imread(path))
    except Exception:
        return None
    return array[..., None] if array.ndim == 2 else array


def read_or_error(reader, path: Path) -> np.ndarray | None:
    try:
        return reader(path)
    except ValueError as error:
        assert_clear_error(error, path)
        return None


@pytest.mark.timeout(300)
@FUZZ
@given(
    suffix=st.sampled_from(SUFFIXES),
    header=st.sampled_from(HEADERS),
    body=st.binary(max_size=600),
)
def test_random_bytes_decode_or_raise_naming_the_file(tmp_path: Path, suffix, header, body):
    path = tmp_path / f"random{suffix}"
    path.write_bytes(header + body)
    image = read_or_error(read_image, path)
    mask = read_or_error(read_mask, path)
    if image is None:
        assert mask is None, "a mask decoded from a file that is no image"
        return
    assert image.ndim == 3 and min(image.shape) > 0
    if mask is not None:
        assert np.array_equal(mask, image[..., 0]), "image and mask readers disagree"
    reference = reference_decode(path)
    if reference is not None and reference.shape == image.shape:
        assert np.array_equal(image, reference), "pixels differ from a second decoder"


def test_tiff_without_pages_raises_naming_the_file(tmp_path: Path):
    path = tmp_path / "empty.tif"
    path.write_bytes(b"II*\x00\x00\x00\x00\x00")
    for reader in (read_image, read_mask):
        with pytest.raises(ValueError, match="holds no pixels") as error:
            reader(path)
        assert_clear_error(error.value, path)


@st.composite
def stored_images(draw: st.DrawFn) -> tuple[str, np.ndarray]:
    suffix = draw(st.sampled_from(SUFFIXES))
    dtype = np.uint16 if suffix == ".tif" and draw(st.booleans()) else np.uint8
    channels = draw(st.sampled_from([None, 3]))
    shape = (draw(st.integers(1, 24)), draw(st.integers(1, 24)))
    shape = shape if channels is None else (*shape, channels)
    return suffix, draw(arrays(dtype, shape))


@pytest.mark.timeout(300)
@FUZZ
@given(stored=stored_images(), cut=st.floats(0.0, 1.0))
def test_truncated_files_decode_unchanged_or_raise(tmp_path: Path, stored, cut: float):
    suffix, array = stored
    path = tmp_path / f"image{suffix}"
    write_image(path, array)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * cut)])
    decoded = read_or_error(read_image, path)
    if decoded is None:
        return
    expected = array if array.ndim == 3 else array[..., None]
    if suffix not in LOSSLESS:  # JPEG: the complete file's pixels, not the written ones
        path.write_bytes(data)
        expected = read_image(path)
    assert decoded.shape == expected.shape
    assert np.array_equal(decoded, expected), "a truncated file decoded to other pixels"


def png_declaring(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 16))
        + chunk(b"IEND", b"")
    )


def tiff_declaring(path: Path, width: int, height: int) -> bytes:
    tifffile.imwrite(path, np.zeros((4, 4), np.uint8))
    data = bytearray(path.read_bytes())
    with tifffile.TiffFile(path) as tiff:
        for tag in tiff.pages[0].tags.values():
            if tag.code in (256, 257):
                size = width if tag.code == 256 else height
                struct.pack_into("<H" if tag.dtype == 3 else "<I", data, tag.valueoffset, size)
    return bytes(data)


@pytest.mark.parametrize("size", [(64, 64), (30_000, 30_000), (65_000, 65_000)])
def test_files_declaring_huge_images_raise_naming_the_file(tmp_path: Path, size):
    png = tmp_path / "bomb.png"
    png.write_bytes(png_declaring(*size))
    tif = tmp_path / "bomb.tif"
    tif.write_bytes(tiff_declaring(tif, *size))
    for path in (png, tif):
        with pytest.raises(ValueError) as error:
            read_image(path)
        assert_clear_error(error.value, path)


MASK_DTYPES = (np.uint8, np.uint16, np.int32, np.float32, np.bool_)


@st.composite
def mask_cases(draw: st.DrawFn) -> dict:
    height, width = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    dtype = draw(st.sampled_from(MASK_DTYPES))
    mask_shape = draw(st.sampled_from([(height, width), (height, width), (height + 1, width)]))
    if dtype is np.bool_:
        mask = draw(arrays(dtype, mask_shape))
    elif dtype is np.float32:
        mask = draw(arrays(dtype, mask_shape, elements=st.sampled_from([0.0, 1.0, 0.5, 2.0])))
    else:
        mask = draw(arrays(dtype, mask_shape, elements=st.sampled_from([0, 1, 2, 3, 255])))
    encoding = draw(st.sampled_from(["classes", "binary", "instances"]))
    num_classes = 2 if encoding != "classes" else draw(st.integers(2, 4))
    image = draw(arrays(np.uint8, (height, width)))
    return {"mask": mask, "image": image, "encoding": encoding, "num_classes": num_classes}


@pytest.mark.timeout(300)
@FUZZ
@given(case=mask_cases(), mask_suffix=st.sampled_from([".tif", ".png"]))
def test_random_masks_decode_to_the_right_classes_or_raise(tmp_path: Path, case, mask_suffix):
    mask = case["mask"]
    if mask_suffix == ".png" and mask.dtype not in (np.uint8, np.uint16, np.bool_):
        mask_suffix = ".tif"
    image_path, mask_path = tmp_path / "a.png", tmp_path / f"a_mask{mask_suffix}"
    write_image(image_path, case["image"])
    write_image(mask_path, mask)
    decoder = SampleDecoder(1, MaskEncoding(case["num_classes"], case["encoding"]))
    try:
        decoded = decoder.decode(Sample("a", image_path, mask_path))
    except ValueError as error:
        message = str(error)
        assert message.startswith((str(mask_path), str(image_path))), message
        assert "\n" not in message
        return
    stored = mask.astype(np.int64)
    assert mask.shape == case["image"].shape
    assert mask.dtype.kind != "f", "a floating-point mask was accepted"
    if case["encoding"] == "classes":
        assert stored.max() < case["num_classes"], "mask values outside the classes accepted"
        assert np.array_equal(decoded.mask, stored)
    else:
        assert np.array_equal(decoded.mask, (stored != 0).astype(np.int64))
    assert decoded.image.shape == (*case["image"].shape, 1)
