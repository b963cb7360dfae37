"""The real training function on a shrunk config."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import torch
import yaml

from unetlab.train import train


def read_metrics(path) -> list[dict[str, str]]:
    with open(path) as handle:
        return list(csv.DictReader(handle))


def test_train_writes_run_folder_and_metrics(make_config) -> None:
    cfg = make_config()
    metrics, objects = train(cfg)
    run = objects["trainer"].default_root_dir
    assert metrics["output_dir"] == run
    assert 0.0 <= metrics["val/miou_best"] <= 1.0
    assert 0.0 <= metrics["test/miou"] <= 1.0
    checkpoints = {p.name for p in Path(run, "checkpoints").iterdir()}
    assert "last.ckpt" in checkpoints and len(checkpoints) == 2
    assert metrics["ckpt_path"].endswith(".ckpt")

    rows = read_metrics(f"{run}/metrics.csv")
    columns = set(rows[0])
    for name in (
        "train/loss_epoch",
        "val/loss",
        "val/miou",
        "val/miou_best",
        "test/miou",
        "val/iou/background",
        "val/iou/nucleus",
    ):
        assert name in columns, name
    logged_best = [float(r["val/miou_best"]) for r in rows if r.get("val/miou_best")]
    assert math.isclose(logged_best[-1], metrics["val/miou_best"], rel_tol=1e-6)

    saved = yaml.safe_load(Path(f"{run}/config.yaml").read_text())
    assert saved["model"]["base_channels"] == 4
    assert "${" not in json.dumps(saved)
    split = json.loads(Path(f"{run}/split.json").read_text())
    assert sorted(split) == ["test", "train", "val"]
    assert not set(split["train"]) & (set(split["val"]) | set(split["test"]))
    info = json.loads(Path(f"{run}/run_info.json").read_text())
    assert info["seed"] == cfg.seed and "torch" in info["versions"]
    assert Path(run, "predictions.png").stat().st_size > 0


def test_checkpoint_holds_plain_config_and_loads_weights_only(make_config) -> None:
    metrics, _ = train(make_config())
    checkpoint = torch.load(metrics["ckpt_path"], weights_only=True, map_location="cpu")
    assert checkpoint["unetlab_config"]["model"]["_target_"] == "unetlab.models.UNet"
    assert any(key.startswith("net.") for key in checkpoint["state_dict"])


def test_training_learns_on_synthetic_data(make_config) -> None:
    cfg = make_config(
        [
            "trainer.max_epochs=6",
            "data.source.num_images=24",
            "data.source.image_size=48",
            "model.base_channels=8",
            "optimizer.lr=0.01",
        ]
    )
    metrics, _ = train(cfg)
    assert metrics["val/miou_best"] > 0.6


@pytest.mark.parametrize("scheduler", ["poly", "plateau", "onecycle", "none"])
def test_schedulers_run(make_config, scheduler: str) -> None:
    metrics, objects = train(make_config([f"scheduler={scheduler}", "test=false"]))
    assert metrics["val/miou_best"] >= 0.0
    assert objects["trainer"].global_step > 0
