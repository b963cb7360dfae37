"""The paper's elastic deformation: displacements of size sigma, smooth, label-preserving,
image and mask aligned."""

from __future__ import annotations

import albumentations as A
import numpy as np
import pytest

from unetlab.data.mirror import reflect_indices
from unetlab.data.transforms import ElasticDeformation
from unetlab.data.transforms.elastic import cubic_upsampling_matrix

SIZE = 64


def labelled_scene() -> tuple[np.ndarray, np.ndarray]:
    """Mask with classes 0..2 and an image that is a known function of it plus a smooth ramp."""
    rows, cols = np.indices((SIZE, SIZE))
    mask = np.zeros((SIZE, SIZE), np.int16)
    mask[np.hypot(rows - 20, cols - 22) < 12] = 1
    mask[(rows > 38) & (cols > 10) & (cols < 50)] = 2
    background = 20.0 * np.sin(rows / 9.0) * np.cos(cols / 13.0)
    image = (100.0 * mask + background).astype(np.float32)[..., None]
    return image, mask


def test_mask_and_image_stay_aligned() -> None:
    image, mask = labelled_scene()
    weights = (1.0 + mask * 2.5).astype(np.float32)
    transform = A.Compose([ElasticDeformation(grid_size=3, sigma=10.0, p=1.0)], seed=0)
    transform.add_targets({"weight_map": "mask"})
    moved = 0
    for _ in range(5):
        out = transform(image=image, mask=mask, weight_map=weights)
        warped_image, warped_mask = out["image"], out["mask"]
        assert warped_image.shape == image.shape and warped_mask.dtype == mask.dtype
        assert np.mean(np.rint(warped_image[..., 0] / 100.0) == warped_mask) > 0.98
        assert set(np.unique(warped_mask)) <= {0, 1, 2}
        assert set(np.unique(out["weight_map"])) <= {1.0, 3.5, 6.0}  # nearest, not blended
        assert np.array_equal(out["weight_map"], 1.0 + warped_mask * 2.5)
        moved += int(np.mean(warped_mask != mask) > 0.01)
    assert moved >= 4


def test_displacements_have_sigma_on_the_coarse_grid() -> None:
    transform = ElasticDeformation(grid_size=3, sigma=10.0, p=1.0)
    transform.set_random_seed(0)
    corners, between = [], []
    for _ in range(300):
        params = transform.get_params_dependent_on_data({"shape": (SIZE, SIZE, 1)}, {})
        shift = params["map_y"] - np.arange(SIZE)[:, None]
        corners.append(shift[0, 0])
        between.append(shift[SIZE // 4, SIZE // 4])  # between grid points: interpolated
        assert np.abs(np.diff(shift, axis=0)).max() < 5.0
    assert np.std(corners) == pytest.approx(10.0, rel=0.15)
    assert np.std(between) < 0.8 * np.std(corners)


def test_cubic_upsampling_hits_the_grid_and_keeps_constants() -> None:
    matrix = cubic_upsampling_matrix(33, 3)
    assert np.allclose(matrix[[0, 16, 32]], np.eye(3), atol=1e-9)
    assert np.allclose(matrix.sum(1), 1.0)


def test_integer_labels_of_any_dtype_and_multichannel_images() -> None:
    transform = A.Compose([ElasticDeformation(p=1.0)], seed=1)
    image = np.random.default_rng(0).random((SIZE, SIZE, 6)).astype(np.float32)
    labels = (np.arange(SIZE * SIZE).reshape(SIZE, SIZE) % 5).astype(np.int64)
    out = transform(image=image, mask=labels)
    assert out["image"].shape == (SIZE, SIZE, 6) and out["mask"].dtype == np.int64
    assert set(np.unique(out["mask"])) <= set(range(5))
    assert np.array_equal(reflect_indices(np.array([-2, -1, 0, 4, 5, 6]), 5), [2, 1, 0, 4, 3, 2])


def coordinate_image(size: int) -> np.ndarray:
    """Two float channels holding each pixel's own row and column."""
    rows, cols = np.indices((size, size), dtype=np.float32)
    return np.stack([rows, cols], axis=-1)


@pytest.mark.parametrize("sigma", [3.0, 10.0])
def test_warped_images_move_by_sigma_at_the_grid_points(sigma: float) -> None:
    # With 65 pixels the 3x3 grid has a point on the centre pixel, whose displacement is
    # drawn from N(0, sigma): read it back from the warped coordinates of that pixel.
    size, centre = 65, 32
    image = coordinate_image(size)
    transform = A.Compose([ElasticDeformation(grid_size=3, sigma=sigma, p=1.0)], seed=3)
    shifts = np.array(
        [transform(image=image)["image"][centre, centre] - centre for _ in range(400)]
    )
    assert np.std(shifts[:, 0]) == pytest.approx(sigma, rel=0.15)
    assert np.std(shifts[:, 1]) == pytest.approx(sigma, rel=0.15)
    assert np.abs(np.mean(shifts, axis=0)).max() < 0.25 * sigma


def test_sigma_zero_is_the_identity_and_seeds_decide_the_warp() -> None:
    image, mask = labelled_scene()
    still = A.Compose([ElasticDeformation(sigma=0.0, p=1.0)], seed=0)(image=image, mask=mask)
    np.testing.assert_allclose(still["image"], image, atol=1e-4)
    assert np.array_equal(still["mask"], mask)

    first = A.Compose([ElasticDeformation(p=1.0)], seed=7)(image=image, mask=mask)
    second = A.Compose([ElasticDeformation(p=1.0)], seed=7)(image=image, mask=mask)
    other = A.Compose([ElasticDeformation(p=1.0)], seed=8)(image=image, mask=mask)
    assert np.array_equal(first["image"], second["image"])
    assert np.array_equal(first["mask"], second["mask"])
    assert np.mean(first["mask"] != mask) > 0.01
    assert np.mean(first["mask"] != other["mask"]) > 0.01
