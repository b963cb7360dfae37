"""Multiruns: every job in its own folder, a summary at the end, failed jobs recorded."""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

from hydra.core.utils import JobReturn, JobStatus

from tests.conftest import run_train as run_command
from unetlab.sweep import JOB_FILE, job_row, varying_overrides, write_summary

# Small data and one epoch, without network keys so that any `model=` composes.
SWEEP_OVERRIDES = (
    "data.source.num_images=12",
    "data.source.image_size=32",
    "trainer.max_epochs=1",
    "trainer.accelerator=cpu",
    "trainer.enable_progress_bar=false",
    "~callbacks.rich_progress_bar",
)


def run_train(
    args: list[str], cwd: Path, data_cache: Path, timeout: int = 600
) -> subprocess.CompletedProcess:
    """``python train.py ARGS`` sharing the session's synthetic-data cache."""
    return run_command([*args, f"paths.cache_dir={data_cache}"], cwd, timeout)


def only_sweep_dir(cwd: Path) -> Path:
    (sweep_dir,) = (cwd / "logs" / "train" / "multiruns").iterdir()
    return sweep_dir


def test_multirun_summary_and_a_failed_job(tmp_path: Path, data_cache: Path) -> None:
    result = run_train(
        ["-m", "model=unet,resnet_unet", "data.batch_size=4,0", *SWEEP_OVERRIDES],
        tmp_path,
        data_cache,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    sweep_dir = only_sweep_dir(tmp_path)
    assert sorted(p.name for p in sweep_dir.iterdir() if p.is_dir()) == ["0", "1", "2", "3"]

    with open(sweep_dir / "summary.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["overrides"] for row in rows] == [
        "model=unet data.batch_size=4",
        "model=unet data.batch_size=0",
        "model=resnet_unet data.batch_size=4",
        "model=resnet_unet data.batch_size=0",
    ]
    assert [row["status"] for row in rows] == ["completed", "failed"] * 2
    for row in rows[::2]:
        assert 0.0 <= float(row["val/miou_best"]) <= 1.0
        assert 0.0 <= float(row["test/miou"]) <= 1.0
        assert float(row["wall_time_s"]) > 0
        assert (Path(row["run_dir"]) / "checkpoints" / "last.ckpt").is_file()
    for row in rows[1::2]:
        assert "batch_size" in row["error"] and not row["val/miou_best"]

    table = (sweep_dir / "summary.md").read_text()
    assert table.startswith("| job | overrides | status | val/miou_best | test/miou |")
    assert "| 2 | `model=resnet_unet` `data.batch_size=4` | completed |" in table
    assert f"SWEEP {sweep_dir / 'summary.md'}" in result.stdout
    assert "2 of 4 jobs failed" in result.stdout


def test_summary_rows_from_job_returns(tmp_path: Path) -> None:
    completed = JobReturn(overrides=["model=unet", "seed=1"], status=JobStatus.COMPLETED)
    completed.return_value = 0.75
    (tmp_path / "0").mkdir()
    result = {"status": "completed", "metrics": {"test/miou": 0.7}}
    (tmp_path / "0" / "result.json").write_text(json.dumps(result))
    failed = JobReturn(overrides=["model=unet", "seed=2"], status=JobStatus.FAILED)
    failed.return_value = RuntimeError("out of memory")
    diverged = JobReturn(overrides=["model=unet", "seed=3"], status=JobStatus.COMPLETED)
    diverged.return_value = None

    rows = [
        job_row(completed, tmp_path / "0", 0, "val/miou_best", 12.34),
        job_row(failed, tmp_path / "1", 1, "val/miou_best", 1.0),
        job_row(diverged, tmp_path / "2", 2, "val/miou_best", 2.0),
    ]
    assert rows[0]["status"] == "completed" and rows[0]["test/miou"] == 0.7
    assert rows[1]["status"] == "failed" and rows[1]["error"] == "RuntimeError: out of memory"
    assert rows[2]["status"] == "failed" and rows[2]["val/miou_best"] is None
    assert varying_overrides(rows) == [["seed=1"], ["seed=2"], ["seed=3"]]

    table = write_summary(rows, tmp_path, "val/miou_best")
    assert "| 0 | `seed=1` | completed | 0.7500 | 0.7000 | 12.3 |" in table
    assert (tmp_path / "summary.csv").read_text().count("\n") == 4
    assert not list(tmp_path.rglob(JOB_FILE))
