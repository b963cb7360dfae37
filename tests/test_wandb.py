"""`logger=wandb` in offline mode: the run files hold the logged metrics, config and media."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.wandb_offline import offline_run_contents
from unetlab.train import train


def test_wandb_offline_run_has_metrics_config_and_media(
    make_config, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = make_config(
        ["logger=wandb", "trainer.max_epochs=2", "callbacks.prediction_images.every_n_epochs=1"]
    )
    metrics, objects = train(cfg)
    objects["trainer"].loggers[0].experiment.finish()

    history, config, media = offline_run_contents(Path(metrics["output_dir"]))
    assert len(history["val/miou"]) == 2
    assert history["val/miou"][-1] == pytest.approx(metrics["val/miou"], abs=1e-6)
    assert max(history["val/miou"]) == pytest.approx(metrics["val/miou_best"], abs=1e-6)
    assert "val/iou/nucleus" in history and "test/miou" in history
    assert history["val/predictions/_type"] == ["images/separated"] * 2
    assert "ground_truth" in history["val/predictions/all_masks"][0][0]
    assert "prediction" in history["val/predictions/all_masks"][0][0]
    assert history["val/confusion_matrix/_type"] == ["image-file"] * 2
    media_names = {path.name for path in media}
    for key in ("val/confusion_matrix/path",):
        assert Path(history[key][0]).name in media_names
    assert sum(".mask." in name for name in media_names) >= 2
    assert config["model"]["base_channels"] == cfg.model.base_channels
    assert "${" not in json.dumps(config)
