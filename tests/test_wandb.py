"""`logger=wandb` in offline mode: the run files hold the logged metrics, config and media."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.wandb_offline import finish_run, offline_run_contents
from unetlab.loggers import instantiate_loggers
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
    finish_run(objects["trainer"])

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
    # W&B's own entries (`_wandb`: chart queries such as "${runSets}") are not the run config.
    run_config = {key: value for key, value in config.items() if not key.startswith("_wandb")}
    assert "${" not in json.dumps(run_config)


def test_multirun_job_is_its_own_run_in_the_sweep_group(
    make_config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    sweep_dir = tmp_path / "multiruns" / "2026-01-02_03-04-05"
    cfg = make_config(
        ["logger=wandb", "hydra.mode=MULTIRUN", f"hydra.sweep.dir={sweep_dir}", "hydra.job.num=3"]
    )
    job_dir = sweep_dir / "3"
    (logger,) = instantiate_loggers(cfg.logger, job_dir)
    assert logger._wandb_init["group"] == "2026-01-02_03-04-05"
    assert logger._wandb_init["name"] == "3"

    single = make_config(["logger=wandb", "logger.wandb.name=mine"])
    (logger,) = instantiate_loggers(single.logger, tmp_path / "run")
    assert logger._wandb_init["group"] is None and logger._wandb_init["name"] == "mine"


def test_online_without_api_key_is_one_clear_line(tmp_path: Path, data_cache: Path) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("WANDB_") and key != "NETRC"
    }
    env["HOME"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "logger=wandb", f"paths.cache_dir={data_cache}"],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "unetlab-train: error: logger=wandb logs online but no W&B API key was found: run `wandb login` "
        "(or set WANDB_API_KEY), or log offline with WANDB_MODE=offline"
    )
    assert "Traceback" not in result.stderr
