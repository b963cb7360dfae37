"""Post-processing thresholds tuned on images with known objects."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import ndimage

from unetlab.instances import InstancePostprocess, watershed_instances
from unetlab.instances.tuning import tune_postprocess
from unetlab.metrics import instance_scores


def two_touching_discs() -> np.ndarray:
    """Two discs of radius 10 whose centres are 18 px apart: they share a short contact."""
    grid = np.indices((40, 60))
    labels = np.zeros((40, 60), np.int64)
    for label, (y, x) in enumerate([(20, 20), (20, 38)], start=1):
        inside = (grid[0] - y) ** 2 + (grid[1] - x) ** 2 < 100
        labels[inside & (labels == 0)] = label
    return labels


def undecided_probabilities(labels: np.ndarray) -> np.ndarray:
    """Interior probability 0.65 in each disc's core and 0.55 across their contact.

    A seed threshold of 0.5 joins both cores into one seed, 0.7 finds no seed (one object
    of connected components): only thresholds in between keep the discs apart.
    """
    distance_to_edge = np.zeros(labels.shape)
    for label in (1, 2):
        distance_to_edge += ndimage.distance_transform_edt(labels == label)
    interior = np.where(labels > 0, 0.55, 0.0)
    interior[distance_to_edge >= 3] = 0.65
    background = np.where(labels > 0, 0.05, 0.9)
    return np.stack([background, interior, 1.0 - background - interior])


def test_tuning_picks_the_only_seed_threshold_that_separates_touching_discs() -> None:
    labels = two_touching_discs()
    probabilities = undecided_probabilities(labels)
    grid = {"seed_threshold": (0.5, 0.6, 0.7)}

    tuned = tune_postprocess([probabilities], [labels], grid=grid)

    assert tuned.options == dataclasses.replace(InstancePostprocess(), seed_threshold=0.6)
    assert tuned.f1_50 == 1.0
    by_threshold = {setting["seed_threshold"]: dsb for setting, dsb in tuned.tried}
    for threshold, dsb in by_threshold.items():
        options = InstancePostprocess(seed_threshold=threshold)
        objects = watershed_instances(probabilities, options)
        assert dsb == pytest.approx(instance_scores(objects, labels)["dsb_score"])
        assert objects.max() == (2 if threshold == 0.6 else 1)
    assert by_threshold[0.6] > max(by_threshold[0.5], by_threshold[0.7])
    assert tuned.tried[0] == ({"seed_threshold": 0.6}, tuned.dsb_score)


def test_tuning_keeps_the_fields_the_grid_leaves_alone() -> None:
    labels = two_touching_discs()
    base = InstancePostprocess(min_size=25, fill_holes=False)

    tuned = tune_postprocess(
        [undecided_probabilities(labels)], [labels], {"foreground_threshold": (0.5,)}, base
    )

    assert tuned.options == base


@pytest.mark.parametrize(
    ("maps", "truths", "grid", "message"),
    [
        (1, 2, {"seed_threshold": (0.5,)}, "one true label image per probability map"),
        (0, 0, {"seed_threshold": (0.5,)}, "at least one"),
        (1, 1, {"seed": (0.5,)}, "grid keys \\['seed'\\] are not fields"),
    ],
)
def test_bad_tuning_input_is_named(maps: int, truths: int, grid: dict, message: str) -> None:
    labels = two_touching_discs()
    with pytest.raises(ValueError, match=message):
        tune_postprocess([undecided_probabilities(labels)] * maps, [labels] * truths, grid=grid)
