"""Volume files (NIfTI, multi-page TIFF): geometry kept on reading and writing, resampling."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import tifffile

from unetlab.data.formats import file_stem, file_suffix
from unetlab.data.io import read_volume
from unetlab.data.resampling import resample_volume, resampled_shape, resize
from unetlab.data.volumes import Volume, write_volume

OBLIQUE_AFFINE = np.array(
    [[0.0, 0.0, -2.0, 10.0], [0.0, 0.8, 0.1, -3.0], [0.5, 0.0, 0.0, 4.0], [0.0, 0.0, 0.0, 1.0]]
)


def world_corners(volume: Volume) -> np.ndarray:
    """World coordinates of the outer corners of the volume's voxel boxes."""
    z, y, x = volume.shape
    corners = np.array(
        [[i, j, k, 1.0] for i in (-0.5, x - 0.5) for j in (-0.5, y - 0.5) for k in (-0.5, z - 0.5)]
    )
    return (volume.affine @ corners.T).T[:, :3]


def test_names_of_nifti_files() -> None:
    assert file_suffix("a/b.NII.GZ") == ".nii.gz" and file_stem("a/b.nii.gz") == "b"
    assert file_suffix("c.tif") == ".tif" and file_stem("c.v2.tif") == "c.v2"


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.float32])
def test_nifti_round_trip_keeps_voxels_affine_and_spacing(
    tmp_path: Path, suffix: str, dtype: type
) -> None:
    array = np.random.default_rng(0).integers(0, 200, (5, 6, 7)).astype(dtype)
    path = write_volume(tmp_path / f"v{suffix}", Volume(array, affine=OBLIQUE_AFFINE, unit="mm"))
    volume = read_volume(path)
    assert volume.array.dtype == dtype and np.array_equal(volume.array, array)
    np.testing.assert_allclose(volume.affine, OBLIQUE_AFFINE)
    np.testing.assert_allclose(volume.spacing, np.linalg.norm(OBLIQUE_AFFINE[:3, :3], axis=0)[::-1])
    assert volume.unit == "mm"


def test_nifti_is_read_as_z_y_x(tmp_path: Path) -> None:
    xyz = np.arange(2 * 3 * 4, dtype=np.int16).reshape(2, 3, 4)
    nib.save(nib.Nifti1Image(xyz, np.diag([0.5, 0.5, 2.0, 1.0])), tmp_path / "v.nii.gz")
    volume = read_volume(tmp_path / "v.nii.gz")
    assert volume.shape == (4, 3, 2) and volume.array[3, 2, 1] == xyz[1, 2, 3]
    assert volume.spacing == (2.0, 0.5, 0.5)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32])
def test_tiff_round_trip_keeps_spacing(tmp_path: Path, dtype: type) -> None:
    array = np.random.default_rng(1).integers(0, 200, (4, 5, 6, 2)).astype(dtype)
    path = write_volume(tmp_path / "v.tif", Volume(array, (2.0, 0.25, 0.5), unit="um"))
    volume = read_volume(path)
    assert np.array_equal(volume.array, array) and volume.array.dtype == dtype
    assert volume.spacing == (2.0, 0.25, 0.5) and volume.unit == "um"
    np.testing.assert_allclose(volume.affine, np.diag([0.5, 0.25, 2.0, 1.0]))


def test_plain_multipage_tiff_is_a_volume_and_single_images_are_not(tmp_path: Path) -> None:
    tifffile.imwrite(
        tmp_path / "stack.tif", np.zeros((3, 8, 9), np.uint16), photometric="minisblack"
    )
    volume = read_volume(tmp_path / "stack.tif")
    assert volume.shape == (3, 8, 9) and volume.spacing == (1.0, 1.0, 1.0)
    tifffile.imwrite(tmp_path / "plane.tif", np.zeros((8, 9), np.uint16))
    with pytest.raises(ValueError, match=r"plane.tif: TIFF holds a single image"):
        read_volume(tmp_path / "plane.tif")
    (tmp_path / "bad.nii.gz").write_bytes(b"not a volume")
    with pytest.raises(ValueError, match=r"bad.nii.gz: cannot read volume"):
        read_volume(tmp_path / "bad.nii.gz")
    with pytest.raises(ValueError, match=r"\.png is not a volume format"):
        read_volume(tmp_path / "a.png")


def test_resampling_keeps_labels_extent_and_world_position() -> None:
    labels = np.zeros((6, 20, 20), np.uint16)
    labels[1:5, 4:16, 4:16] = 7
    labels[2:4, 8:12, 8:12] = 3
    affine = OBLIQUE_AFFINE @ np.diag([0.5, 0.5, 2.0, 1.0])
    volume = Volume(labels, affine=affine)
    np.testing.assert_allclose(volume.spacing, np.linalg.norm(affine[:3, :3], axis=0)[::-1])
    target = (1.0, 0.5, 0.5)
    resampled = resample_volume(volume, target, order=0)
    assert resampled.shape == resampled_shape(volume.shape, volume.spacing, target)
    assert set(np.unique(resampled.array)) == {0, 3, 7}
    assert resampled.array.dtype == np.uint16
    np.testing.assert_allclose(world_corners(resampled), world_corners(volume), atol=1e-9)


def test_resize_rounds_integer_images_and_keeps_channels() -> None:
    image = np.random.default_rng(0).integers(0, 255, (4, 6, 6, 2)).astype(np.uint8)
    resized = resize(image, (8, 6, 3), order=1)
    assert resized.shape == (8, 6, 3, 2) and resized.dtype == np.uint8
    assert resize(image, (4, 6, 6), order=1) is image
