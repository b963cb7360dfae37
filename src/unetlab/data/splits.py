"""Deterministic train / val / test splits: seeded ratio, k-fold, or explicit file lists."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from unetlab.data.formats import SAMPLE_SUFFIXES, file_stem, file_suffix

STAGES = ("train", "val", "test")


def _shuffled(names: Sequence[str], seed: int) -> list[str]:
    ordered = sorted(names)
    return [ordered[i] for i in np.random.default_rng(seed).permutation(len(ordered))]


def _count(fraction: float, total: int) -> int:
    return max(1, round(fraction * total)) if fraction else 0


def ratio_split(
    names: list[str], val_fraction: float, test_fraction: float, seed: int
) -> dict[str, list[str]]:
    """Shuffle ``names`` with ``seed`` and cut off validation and test parts.

    Each non-zero fraction gets at least one item; the training part keeps at least one.
    """
    if not 0 <= val_fraction < 1 or not 0 <= test_fraction < 1:
        raise ValueError(
            f"data.val_fraction={val_fraction}, data.test_fraction={test_fraction}; "
            "each must be in [0, 1)"
        )
    shuffled = _shuffled(names, seed)
    n_val, n_test = _count(val_fraction, len(names)), _count(test_fraction, len(names))
    if n_val + n_test >= len(names):
        raise ValueError(
            f"data split: {len(names)} images cannot give {n_val} validation and {n_test} "
            "test images and keep one for training; lower the fractions or add images"
        )
    return {
        "train": sorted(shuffled[n_val + n_test :]),
        "val": sorted(shuffled[:n_val]),
        "test": sorted(shuffled[n_val : n_val + n_test]),
    }


def kfold_split(
    names: list[str], fold: int, num_folds: int, test_fraction: float, seed: int
) -> dict[str, list[str]]:
    """Fold ``fold`` of a seeded k-fold cross-validation.

    A test part (``test_fraction``) is held out first and is the same for every fold; the
    rest is shuffled with ``seed`` and cut into ``num_folds`` folds of near-equal size.
    Fold ``fold`` validates and the others train.
    """
    if num_folds < 2 or not 0 <= fold < num_folds:
        raise ValueError(
            f"data.fold={fold}, data.num_folds={num_folds}; need num_folds >= 2 and "
            f"0 <= fold < num_folds"
        )
    if not 0 <= test_fraction < 1:
        raise ValueError(f"data.test_fraction={test_fraction} must be in [0, 1)")
    shuffled = _shuffled(names, seed)
    n_test = _count(test_fraction, len(names))
    rest = shuffled[n_test:]
    if len(rest) < num_folds:
        raise ValueError(
            f"data.num_folds={num_folds}: only {len(rest)} images outside the test part; "
            "lower data.num_folds or data.test_fraction"
        )
    folds = np.array_split(np.arange(len(rest)), num_folds)
    val = {rest[i] for i in folds[fold]}
    return {
        "train": sorted(name for name in rest if name not in val),
        "val": sorted(val),
        "test": sorted(shuffled[:n_test]),
    }


def load_split_lists(lists: Mapping[str, Sequence[str]] | str | Path) -> dict[str, list[str]]:
    """Explicit lists as a mapping, or read from a JSON file such as a run's ``split.json``."""
    if isinstance(lists, (str, Path)):
        path = Path(lists)
        try:
            loaded = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            raise ValueError(
                f"{path}: cannot read the split lists ({error}); give a JSON file like "
                '{"train": [...], "val": [...], "test": [...]} in data.split_lists'
            ) from None
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: split lists must be a JSON object with train/val/test")
        lists = loaded
    unknown = sorted(set(lists) - set(STAGES))
    if unknown:
        raise ValueError(f"data.split_lists has keys {unknown}; use train, val and test")
    return {stage: [_sample_name(n) for n in lists.get(stage) or []] for stage in STAGES}


def _sample_name(entry: object) -> str:
    """``images/a.png``, ``a.png`` and ``a.nii.gz`` name sample ``a``; other names are kept."""
    path = Path(str(entry))
    return file_stem(path) if file_suffix(path) in SAMPLE_SUFFIXES else path.name


def list_split(names: list[str], lists: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """Split by explicit lists of sample names (file names work too: the suffix is dropped).

    Without a ``train`` list, every image not listed for ``val`` or ``test`` trains.
    """
    lists = {stage: list(lists.get(stage) or []) for stage in STAGES}
    available = set(names)
    for stage, listed in lists.items():
        missing = sorted(set(listed) - available)
        if missing:
            raise ValueError(
                f"data.split_lists[{stage}] names {len(missing)} images that the dataset does "
                f"not have, e.g. {missing[:3]}; fix the list or data.root"
            )
    if not lists["train"]:
        held_out = set(lists["val"]) | set(lists["test"])
        lists["train"] = [name for name in names if name not in held_out]
    seen: dict[str, str] = {}
    for stage, listed in lists.items():
        for name in listed:
            if name in seen and seen[name] != stage:
                raise ValueError(
                    f"data.split_lists: {name} is in both {seen[name]} and {stage}; "
                    "each image may be in one part only"
                )
            seen[name] = stage
    if not lists["train"]:
        raise ValueError("data.split_lists leaves no training images; list some under train")
    return {stage: sorted(set(listed)) for stage, listed in lists.items()}


def make_split(
    names: list[str],
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
    fold: int | None = None,
    num_folds: int | None = None,
    lists: Mapping[str, Sequence[str]] | str | Path | None = None,
) -> dict[str, list[str]]:
    """The split the config asks for: explicit lists, else k-fold, else a seeded ratio.

    Args:
        names: All sample names.
        val_fraction: Validation fraction of a ratio split.
        test_fraction: Test fraction (ratio and k-fold splits).
        seed: Seed of the shuffle.
        fold: Validation fold of a k-fold split (with ``num_folds``).
        num_folds: Number of folds.
        lists: Explicit ``{"train": [...], "val": [...], "test": [...]}`` or a JSON file.
    """
    if lists is not None:
        return list_split(names, load_split_lists(lists))
    if (fold is None) != (num_folds is None):
        raise ValueError(
            f"data.fold={fold}, data.num_folds={num_folds}: set both for k-fold "
            "cross-validation, or neither"
        )
    if fold is not None and num_folds is not None:
        return kfold_split(names, fold, num_folds, test_fraction, seed)
    return ratio_split(names, val_fraction, test_fraction, seed)
