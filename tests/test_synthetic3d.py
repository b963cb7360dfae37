"""The embedded synthetic 3-D cells dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from unetlab.data.io import read_volume
from unetlab.data.synthetic3d import SyntheticVolumes, generate_cell_volume


def test_same_seed_same_volume_other_seed_other_volume() -> None:
    first, labels = generate_cell_volume(np.random.default_rng(3), (16, 24, 24))
    again, labels_again = generate_cell_volume(np.random.default_rng(3), (16, 24, 24))
    other, _ = generate_cell_volume(np.random.default_rng(4), (16, 24, 24))
    assert np.array_equal(first, again) and np.array_equal(labels, labels_again)
    assert not np.array_equal(first, other)


def test_cells_are_bright_varied_blobs_in_noise() -> None:
    volume, labels = generate_cell_volume(np.random.default_rng(0))
    assert volume.shape == labels.shape == (32, 64, 64) and volume.dtype == np.uint8
    inside = volume[labels > 0]
    outside = volume[ndimage.binary_dilation(labels > 0, iterations=3) == 0]
    assert inside.mean() > 3 * outside.mean() and outside.std() > 1.0
    ids = np.unique(labels)[1:]
    assert len(ids) >= 6
    sizes = ndimage.sum_labels(np.ones_like(labels), labels, ids)
    assert sizes.max() > 2 * sizes.min()
    for cell in ids[:3]:  # each cell is one compact blob
        _, pieces = ndimage.label(labels == cell)
        assert pieces == 1


@pytest.mark.parametrize("file_format", ["nii.gz", "tif"])
def test_dataset_folder_is_cached_with_volumes_masks_and_instances(
    tmp_path: Path, file_format: str
) -> None:
    source = SyntheticVolumes(tmp_path, 3, (16, 24, 24), file_format=file_format, seed=1)
    folder = source.prepare()
    first = folder / "images" / f"cells_0000.{file_format}"
    stamp = first.stat().st_mtime_ns
    assert source.prepare() == folder and first.stat().st_mtime_ns == stamp
    samples = source.samples()
    assert [s.name for s in samples] == ["cells_0000", "cells_0001", "cells_0002"]
    for sample in samples:
        image, mask = read_volume(sample.image), read_volume(sample.mask)
        instances = read_volume(sample.instances)
        assert image.shape == (16, 24, 24) and image.spacing == (1.0, 1.0, 1.0)
        assert np.array_equal(mask.array, (instances.array > 0).astype(np.uint8))
    assert not list(tmp_path.glob(".tmp_*"))


def test_bad_arguments_name_the_config_key(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"data\.source\.file_format='png'"):
        SyntheticVolumes(tmp_path, file_format="png")
    with pytest.raises(ValueError, match=r"data\.source\.num_volumes=2"):
        SyntheticVolumes(tmp_path, num_volumes=2)
