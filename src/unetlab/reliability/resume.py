"""``ckpt_path=PATH|last``: find, check and continue from a training checkpoint.

``last`` means ``<run folder>/checkpoints/last.ckpt`` when the run folder holds one (resume
with ``hydra.run.dir=<run folder> ckpt_path=last``), else the newest ``last.ckpt`` under
``<paths.log_dir>/<task_name>/runs/*/checkpoints/``. A run resumed from another run's folder
continues writing there, so checkpoints, metrics and pictures stay in one place.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.utilities.rank_zero import rank_zero_only
from omegaconf import DictConfig

from unetlab.checkpoint import CONFIG_KEY, load_checkpoint
from unetlab.config import ConfigError, resolved_container

log = logging.getLogger(__name__)

LAST = "last"
LAST_FILE = "last.ckpt"
CHECKPOINT_DIR = "checkpoints"
METRICS_FILE = "metrics.csv"


def find_last_checkpoint(output_dir: Path, runs_dir: Path | None) -> Path:
    """The checkpoint ``ckpt_path=last`` stands for.

    Args:
        output_dir: This run's folder; its ``checkpoints/last.ckpt`` is used when present.
        runs_dir: Folder of earlier run folders searched next (newest ``last.ckpt`` first), or
            ``None`` to search nowhere else.

    Raises:
        ConfigError: No ``last.ckpt`` was found.
    """
    own = output_dir / CHECKPOINT_DIR / LAST_FILE
    if own.is_file():
        return own
    candidates = []
    if runs_dir is not None and runs_dir.is_dir():
        candidates = list(runs_dir.glob(f"*/{CHECKPOINT_DIR}/{LAST_FILE}"))
    if not candidates:
        searched = f"{own}" + (f" or {runs_dir}/*/{CHECKPOINT_DIR}/{LAST_FILE}" if runs_dir else "")
        raise ConfigError(
            f"ckpt_path=last: no {LAST_FILE} found ({searched}); start without ckpt_path, "
            "or pass ckpt_path=PATH of a .ckpt file"
        )
    return max(candidates, key=lambda path: path.stat().st_mtime)


def prepare_resume(cfg: DictConfig) -> Path | None:
    """Resolve and check ``cfg.ckpt_path`` before anything is built.

    Sets ``cfg.ckpt_path`` to the checkpoint file and, when ``last`` is found in another run's
    folder, ``cfg.paths.output_dir`` to that folder. A ``metrics.csv`` already in the output
    folder is renamed to ``metrics_before_resume.csv`` (the CSV logger would overwrite it).

    Returns:
        The checkpoint to resume from, or ``None`` for a fresh run.

    Raises:
        ConfigError: The checkpoint is missing, unreadable, unsafe, holds no training state,
            or was trained with another network than the config describes.
    """
    value = cfg.get("ckpt_path")
    if value is None:
        return None
    output_dir = Path(cfg.paths.output_dir)
    if str(value) == LAST:
        path = find_last_checkpoint(output_dir, _runs_dir(cfg))
        run_dir = path.parent.parent
        if run_dir.resolve() != output_dir.resolve():
            log.info("resuming run %s: its folder receives this run's outputs", run_dir)
            cfg.paths.output_dir = str(run_dir)
    else:
        path = Path(str(value)).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"ckpt_path={value}: file not found; pass the path of a .ckpt file, or "
                "ckpt_path=last for the newest run's last.ckpt"
            )
    try:
        checkpoint = load_checkpoint(path)
    except ValueError as error:
        raise ConfigError(f"ckpt_path: {error}") from None
    check_resumable(checkpoint, resolved_container(cfg), path)
    cfg.ckpt_path = str(path)
    if rank_zero_only.rank == 0:
        _keep_metrics(Path(cfg.paths.output_dir))
    log.info("resuming from %s (epoch %s)", path, checkpoint.get("epoch"))
    return path


def check_resumable(checkpoint: dict[str, Any], config: dict[str, Any], path: Path) -> None:
    """Raise ``ConfigError`` unless ``checkpoint`` can continue the run ``config`` describes."""
    if "optimizer_states" not in checkpoint or "loops" not in checkpoint:
        raise ConfigError(
            f"{path}: holds weights only, no optimizer or loop state, so training cannot "
            "resume from it; pass a checkpoint written during training (e.g. last.ckpt)"
        )
    stored = (checkpoint.get(CONFIG_KEY) or {}).get("model")
    if stored is None:
        return
    changed = sorted(_differences(stored, config.get("model", {}), "model"))
    if changed:
        run_dir = path.parent.parent
        raise ConfigError(
            f"{path}: trained with another network ({'; '.join(changed[:4])}); repeat the "
            f"interrupted run's overrides (listed in {run_dir}/.hydra/overrides.yaml)"
        )


def _differences(stored: Any, current: Any, key: str) -> list[str]:
    if isinstance(stored, dict) and isinstance(current, dict):
        return [
            difference
            for name in stored.keys() | current.keys()
            for difference in _differences(stored.get(name), current.get(name), f"{key}.{name}")
        ]
    if stored != current:
        return [f"{key}={current} here, {stored} in the checkpoint"]
    return []


def _runs_dir(cfg: DictConfig) -> Path | None:
    """Where single runs of this task keep their folders (not searched in a multirun)."""
    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        return None
    return Path(cfg.paths.log_dir) / str(cfg.task_name) / "runs"


def _keep_metrics(run_dir: Path) -> None:
    metrics = run_dir / METRICS_FILE
    if not metrics.is_file():
        return
    target = run_dir / "metrics_before_resume.csv"
    count = 1
    while target.exists():
        count += 1
        target = run_dir / f"metrics_before_resume_{count}.csv"
    metrics.rename(target)
