"""Training command: ``python train.py [hydra overrides]`` (also ``unetlab-train``).

The run itself is :func:`unetlab.run.training.train`; this module reads the command line,
runs it (one job, or each job of a multirun) and reports problems as
:mod:`unetlab.cli.runner` describes.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from unetlab.cli.runner import check_command_line, command_args, run_command
from unetlab.config_location import CONFIG_DIR
from unetlab.run.training import train

log = logging.getLogger(__name__)

PROG = "unetlab-train"

__all__ = ["main", "train"]


def _run_sweep_job(cfg: DictConfig) -> float | None:
    """One job of a multirun: a failure is logged and recorded, and the sweep goes on.

    Returns:
        The best monitored value, or ``None`` for a failed or diverged job (Optuna records
        the trial as failed).
    """
    from unetlab.atomic_file import write_json_atomic
    from unetlab.cli.errors import one_line
    from unetlab.sweep import RESULT_FILE

    try:
        metrics, _ = train(cfg)
    except Exception as error:
        log.error("job failed: %s", one_line(error), exc_info=True)
        result = {"status": "failed", "error": one_line(error)}
        write_json_atomic(Path(cfg.paths.output_dir) / RESULT_FILE, result)
        return None
    value = metrics.get(f"{cfg.monitor.metric}_best")
    return value if value is not None and math.isfinite(value) else None


def _run_single_job(cfg: DictConfig) -> float | None:
    """Train once; a divergence seen by every DDP rank is reported by rank 0 only."""
    from lightning.pytorch.utilities.rank_zero import rank_zero_only

    try:
        metrics, _ = train(cfg)
    except FloatingPointError:  # TrainingDiverged, NonFiniteLossError
        if rank_zero_only.rank != 0:
            return None
        raise
    return metrics.get(f"{cfg.monitor.metric}_best")


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def _hydra_main(cfg: DictConfig) -> float | None:
    """Hydra entry point; returns the best monitored value so sweeps can optimise it."""
    if HydraConfig.get().mode == RunMode.MULTIRUN:
        return _run_sweep_job(cfg)
    return run_command(PROG, lambda: _run_single_job(cfg))


def main(argv: Sequence[str] | None = None) -> float | None:
    """Console entry point.

    Config and data mistakes, NaN losses and failed DDP processes end the run with one line
    on stderr and the exit codes of :mod:`unetlab.cli.runner`. In a multirun a failed job
    does not stop the others.

    Args:
        argv: The overrides; default the command line.
    """
    check_command_line(PROG, "train", command_args(argv))
    return _hydra_main()


if __name__ == "__main__":
    main()
