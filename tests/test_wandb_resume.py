"""A run resumed from its checkpoint (``ckpt_path=last``) continues the same W&B run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.wandb_offline import finish_run, offline_segments
from unetlab.loggers import RUN_ID_FILE, wandb_run_id
from unetlab.train import train


@pytest.fixture
def wandb_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DATA_DIR", str(tmp_path / "wandb_data"))
    monkeypatch.delenv("WANDB_RUN_ID", raising=False)


def test_resumed_run_writes_into_the_same_wandb_run(make_config, wandb_offline) -> None:
    metrics, objects = train(make_config(["logger=wandb", "trainer.max_epochs=1"]))
    finish_run(objects["trainer"])
    run_dir = Path(metrics["output_dir"])
    stored = (run_dir / RUN_ID_FILE).read_text().strip()

    resumed = make_config(["logger=wandb", "trainer.max_epochs=2", "ckpt_path=last"])
    metrics, objects = train(resumed)
    finish_run(objects["trainer"])

    first, second = offline_segments(run_dir)
    assert first["run_id"] == second["run_id"] == stored
    assert (run_dir / RUN_ID_FILE).read_text().strip() == stored
    # Epoch 0 before the interruption, epoch 1 after it, on one continuing step axis.
    assert first["history"]["epoch"][0] == 0 and set(second["history"]["epoch"]) >= {1}
    assert 0 not in second["history"]["epoch"]
    assert len(first["history"]["val/miou"]) == len(second["history"]["val/miou"]) == 1
    steps_before = max(first["history"]["trainer/global_step"])
    steps_after = second["history"]["trainer/global_step"]
    assert min(steps_after) == steps_before > 0
    assert max(steps_after) == 2 * steps_before


def test_run_id_is_kept_when_resuming_and_new_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WANDB_RUN_ID", raising=False)
    run = tmp_path / "run"
    checkpoint = run / "checkpoints" / "last.ckpt"
    first = wandb_run_id(run)
    assert (run / RUN_ID_FILE).read_text().strip() == first
    assert len(first) == 8 and first.isalnum()
    assert wandb_run_id(run, checkpoint) == first
    # Resumed into another folder: the checkpoint's run folder holds the id.
    elsewhere = tmp_path / "elsewhere"
    assert wandb_run_id(elsewhere, checkpoint) == first
    assert (elsewhere / RUN_ID_FILE).read_text().strip() == first
    # A fresh run in the same folder is another W&B run.
    assert wandb_run_id(run) != first
    # Under `wandb agent`: the id the agent chose.
    monkeypatch.setenv("WANDB_RUN_ID", "agent123")
    assert wandb_run_id(tmp_path / "swept") == "agent123"
