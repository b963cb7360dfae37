"""Splits: seeded ratio, k-fold and explicit lists; deterministic and written to the run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_data_folder import datamodule, write_dataset
from unetlab.data.splits import kfold_split, make_split, ratio_split

NAMES = [f"n{i:02d}" for i in range(20)]


def test_ratio_split_is_seeded_and_disjoint() -> None:
    first = ratio_split(NAMES, 0.2, 0.1, seed=1)
    assert first == ratio_split(list(reversed(NAMES)), 0.2, 0.1, seed=1)
    assert first != ratio_split(NAMES, 0.2, 0.1, seed=2)
    assert [len(first[s]) for s in ("train", "val", "test")] == [14, 4, 2]
    assert sorted(name for part in first.values() for name in part) == NAMES


def test_kfold_validates_every_image_once_with_a_fixed_test_part() -> None:
    folds = [kfold_split(NAMES, fold, 4, test_fraction=0.2, seed=0) for fold in range(4)]
    assert all(f["test"] == folds[0]["test"] for f in folds)
    validated = sorted(name for split in folds for name in split["val"])
    assert validated == sorted(set(NAMES) - set(folds[0]["test"]))
    for split in folds:
        assert not set(split["train"]) & set(split["val"])
        assert len(split["train"]) + len(split["val"]) == 16
    assert folds[2] == kfold_split(NAMES, 2, 4, test_fraction=0.2, seed=0)


@pytest.mark.parametrize(
    ("fold", "num_folds", "fragment"),
    [(4, 4, "0 <= fold < num_folds"), (0, None, "set both"), (0, 30, "only 17 images")],
)
def test_bad_fold_settings(fold: int, num_folds: int | None, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        make_split(NAMES, test_fraction=0.15, fold=fold, num_folds=num_folds)


def test_explicit_lists_by_name_file_name_or_json(tmp_path: Path) -> None:
    lists = {"val": ["n00", "images/n01.png"], "test": ["n02.tif"]}
    split = make_split(NAMES, lists=lists)
    assert split["val"] == ["n00", "n01"] and split["test"] == ["n02"]
    assert len(split["train"]) == 17
    path = tmp_path / "split.json"
    path.write_text(json.dumps(split))
    assert make_split(NAMES, lists=str(path)) == split
    with pytest.raises(ValueError, match=r"split_lists\[val\].*'zz'"):
        make_split(NAMES, lists={"val": ["zz"]})
    with pytest.raises(ValueError, match="n00 is in both"):
        make_split(NAMES, lists={"train": ["n00"], "val": ["n00"]})


def test_datamodule_writes_the_fold_it_used(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "data", count=10)
    written = []
    for fold in range(2):
        split_file = tmp_path / f"run{fold}" / "split.json"
        dm = datamodule(root, fold=fold, num_folds=2, test_fraction=0.2, split_file=split_file)
        dm.setup()
        written.append(json.loads(split_file.read_text()))
        assert written[-1] == dm.split and sorted(written[-1]) == ["test", "train", "val"]
    assert written[0]["val"] == written[1]["train"]
    assert written[0]["test"] == written[1]["test"]
