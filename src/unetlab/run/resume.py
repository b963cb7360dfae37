"""``ckpt_path=PATH|last``: find, check and continue from a training checkpoint.

``last`` means the newest checkpoint in ``<run folder>/checkpoints/`` when the run folder
holds one (resume with ``hydra.run.dir=<run folder> ckpt_path=last``), else the newest under
``<paths.log_dir>/<task_name>/runs/*/checkpoints/``. The newest is ``last.ckpt``, except after
a kill between writing the best checkpoint and ``last.ckpt``. A run resumed from another
run's folder continues writing there, so checkpoints, metrics and pictures stay in one place.
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
from unetlab.run.resumed_metrics import resume_step, set_aside_metrics

log = logging.getLogger(__name__)

LAST = "last"
LAST_FILE = "last.ckpt"
CHECKPOINT_DIR = "checkpoints"


def find_last_checkpoint(output_dir: Path, runs_dir: Path | None) -> Path:
    """The checkpoint ``ckpt_path=last`` stands for.

    Args:
        output_dir: This run's folder; its newest checkpoint is used when it has one.
        runs_dir: Folder of earlier run folders searched next (newest checkpoint first), or
            ``None`` to search nowhere else.

    Raises:
        ConfigError: No checkpoint was found.
    """
    own = output_dir / CHECKPOINT_DIR
    candidates = list(own.glob("*.ckpt"))
    if not candidates and runs_dir is not None and runs_dir.is_dir():
        candidates = list(runs_dir.glob(f"*/{CHECKPOINT_DIR}/*.ckpt"))
    if not candidates:
        searched = f"{own}" + (f" or {runs_dir}/*/{CHECKPOINT_DIR}" if runs_dir else "")
        raise ConfigError(
            f"ckpt_path=last: no checkpoint found ({searched}); start without ckpt_path, "
            "or pass ckpt_path=PATH of a .ckpt file"
        )
    # Checkpoints of one moment have (nearly) the same time: last.ckpt wins a tie.
    return max(candidates, key=lambda path: (path.stat().st_mtime, path.name == LAST_FILE))


def prepare_resume(cfg: DictConfig) -> Path | None:
    """Resolve and check ``cfg.ckpt_path`` before anything is built.

    Sets ``cfg.ckpt_path`` to the checkpoint file and, when ``last`` is found in another run's
    folder, ``cfg.paths.output_dir`` to that folder. The rows of the output folder's
    ``metrics.csv`` logged before the checkpoint are set aside, for
    :func:`~unetlab.run.resumed_metrics.restore_metrics` to put back once the loggers have
    started.

    Returns:
        The checkpoint to resume from, or ``None`` for a fresh run.

    Raises:
        FileNotFoundError: ``ckpt_path`` names no file.
        ConfigError: No checkpoint for ``last``, or the checkpoint is unreadable, unsafe,
            holds no training state, or was trained with another network than the config
            describes.
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
            raise FileNotFoundError(
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
        set_aside_metrics(Path(cfg.paths.output_dir), resume_step(checkpoint))
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
