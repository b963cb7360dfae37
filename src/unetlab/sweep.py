"""The summary of a multirun: one row per job, in the sweep folder.

``SweepSummary`` is a Hydra callback (``hydra.callbacks`` in ``conf/hydra/default.yaml``). At
the end of each job it writes ``sweep_job.json`` into the job's folder, so it works with any
launcher, also when jobs run in other processes or on other machines, and gathers the files
of all jobs so far into ``summary.csv`` and ``summary.md`` in the sweep folder: the job's
overrides, its status, the best monitored value, the test mIoU and the wall time. The summary
is thus up to date after every job, also if the sweep itself stops with an error, and is
written once more (and printed) at the end of the multirun.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from lightning.fabric.utilities.rank_zero import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from unetlab.atomic_file import write_json_atomic, write_text_atomic

JOB_FILE = "sweep_job.json"
RESULT_FILE = "result.json"
TEST_METRIC = "test/miou"


def read_result(output_dir: Path) -> dict[str, Any]:
    """The ``result.json`` that ``train.py`` leaves in a run folder (empty if there is none)."""
    path = output_dir / RESULT_FILE
    if not path.is_file():
        return {}
    return json.loads(path.read_text())


def job_row(
    job_return: JobReturn,
    output_dir: Path,
    job_num: int,
    monitor_key: str,
    wall_time_s: float,
) -> dict[str, Any]:
    """One summary row for a finished job.

    A job is failed when it raised, returned no finite value, or its ``result.json`` says so.

    Args:
        job_return: What Hydra got back from the job.
        output_dir: The job's run folder.
        job_num: ``hydra.job.num``.
        monitor_key: Name of the returned value, e.g. ``val/miou_best``.
        wall_time_s: Seconds the job took.

    Returns:
        The row as a JSON-ready dict.
    """
    result = read_result(output_dir)
    error = result.get("error")
    value = None
    if job_return.status == JobStatus.FAILED:
        error = error or f"{type(job_return._return_value).__name__}: {job_return._return_value}"
    else:
        value = job_return.return_value
    finite = isinstance(value, (int, float)) and math.isfinite(value)
    metrics = result.get("metrics", {})
    return {
        "job": job_num,
        "overrides": list(job_return.overrides or []),
        "status": "completed" if finite and not error else "failed",
        monitor_key: float(value) if finite else None,
        TEST_METRIC: metrics.get(TEST_METRIC),
        "wall_time_s": round(wall_time_s, 1),
        "run_dir": str(output_dir),
        "error": error or ("no finite result" if not finite else None),
    }


def varying_overrides(rows: Sequence[dict[str, Any]]) -> list[list[str]]:
    """Each row's overrides, cut down to the keys whose values differ between rows."""
    values: dict[str, set[str]] = {}
    for row in rows:
        for override in row["overrides"]:
            key, _, value = override.partition("=")
            values.setdefault(key, set()).add(value)
    present = [{override.partition("=")[0] for override in row["overrides"]} for row in rows]
    varying = {
        key
        for key, seen in values.items()
        if len(seen) > 1 or any(key not in keys for keys in present)
    }
    if not varying:
        return [list(row["overrides"]) for row in rows]
    return [
        [override for override in row["overrides"] if override.partition("=")[0] in varying]
        for row in rows
    ]


def _short(override: str) -> str:
    """``key=value`` with a long float value cut to 4 significant digits (for tables)."""
    key, sep, value = override.partition("=")
    try:
        number = float(value)
    except ValueError:
        return override
    return f"{key}{sep}{number:.4g}" if len(value) > 8 else override


def _number(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def write_summary(rows: Sequence[dict[str, Any]], sweep_dir: Path, monitor_key: str) -> str:
    """Write ``summary.csv`` and ``summary.md`` into ``sweep_dir``.

    Args:
        rows: One ``job_row`` per job.
        sweep_dir: The multirun's folder.
        monitor_key: Column of the returned value, e.g. ``val/miou_best``.

    Returns:
        The markdown table.
    """
    rows = sorted(rows, key=lambda row: row["job"])
    shown = varying_overrides(rows)
    columns = [
        "job",
        "overrides",
        "status",
        monitor_key,
        TEST_METRIC,
        "wall_time_s",
        "run_dir",
        "error",
    ]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    for row, overrides in zip(rows, shown, strict=True):
        writer.writerow({**row, "overrides": " ".join(overrides)})
    write_text_atomic(sweep_dir / "summary.csv", buffer.getvalue())
    lines = [
        f"| job | overrides | status | {monitor_key} | {TEST_METRIC} | wall time (s) |",
        "|---:|---|---|---:|---:|---:|",
    ]
    for row, overrides in zip(rows, shown, strict=True):
        status = row["status"] if not row["error"] else f"{row['status']}: {row['error']}"
        cells = [
            str(row["job"]),
            " ".join(f"`{_short(override)}`" for override in overrides),
            status.replace("|", "/").replace("\n", " "),
            _number(row[monitor_key], 4),
            _number(row[TEST_METRIC], 4),
            _number(row["wall_time_s"], 1),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    table = "\n".join(lines) + "\n"
    write_text_atomic(sweep_dir / "summary.md", table)
    return table


def summarize_sweep(sweep_dir: Path, monitor_key: str) -> tuple[str, list[dict[str, Any]]]:
    """Gather the ``sweep_job.json`` files under ``sweep_dir`` and write the summary.

    Returns:
        The markdown table ("" without jobs) and the rows.
    """
    rows = [json.loads(path.read_text()) for path in sweep_dir.rglob(JOB_FILE)]
    if not rows:
        return "", rows
    return write_summary(rows, sweep_dir, monitor_key), rows


def _monitor_key(config: DictConfig) -> str:
    """Name of the value a job returns: the best monitored metric."""
    return f"{OmegaConf.select(config, 'monitor.metric', default='val/miou')}_best"


class SweepSummary(Callback):
    """Hydra callback writing ``summary.csv`` and ``summary.md`` after every job of a multirun."""

    def __init__(self) -> None:
        self._started = time.perf_counter()

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._started = time.perf_counter()

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if config.hydra.mode != RunMode.MULTIRUN or getattr(rank_zero_only, "rank", 0) != 0:
            return
        output_dir = Path(config.hydra.runtime.output_dir)
        row = job_row(
            job_return,
            output_dir,
            int(config.hydra.job.num),
            _monitor_key(config),
            time.perf_counter() - self._started,
        )
        write_json_atomic(output_dir / JOB_FILE, row)
        summarize_sweep(Path(config.hydra.sweep.dir), _monitor_key(config))

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        # The sweep folder is under paths.log_dir, which reads ${hydra:runtime.cwd}: Hydra's
        # values must be readable before the sweeper starts.
        if not HydraConfig.initialized():
            HydraConfig.instance().set_config(config)
        # Sweepers that keep state there (Optuna's sqlite study) need the folder first.
        Path(config.hydra.sweep.dir).mkdir(parents=True, exist_ok=True)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        table, rows = summarize_sweep(sweep_dir, _monitor_key(config))
        if not rows:
            return
        failed = sum(row["status"] == "failed" for row in rows)
        print(f"SWEEP {sweep_dir / 'summary.md'}\n{table}", end="", flush=True)
        if failed:
            print(f"{failed} of {len(rows)} jobs failed", flush=True)
