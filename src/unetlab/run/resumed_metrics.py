"""One ``metrics.csv`` per run folder, also across interruptions and resumes.

Lightning's CSV logger deletes the ``metrics.csv`` it finds and writes a new one. A resumed
run instead keeps the rows logged before its checkpoint (those after it are logged again by
the replay) and appends its own, under one header that holds every column.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import CSVLogger

from unetlab.atomic_file import atomic_file

METRICS_FILE = "metrics.csv"
EARLIER_METRICS_FILE = "metrics_before_resume.csv"


def resume_step(checkpoint: dict[str, Any]) -> int:
    """The logging step a run resumed from ``checkpoint`` continues at.

    Lightning logs with the count of batches that stepped the optimizer; epoch-end rows of
    the epoch the checkpoint closes carry that count minus one.
    """
    epoch_loop = checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_loop.state_dict", {})
    return int(epoch_loop.get("_batches_that_stepped", checkpoint.get("global_step", 0)))


def set_aside_metrics(run_dir: Path, before_step: int) -> None:
    """Move the rows of ``run_dir/metrics.csv`` logged before ``before_step`` aside.

    They wait in ``metrics_before_resume.csv`` until :func:`restore_metrics` puts them back,
    after the CSV logger has started (and deleted any ``metrics.csv``). Rows a run killed
    before that moment set aside are found there again by the next resume.
    """
    current, earlier = run_dir / METRICS_FILE, run_dir / EARLIER_METRICS_FILE
    source = current if current.is_file() else earlier
    if not source.is_file():
        return
    with open(source, newline="") as handle:
        reader = csv.DictReader(handle)
        header = list(reader.fieldnames or [])
        rows = [row for row in reader if _step(row) < before_step]
    _write_csv(earlier, header, rows)
    if current.is_file():
        current.unlink()


def restore_metrics(run_dir: Path, loggers: Iterable[Any]) -> None:
    """Make the set-aside rows the start of ``run_dir/metrics.csv`` again.

    Call it after the loggers have started; CSV loggers then append to those rows.
    """
    earlier = run_dir / EARLIER_METRICS_FILE
    if not earlier.is_file():
        return
    for logger in loggers:
        if isinstance(logger, CSVLogger):
            logger.experiment  # noqa: B018 -- starting the writer deletes an old metrics.csv
    os.replace(earlier, run_dir / METRICS_FILE)
    continue_csv_logs(loggers)


def continue_csv_logs(loggers: Iterable[Any]) -> None:
    """Let CSV loggers append to the ``metrics.csv`` already in their folder.

    Without this, a writer that does not know the file's columns rewrites it with only its
    own and fails on the existing rows (``dict contains fields not in fieldnames``). That
    file comes from an earlier attempt of a resumed run, or, after ``ddp_spawn`` training,
    from rank 0's child process.
    """
    for logger in loggers:
        if not isinstance(logger, CSVLogger):
            continue
        path = Path(logger.log_dir) / METRICS_FILE
        if not path.is_file():
            continue
        with open(path, newline="") as handle:
            header = next(csv.reader(handle), [])
        writer = logger.experiment
        writer.metrics_keys = sorted(set(writer.metrics_keys) | set(header))


def _step(row: dict[str, str]) -> float:
    value = row.get("step") or ""
    return float(value) if value else float("inf")


def _write_csv(path: Path, header: list[str], rows: list[dict[str, str]]) -> None:
    """Write ``path`` through a temporary file, so a kill leaves the old or the new file."""
    with atomic_file(path) as temp, open(temp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
