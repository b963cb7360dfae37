"""The embedded synthetic nuclei dataset."""

from __future__ import annotations

import numpy as np
from PIL import Image
from scipy import ndimage

from unetlab.data.synthetic import SyntheticNuclei, generate_nuclei_image


def test_same_seed_same_image_other_seed_other_image() -> None:
    first, labels = generate_nuclei_image(np.random.default_rng(7), 96)
    again, labels_again = generate_nuclei_image(np.random.default_rng(7), 96)
    other, _ = generate_nuclei_image(np.random.default_rng(8), 96)
    assert np.array_equal(first, again) and np.array_equal(labels, labels_again)
    assert not np.array_equal(first, other)


def test_nuclei_are_brighter_than_background_and_noisy() -> None:
    image, labels = generate_nuclei_image(np.random.default_rng(0), 128)
    inside, outside = (
        image[labels > 0],
        image[ndimage.binary_dilation(labels > 0, iterations=4) == 0],
    )
    assert inside.mean() > 3 * outside.mean()
    assert outside.std() > 1.0  # shot and read noise
    radii = [np.sqrt((labels == i).sum() / np.pi) for i in np.unique(labels)[1:]]
    assert max(radii) > 1.5 * min(radii)  # varied sizes


def test_some_nuclei_touch() -> None:
    touching = 0
    for seed in range(5):
        _, labels = generate_nuclei_image(np.random.default_rng(seed), 128)
        grown = ndimage.grey_dilation(labels, size=3)
        touching += int(np.any((labels > 0) & (grown != labels) & (grown > 0)))
    assert touching >= 3


def test_dataset_folder_is_cached_and_consistent(tmp_path) -> None:
    source = SyntheticNuclei(tmp_path, num_images=4, image_size=40, seed=3)
    folder = source.prepare()
    stamp = (folder / "images" / "nuclei_0000.png").stat().st_mtime_ns
    assert source.prepare() == folder
    assert (folder / "images" / "nuclei_0000.png").stat().st_mtime_ns == stamp
    for name in sorted(p.name for p in (folder / "images").iterdir()):
        mask = np.array(Image.open(folder / "masks" / name))
        instances = np.array(Image.open(folder / "instances" / name))
        assert set(np.unique(mask)) <= {0, 1}
        assert np.array_equal(mask, (instances > 0).astype(np.uint8))
    assert not list(tmp_path.glob(".tmp_*"))
