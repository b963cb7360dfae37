"""Object-level scores and pictures logged by a tiny training run on synthetic nuclei."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from PIL import Image

from tests.test_train_3d import VOLUME_OVERRIDES
from tests.wandb_offline import finish_run, offline_run_contents
from unetlab.instances import instances_from_logits
from unetlab.metrics import instance_scores
from unetlab.models.blocks import center_crop_like
from unetlab.train import train

LEARNING = (
    "trainer.max_epochs=3",
    "data.source.num_images=16",
    "data.source.image_size=48",
    "model.base_channels=8",
    "optimizer.lr=0.01",
)


def direct_split_scores(module, loader) -> dict[str, float]:
    """Per-image ``instance_scores`` of the objects prediction writes, pooled by hand."""
    per_image = []
    module.eval()
    with torch.no_grad():
        for batch in loader:
            logits = module(batch["image"])
            labels = instances_from_logits(logits, "semantic")
            true = center_crop_like(batch["instances"], logits).numpy()
            per_image += [instance_scores(p, t) for p, t in zip(labels, true, strict=True)]
    tp, n_true, n_pred = (sum(s[k] for s in per_image) for k in ("tp_50", "n_true", "n_pred"))
    iou_sum = sum(s["mean_matched_iou"] * s["tp_50"] for s in per_image)
    return {
        "f1_50": 2 * tp / (n_true + n_pred),
        "dsb_score": float(np.nanmean([s["dsb_score"] for s in per_image])),
        "panoptic_quality": iou_sum / (tp + (n_true - tp + n_pred - tp) / 2),
        "n_true": n_true,
        "n_pred": n_pred,
        "images": len(per_image),
    }


def assert_test_scores_logged(metrics: dict, objects: dict) -> dict[str, float]:
    """The logged test scores equal those computed directly; returns the direct ones."""
    datamodule, module = objects["datamodule"], objects["module"]
    # After testing, the module holds the tested (best) checkpoint's weights.
    expected = direct_split_scores(module, datamodule.test_dataloader())
    assert expected["n_true"] > 0
    for name in ("f1_50", "dsb_score", "panoptic_quality", "n_true", "n_pred"):
        assert metrics[f"test/instances/{name}"] == pytest.approx(expected[name], abs=1e-6), name
    pictures = sorted(p.stem for p in Path(metrics["output_dir"], "instances").glob("*.png"))
    assert pictures == sorted(datamodule.split["test"])
    assert len(pictures) == expected["images"]
    return expected


def test_logged_instance_scores_equal_direct_computation(make_config) -> None:
    metrics, objects = train(make_config(list(LEARNING)))
    assert assert_test_scores_logged(metrics, objects)["f1_50"] > 0
    run = Path(metrics["output_dir"])
    with open(run / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    val_f1 = [float(r["val/instances/f1_50"]) for r in rows if r.get("val/instances/f1_50")]
    assert len(val_f1) == 3 and all(0 <= v <= 1 for v in val_f1)
    assert any(r.get("val/instances/dsb_score") for r in rows)


def test_volumes_are_scored_in_3d(make_config) -> None:
    metrics, objects = train(make_config(VOLUME_OVERRIDES, tiny=False))
    assert assert_test_scores_logged(metrics, objects)["n_pred"] > 0


def test_instance_pictures_and_scores_reach_wandb(
    make_config, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    metrics, objects = train(make_config(["logger=wandb"]))
    finish_run(objects["trainer"])
    history, _, media = offline_run_contents(Path(metrics["output_dir"]))
    assert history["test/instances/f1_50"][-1] == pytest.approx(
        metrics["test/instances/f1_50"], abs=1e-6
    )
    assert "val/instances/dsb_score" in history
    count = len(objects["datamodule"].split["test"])
    assert history["test/instances/_type"] == ["images/separated"]
    assert history["test/instances/count"] == [count]
    assert sum("test/instances" in str(path) for path in media) == count


def write_folder(root: Path, instance_masks: bool) -> Path:
    """Six 32x32 images with two touching boxes each; masks binary or instance labels."""
    for folder in ("images", "masks"):
        (root / folder).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for index in range(6):
        labels = np.zeros((32, 32), np.uint16)
        labels[4 + index : 14 + index, 6:20] = 1
        labels[4 + index : 14 + index, 20:26] = 2
        image = ((labels > 0) * 150 + rng.integers(0, 60, labels.shape)).astype(np.uint8)
        mask = labels if instance_masks else (labels > 0).astype(np.uint8)
        Image.fromarray(image).save(root / "images" / f"a{index}.png")
        Image.fromarray(mask).save(root / "masks" / f"a{index}.png")
    return root


def folder_config(make_config, root: Path, *overrides: str):
    tiny = ("model.base_channels=4", "model.depth=2", "trainer.max_epochs=1", "data.batch_size=2")
    quiet = ("trainer.enable_progress_bar=false", "~callbacks.rich_progress_bar")
    return make_config(["data=folder", f"data.root={root}", *tiny, *quiet, *overrides], tiny=False)


def test_data_without_instance_labels_logs_no_instance_scores(make_config, tmp_path) -> None:
    metrics, _ = train(folder_config(make_config, write_folder(tmp_path / "plain", False)))
    assert "test/miou" in metrics
    assert not [key for key in metrics if "/instances/" in key]
    assert not (Path(metrics["output_dir"]) / "instances").exists()


def test_instance_masks_reach_evaluation_batches_whole_and_unpadded(make_config, tmp_path) -> None:
    root = write_folder(tmp_path / "labels", True)
    cfg = folder_config(make_config, root, "data.mask_encoding=instances", "model.padding=valid")
    datamodule = instantiate(cfg.data)
    datamodule.configure_for_model(instantiate(cfg.model))
    datamodule.setup()
    assert "instances" not in next(iter(datamodule.train_dataloader()))
    batch = next(iter(datamodule.val_dataloader()))
    for name, labels, mask in zip(batch["name"], batch["instances"], batch["mask"], strict=True):
        stored = np.asarray(Image.open(root / "masks" / f"{name}.png"))
        inside = mask != cfg.data.ignore_index
        # The valid-padding target region is larger than the image: padding has label 0.
        assert labels.shape != stored.shape and not labels[~inside].any()
        assert np.array_equal(labels[inside].numpy().reshape(stored.shape), stored)
