"""Post-processing settings chosen on images whose objects are known."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence

import numpy as np

from unetlab.instances.postprocess import (
    DEFAULT_POSTPROCESS,
    InstancePostprocess,
    watershed_instances,
)
from unetlab.metrics.instances import instance_scores

DEFAULT_GRID: Mapping[str, Sequence[float]] = {
    "foreground_threshold": (0.4, 0.5, 0.6, 0.7, 0.8),
    "seed_threshold": (0.5, 0.6, 0.7, 0.8),
    "smoothing": (0.0, 1.0, 2.0),
    "min_seed_size": (0, 20),
}
"""Thresholds tried by :func:`tune_postprocess` unless told otherwise."""


@dataclasses.dataclass(frozen=True)
class TunedPostprocess:
    """The best settings of a grid and what they scored.

    Attributes:
        options: The best post-processing settings.
        dsb_score: Their Data Science Bowl score, the mean over the images.
        f1_50: Their F1 at IoU 0.5, pooled over the images.
        tried: Every setting tried, with its DSB score, best first.
    """

    options: InstancePostprocess
    dsb_score: float
    f1_50: float
    tried: list[tuple[dict[str, float], float]]


def tune_postprocess(
    probabilities: Sequence[np.ndarray],
    true_labels: Sequence[np.ndarray],
    grid: Mapping[str, Sequence[float]] = DEFAULT_GRID,
    base: InstancePostprocess = DEFAULT_POSTPROCESS,
) -> TunedPostprocess:
    """The settings of ``grid`` whose objects score best against ``true_labels``.

    Every combination of the grid's values replaces those fields of ``base``; the winner
    has the highest Data Science Bowl score (mean over images), ties broken by pooled F1 at
    IoU 0.5. Tune on images the model did not train on and that are not scored afterwards
    (the validation images of its run), as StarDist's ``optimize_thresholds`` does.

    Args:
        probabilities: (3, *spatial) ``instance_border`` probabilities per image.
        true_labels: The true instance labels of each image.
        grid: Field of :class:`InstancePostprocess` -> values to try.
        base: Settings of the fields the grid leaves alone.

    Returns:
        The best settings, their scores and every setting tried.
    """
    if len(probabilities) != len(true_labels) or not probabilities:
        raise ValueError(
            f"tune_postprocess needs one true label image per probability map and at least "
            f"one; got {len(probabilities)} maps and {len(true_labels)} label images"
        )
    unknown = set(grid) - {field.name for field in dataclasses.fields(InstancePostprocess)}
    if unknown:
        raise ValueError(f"grid keys {sorted(unknown)} are not fields of InstancePostprocess")
    results = []
    for values in itertools.product(*grid.values()):
        setting = dict(zip(grid, values, strict=True))
        options = dataclasses.replace(base, **setting)
        scores = [
            instance_scores(watershed_instances(p, options), np.asarray(t).astype(np.int64))
            for p, t in zip(probabilities, true_labels, strict=True)
        ]
        dsb = [s["dsb_score"] for s in scores if not np.isnan(s["dsb_score"])]
        matched = sum(2 * s["tp_50"] for s in scores)
        objects = sum(s["n_true"] + s["n_pred"] for s in scores)
        f1 = matched / objects if objects else 0.0
        results.append((setting, float(np.mean(dsb)) if dsb else 0.0, float(f1), options))
    results.sort(key=lambda result: (result[1], result[2]), reverse=True)
    _, dsb_score, f1_50, options = results[0]
    tried = [(setting, dsb) for setting, dsb, _, _ in results]
    return TunedPostprocess(options=options, dsb_score=dsb_score, f1_50=f1_50, tried=tried)
