"""Instance targets and post-processing: touching objects kept apart, blocks, volumes, dtypes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from unetlab.inference.io import overlay_rgb
from unetlab.instances import (
    InstancePostprocess,
    class_instances,
    instance_border_classes,
    instance_labels,
    instances_from_logits,
    make_target,
    object_palette,
)


def discs(shape: tuple[int, ...], centres: list[tuple[int, ...]], radius: float) -> np.ndarray:
    """Instance labels of balls (discs in 2-D); later ones are drawn over earlier ones."""
    grid = np.indices(shape)
    labels = np.zeros(shape, np.int32)
    for label, centre in enumerate(centres, start=1):
        distance = np.sqrt(sum((g - c) ** 2 for g, c in zip(grid, centre, strict=True)))
        labels[distance < radius] = label
    return labels


def confident_logits(classes: np.ndarray, num_classes: int = 3, seed: int = 0) -> torch.Tensor:
    """Logits whose softmax favours ``classes``, with some noise."""
    rng = np.random.default_rng(seed)
    one_hot = np.moveaxis(np.eye(num_classes)[classes], -1, 0) * 4.0
    return torch.from_numpy(one_hot + rng.normal(0, 0.5, one_hot.shape)).float()


def same_objects(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two label images hold the same objects, whatever their ids."""
    if not np.array_equal(a > 0, b > 0):
        return False
    pairs = np.unique(np.stack([a[a > 0], b[b > 0]]), axis=1)
    return pairs.shape[1] == len(np.unique(a[a > 0])) == len(np.unique(b[b > 0]))


def test_border_classes_of_two_touching_rectangles() -> None:
    instances = np.zeros((6, 9), np.int32)
    instances[1:5, 1:4] = 1
    instances[1:5, 4:8] = 2
    expected = np.array(
        [
            [0, 0, 0, 0, 0, 0, 0, 0, 0],
            [0, 2, 2, 2, 2, 2, 2, 2, 0],
            [0, 2, 1, 2, 2, 1, 1, 2, 0],
            [0, 2, 1, 2, 2, 1, 1, 2, 0],
            [0, 2, 2, 2, 2, 2, 2, 2, 0],
            [0, 0, 0, 0, 0, 0, 0, 0, 0],
        ]
    )
    np.testing.assert_array_equal(instance_border_classes(instances), expected)
    thick = instance_border_classes(instances, border_width=2)
    assert (thick == 1).sum() == 0 and (thick == 2).sum() == 28


def test_target_keeps_ignored_pixels_and_gives_interiors_to_the_weight_map() -> None:
    instances = discs((20, 30), [(10, 9), (10, 20)], 7)
    mask = (instances > 0).astype(np.int16)
    mask[0, 0] = -100
    classes, objects = make_target("instance_border", 3)(mask, instances, "m.png")
    assert classes[0, 0] == -100
    np.testing.assert_array_equal(objects > 0, classes == 1)
    assert set(np.unique(objects)) == {0, 1, 2}
    with pytest.raises(ValueError, match=r"m.png: data.target=instance_border needs instance"):
        make_target("instance_border", 3)(mask, None, "m.png")
    with pytest.raises(ValueError, match=r"but model.num_classes=2; set model.num_classes=3"):
        make_target("instance_border", 2)
    with pytest.raises(ValueError, match=r"data.target='distance' is not known"):
        make_target("distance", 3)
    assert make_target("semantic", 5) is None


def test_two_touching_discs_come_out_as_two_objects() -> None:
    truth = discs((48, 64), [(24, 22), (24, 40)], 10)
    assert ndimage.label(truth > 0)[1] == 1  # one blob as a class map
    logits = confident_logits(instance_border_classes(truth))
    labels = instance_labels(logits, "instance_border")
    assert labels.dtype == np.uint16 and labels.max() == 2
    assert same_objects(labels, truth)
    # A class-map model's fallback merges them, as connected components do.
    semantic = confident_logits((truth > 0).astype(int), num_classes=2)
    merged = instance_labels(semantic, "semantic")
    assert merged.max() == 1 and np.array_equal(merged > 0, truth > 0)


def test_postprocess_drops_small_objects_fills_holes_and_keeps_unseeded_ones() -> None:
    truth = discs((40, 60), [(20, 15), (20, 45)], 9)
    classes = instance_border_classes(truth)
    classes[19:22, 14:17] = 0  # a hole inside the first object
    classes[2:4, 2:4] = 2  # a 4-pixel object, border only (no seed)
    classes[35:39, 50:55] = 2  # a 20-pixel object without interior
    labels = instance_labels(confident_logits(classes), "instance_border")
    assert labels.max() == 3
    assert labels[20, 15] == labels[20, 10] > 0  # the hole is filled
    assert labels[2, 2] == 0  # below min_size
    assert (labels == labels[36, 52]).sum() == 20
    kept = instance_labels(
        confident_logits(classes),
        "instance_border",
        InstancePostprocess(min_size=0, fill_holes=False),
    )
    assert kept.max() == 4 and kept[20, 15] == 0


def test_blockwise_processing_gives_the_objects_of_one_shot_processing() -> None:
    rng = np.random.default_rng(3)
    centres = [tuple(rng.integers(5, 235, 2)) for _ in range(120)]
    truth = discs((240, 250), centres, 7)
    logits = confident_logits(instance_border_classes(truth), seed=1)
    whole = instance_labels(logits, "instance_border")
    blocks = instance_labels(
        logits, "instance_border", InstancePostprocess(block_size=64, block_overlap=40)
    )
    assert whole.max() > 60
    assert same_objects(blocks, whole)


def test_volumes_two_touching_balls_in_blocks() -> None:
    truth = discs((20, 24, 36), [(10, 12, 11), (10, 12, 24)], 7)
    logits = confident_logits(instance_border_classes(truth))
    whole = instance_labels(logits, "instance_border")
    assert whole.max() == 2 and same_objects(whole, truth)
    blocks = instance_labels(
        logits, "instance_border", InstancePostprocess(block_size=12, block_overlap=16)
    )
    assert same_objects(blocks, whole)


@pytest.mark.parametrize("target", ["semantic", "instance_border"])
def test_labels_are_uint32_above_65535_objects(target: str) -> None:
    classes = np.zeros((600, 600), np.int64)
    classes[::2, ::2] = 1  # 90,000 separate one-pixel objects
    logits = confident_logits(classes, 2 if target == "semantic" else 3)
    labels = instance_labels(logits, target, InstancePostprocess(min_size=1))
    assert labels.dtype == np.uint32 and labels.max() == 90_000 == ndimage.label(classes)[1]
    few = instance_labels(logits[:, :200, :200], target, InstancePostprocess(min_size=1))
    assert few.dtype == np.uint16 and few.max() == 10_000


def test_class_map_fallback_labels_the_components_of_each_class() -> None:
    classes = np.zeros((10, 12), np.int64)
    classes[1:4, 1:4] = 1
    classes[1:4, 4:7] = 2  # touches the class-1 square: a separate object
    classes[6:9, 6:9] = 1
    classes[0, 11] = 2  # one pixel, below min_size=2
    labels = class_instances(classes, InstancePostprocess(min_size=2))
    assert labels.max() == 3
    for component in range(1, 4):
        assert len(np.unique(classes[labels == component])) == 1


def test_batch_of_logits_becomes_a_batch_of_labels() -> None:
    truth = discs((32, 40), [(16, 12), (16, 27)], 8)
    batch = torch.stack([confident_logits(instance_border_classes(truth), seed=s) for s in (0, 1)])
    labels = instances_from_logits(batch, "instance_border")
    assert labels.shape == (2, 32, 40)
    assert all(same_objects(item, truth) for item in labels)


def test_bad_settings_are_one_line_errors() -> None:
    with pytest.raises(ValueError, match=r"postprocess.seed_threshold=1.5 must be in \(0, 1\)"):
        InstancePostprocess(seed_threshold=1.5)
    with pytest.raises(ValueError, match=r"postprocess.min_size=-1 must be >= 0"):
        InstancePostprocess(min_size=-1)
    with pytest.raises(
        ValueError, match=r"target=instance_border needs 3 output classes .* gives 2"
    ):
        instance_labels(torch.zeros(2, 8, 8), "instance_border")
    with pytest.raises(ValueError, match=r"target='border' is not known"):
        instance_labels(torch.zeros(2, 8, 8), "border")


def test_overlay_gives_touching_objects_their_own_colours() -> None:
    labels = discs((48, 64), [(24, 22), (24, 40)], 10).astype(np.uint16)
    labels[labels == 2] = 10  # ids 1 and 10 share a colour in the 9-colour class palette
    rgb = overlay_rgb(np.zeros((48, 64, 1), np.float32), labels, palette=object_palette())
    assert not np.array_equal(rgb[24, 22], rgb[24, 40])
    assert (rgb[labels == 0] == 0).all()
    palette = object_palette(64)
    steps = np.abs(np.diff(palette[1:], axis=0)).sum(axis=1)
    assert len(np.unique(palette, axis=0)) == 65 and steps.min() > 60
