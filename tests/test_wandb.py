"""`logger=wandb` in offline mode: the run files hold the logged metrics and media."""

from __future__ import annotations

from pathlib import Path

import pytest
from wandb.proto import wandb_internal_pb2
from wandb.sdk.internal import datastore

from unetlab.train import train


def read_offline_records(run_dir: Path) -> list[wandb_internal_pb2.Record]:
    """Every record of the offline run's transaction log (``run-*.wandb``)."""
    (log_file,) = run_dir.glob("wandb/offline-run-*/run-*.wandb")
    store = datastore.DataStore()
    store.open_for_scan(str(log_file))
    records = []
    while (data := store.scan_data()) is not None:
        record = wandb_internal_pb2.Record()
        record.ParseFromString(data)
        records.append(record)
    return records


def test_wandb_offline_run_has_metrics_config_and_media(
    make_config, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = make_config(["logger=wandb", "callbacks.prediction_images.every_n_epochs=1"])
    metrics, objects = train(cfg)
    objects["trainer"].loggers[0].experiment.finish()

    records = read_offline_records(Path(metrics["output_dir"]))
    logged = {}
    for record in records:
        if record.WhichOneof("record_type") == "history":
            logged.update({item.nested_key[0] if item.nested_key else item.key: item.value_json
                           for item in record.history.item})
    assert float(logged["val/miou"]) == pytest.approx(metrics["val/miou"], abs=1e-6)
    assert "val/iou/nucleus" in logged
    assert "val/predictions" in logged and "val/confusion_matrix" in logged
    config_items = {
        item.key: item.value_json
        for record in records
        if record.WhichOneof("record_type") == "config"
        for item in record.config.update
    }
    assert "model" in config_items and "${" not in config_items["model"]
