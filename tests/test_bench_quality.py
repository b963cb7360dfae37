"""``scripts/bench_quality.py``: splits, the scorer, the verdict and a side-by-side smoke run."""

from __future__ import annotations

import importlib
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import confusion_matrix, jaccard_score

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """``bench_quality``, imported as the script imports its neighbours."""
    monkeypatch.syspath_prepend(str(SCRIPTS))
    return importlib.import_module("bench_quality")


def test_isbi_split_trains_on_00_to_23(bench: ModuleType) -> None:
    names = [f"{i:02d}" for i in range(30)]
    split = bench.isbi_split(names[::-1])
    assert split["train"] == [f"{i:02d}" for i in range(24)]
    assert split["validation"] == ["24", "25", "26", "27", "28", "29"]
    with pytest.raises(ValueError, match="lacks images"):
        bench.isbi_split(names[:-1])


def test_levers_run_everywhere_unless_a_data_set_is_named(bench: ModuleType) -> None:
    levers = ["fast", "isbi:fast_cldice", "dsb:fast_by_dtype", "fast_wide"]
    assert bench.levers_of(levers, "isbi") == ["fast", "fast_cldice", "fast_wide"]
    assert bench.levers_of(levers, "dsb") == ["fast", "fast_by_dtype", "fast_wide"]
    with pytest.raises(SystemExit):
        bench.parse_args(["--levers", "fast", "cells:fast_wide"])


def test_the_reproducing_command_quotes_a_recipe_of_several_overrides(bench: ModuleType) -> None:
    raw = ["--recipe", "c12=experiment=fast model.base_channels=12", "--levers", "c12"]
    args = bench.parse_args([*raw, "--work-dir", "/tmp/w"])
    command = bench.reproducing_command(args)
    assert shlex.split(command) == ["python", "scripts/bench_quality.py", *raw]


def test_predict_overrides_of_a_recipe_stay_out_of_training(bench: ModuleType) -> None:
    spec = {"dataset": "dsb", "overrides": ["experiment=fast", "predict.tta=d4"], "seed": 0}
    spec |= {"root": "/data", "split_file": "/split.json", "budget_s": 5, "run_dir": "/w/run"}
    train = bench.unetlab_overrides(spec)
    assert "experiment=fast" in train and not [o for o in train if "tta" in o]


def test_dsb_split_trains_on_the_first_80_percent_of_sorted_names(bench: ModuleType) -> None:
    names = ["e", "a", "j", "c", "b", "i", "d", "h", "f", "g"]
    split = bench.sorted_fraction_split(names)
    assert split == {"train": list("abcdefgh"), "validation": ["i", "j"]}
    big = bench.sorted_fraction_split([f"{i:03d}" for i in range(325)])
    assert (len(big["train"]), big["validation"][0]) == (260, "260")
    with pytest.raises(ValueError, match="too few"):
        bench.sorted_fraction_split(["a"])


def test_targets(bench: ModuleType) -> None:
    em = np.array([[0, 255], [255, 0]], np.uint8)
    np.testing.assert_array_equal(bench.membrane_target(em), [[1, 0], [0, 1]])
    nuclei = np.array([[0, 3], [4464, 0]], np.uint16)
    np.testing.assert_array_equal(bench.foreground_target(nuclei), [[0, 1], [1, 0]])


def test_dataset_miou_matches_sklearn_on_the_pooled_pixels(bench: ModuleType) -> None:
    rng = np.random.default_rng(0)
    shapes = [(17, 23), (40, 9), (5, 64)]
    predictions = [(rng.random(s) < 0.3).astype(np.uint8) for s in shapes]
    truths = [(rng.random(s) < 0.2).astype(np.uint8) for s in shapes]
    scores = bench.dataset_miou(predictions, truths)
    pooled_pred = np.concatenate([p.ravel() for p in predictions])
    pooled_true = np.concatenate([t.ravel() for t in truths])
    np.testing.assert_array_equal(
        scores["confusion"], confusion_matrix(pooled_true, pooled_pred, labels=[0, 1])
    )
    reference = jaccard_score(pooled_true, pooled_pred, average=None, labels=[0, 1])
    np.testing.assert_allclose(scores["iou"], reference)
    assert scores["miou"] == pytest.approx(reference.mean())
    # Per-image averaging would give another number: the pooling is what is tested.
    per_image = np.mean(
        [
            jaccard_score(t.ravel(), p.ravel(), average=None).mean()
            for p, t in zip(predictions, truths, strict=True)
        ]
    )
    assert scores["miou"] != pytest.approx(per_image, abs=1e-6)


def test_class_absent_from_truth_and_prediction_is_left_out(bench: ModuleType) -> None:
    zeros = np.zeros((4, 4), np.uint8)
    scores = bench.dataset_miou([zeros], [zeros])
    assert scores["iou"][0] == 1.0 and np.isnan(scores["iou"][1])
    assert scores["miou"] == 1.0
    half = zeros.copy()
    half[:2] = 1
    # truth: 8 of class 1; prediction: none -> IoU(0) = 8 / 16, IoU(1) = 0.
    assert bench.dataset_miou([zeros], [half])["iou"] == [0.5, 0.0]
    with pytest.raises(ValueError, match="differ in shape"):
        bench.dataset_miou([zeros], [zeros[:3]])


def test_random_batch_pads_small_images_by_reflection(bench: ModuleType) -> None:
    rng = np.random.default_rng(0)
    image = np.arange(2 * 5 * 7, dtype=np.float32).reshape(2, 5, 7)
    target = (image[0] % 2).astype(np.uint8)
    x, y = bench.random_batch([image], [target], 8, rng)
    assert x.shape == (bench.SMP_BATCH, 2, 8, 8) and y.shape == (bench.SMP_BATCH, 8, 8)
    padded = np.pad(image, [(0, 0), (0, 3), (0, 1)], mode="reflect")
    flips = [padded, padded[..., ::-1], padded[..., ::-1, :], padded[..., ::-1, ::-1]]
    for crop, labels in zip(x.numpy(), y.numpy(), strict=True):
        assert any(np.array_equal(crop, f) for f in flips)
        np.testing.assert_array_equal(labels, crop[0] % 2)


def test_verdict_reads_the_target(bench: ModuleType) -> None:
    def row(method: str, budget: int, miou: float) -> dict:
        return {"dataset": "isbi", "method": method, "budget_s": budget, "miou": miou}

    rows = [row("unetlab", 150, 0.70), row("smp", 150, 0.60), row("smp", 600, 0.76)]
    lines = bench.verdict([*rows, row("unetlab", 300, 0.80)], "isbi", [150, 300, 600])
    assert "**ahead**" in lines[0] and "**not met**" in lines[1]
    lines = bench.verdict([*rows, row("unetlab", 300, 0.82)], "isbi", [150, 300, 600])
    assert "0.820 vs smp at 600 s 0.760" in lines[1] and "**met**" in lines[1]


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data (the real data) is absent")
def test_real_data_splits(bench: ModuleType) -> None:
    isbi = bench.DATASETS["isbi"].split(bench.image_names(SHARED_DATA / "isbi2012_em"))
    assert (isbi["train"][-1], isbi["validation"]) == ("23", [str(i) for i in range(24, 30)])
    dsb = bench.DATASETS["dsb"].split(bench.image_names(SHARED_DATA / "dsb2018_nuclei_dev"))
    assert (len(dsb["train"]), len(dsb["validation"])) == (260, 65)
    assert max(dsb["train"]) < min(dsb["validation"])


def write_folder(root: Path, images: dict[str, np.ndarray], masks: dict[str, np.ndarray]) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for name, image in images.items():
        Image.fromarray(image).save(root / "images" / f"{name}.png")
        Image.fromarray(masks[name]).save(root / "masks" / f"{name}.png")
    return root


def em_like(tmp_path: Path, rng: np.random.Generator) -> Path:
    """30 grayscale 64x64 slices with 0 / 255 masks: dark lines on a bright field."""
    images, masks = {}, {}
    for i in range(30):
        membrane = np.zeros((64, 64), bool)
        membrane[:, rng.integers(8, 56, 3)] = True
        membrane[rng.integers(8, 56, 3), :] = True
        masks[f"{i:02d}"] = np.where(membrane, 0, 255).astype(np.uint8)
        noise = rng.normal(0, 20, membrane.shape)
        images[f"{i:02d}"] = np.clip(np.where(membrane, 60, 190) + noise, 0, 255).astype(np.uint8)
    return write_folder(tmp_path / "em", images, masks)


def nuclei_like(tmp_path: Path, rng: np.random.Generator) -> Path:
    """10 RGB images of two sizes with uint16 instance labels of bright squares."""
    images, masks = {}, {}
    for i in range(10):
        shape = (64, 64) if i % 2 else (64, 96)
        labels = np.zeros(shape, np.uint16)
        for label in range(1, 4):
            top, left = rng.integers(0, shape[0] - 12), rng.integers(0, shape[1] - 12)
            labels[top : top + 12, left : left + 12] = label
        gray = np.where(labels > 0, 200, 30) + rng.normal(0, 15, shape)
        images[f"n{i:02d}"] = np.repeat(np.clip(gray, 0, 255).astype(np.uint8)[..., None], 3, 2)
        masks[f"n{i:02d}"] = labels
    return write_folder(tmp_path / "nuclei", images, masks)


@pytest.mark.slow
def test_quick_run_trains_both_methods_side_by_side(tmp_path: Path) -> None:
    pytest.importorskip("segmentation_models_pytorch", reason="needs the bench extra")
    rng = np.random.default_rng(0)
    isbi, dsb = em_like(tmp_path, rng), nuclei_like(tmp_path, rng)
    work, page = tmp_path / "work", tmp_path / "benchmarks.md"
    command = [sys.executable, str(SCRIPTS / "bench_quality.py"), "--quick", "--budgets", "2"]
    command += ["--isbi", str(isbi), "--dsb", str(dsb), "--crop", "64"]
    command += ["--unetlab-overrides", "data.patch_size=64", "--work-dir", str(work)]
    env = os.environ | {"WANDB_MODE": "offline", "MPLBACKEND": "Agg"}
    done = subprocess.run(
        [*command, "--output", str(page)], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((work / "results.json").read_text())
    rows = results["rows"]
    cells = {(r["dataset"], r["method"]) for r in rows}
    assert cells == {("isbi", "unetlab"), ("isbi", "smp"), ("dsb", "unetlab"), ("dsb", "smp")}
    assert results["datasets"] == {
        "isbi": {"train": 4, "validation": 2},
        "dsb": {"train": 4, "validation": 2},
    }
    pixels = {"isbi": 2 * 64 * 64, "dsb": 64 * 96 + 64 * 64}
    for row in rows:
        assert row["steps"] > 0 and 0.0 <= row["miou"] <= 1.0 and row["threads"] == 1
        assert np.sum(row["confusion"]) == pixels[row["dataset"]]  # whole validation images
        assert row["train_s"] >= row["budget_s"]
    if len(os.sched_getaffinity(0)) >= 2:
        for dataset in ("isbi", "dsb"):
            used = [tuple(r["core"]) for r in rows if r["dataset"] == dataset]
            assert len(used) == 2 and len(set(used)) == 2 and all(len(c) == 1 for c in used)
    text = page.read_text()
    assert "## Accuracy per CPU minute" in text and "<!-- bench_quality: begin -->" in text
    for title in ("ISBI 2012 EM", "DSB 2018 nuclei", "smp.Unet resnet34"):
        assert title in text


@pytest.mark.slow
def test_levers_compare_named_recipes(tmp_path: Path) -> None:
    dsb, page = nuclei_like(tmp_path, np.random.default_rng(1)), tmp_path / "benchmarks.md"
    command = [sys.executable, str(SCRIPTS / "bench_quality.py"), "--quick", "--datasets", "dsb"]
    command += ["--dsb", str(dsb), "--levers", "fast", "narrow", "--lever-budget", "2"]
    command += [
        "--recipe",
        "narrow=experiment=fast model.base_channels=4 data.patch_size=64 predict.tta=d4",
    ]
    command += ["--work-dir", str(tmp_path / "work"), "--output", str(page)]
    env = os.environ | {"WANDB_MODE": "offline", "MPLBACKEND": "Agg"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads((tmp_path / "work" / "results.json").read_text())["rows"]
    assert [(r["label"], r["overrides"]) for r in rows] == [
        ("fast", ["experiment=fast"]),
        (
            "narrow",
            ["experiment=fast", "model.base_channels=4", "data.patch_size=64", "predict.tta=d4"],
        ),
    ]
    assert all(r["steps"] > 0 and r["budget_s"] == 2 for r in rows)
    delta = rows[1]["miou"] - rows[0]["miou"]
    text = page.read_text()
    assert "<!-- bench_quality_levers_2s: begin -->" in text  # one section per lever budget
    assert "## Levers of the unetlab recipe at 2 s" in text
    table = [line for line in text.splitlines() if line.startswith("| dsb | `")]
    assert table[0].split(" | ")[5] == "+0.000" and table[1].split(" | ")[5] == f"{delta:+.3f}"
