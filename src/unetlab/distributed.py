"""Multi-process training that stays correct inside Hydra runs and multiruns.

Lightning's ``ddp`` strategy starts ranks 1..N-1 by running the command line again. Under
Hydra it appends ``hydra.run.dir=<hydra.run.dir>`` to ``sys.argv``, which breaks in a
multirun: ``sys.argv`` holds ``-m`` and the whole sweep (``model=unet,resnet_unet``), so every
child starts the sweep again, and ``hydra.run.dir`` is not the job's folder. Here the children
get the job's own overrides, its output folder and ``hydra.mode=RUN`` instead.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.distributed as dist
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.strategies.launchers import subprocess_script

# Set by Lightning's launchers for one training; removed again when a job ends.
LAUNCHER_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")
# Command-line flags that say where the config is; the children need them too.
CONFIG_FLAGS = ("--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd")
# Hydra settings the children get their own values for.
CHILD_HYDRA_KEYS = ("hydra.run.dir", "hydra.job.name", "hydra.output_subdir", "hydra.mode")


def hydra_job_command(local_rank: int) -> tuple[list[str], str]:
    """The command that starts rank ``local_rank`` of the current Hydra job, and its cwd.

    The child re-runs the same script with the job's overrides (one value per key, also in a
    multirun), in the job's output folder, in RUN mode and without writing ``.hydra/`` again.

    Args:
        local_rank: The rank on this machine of the process to start.

    Returns:
        ``(command, cwd)`` as Lightning's subprocess launcher expects them.
    """
    import __main__

    hydra_cfg = HydraConfig.get()
    if __main__.__spec__ is None:
        command = [sys.executable, os.path.abspath(sys.argv[0])]
    else:
        command = [sys.executable, "-m", __main__.__spec__.name]
    command += config_flags(sys.argv[1:])
    command += [
        override
        for override in hydra_cfg.overrides.hydra
        if not override.lstrip("+~").startswith(CHILD_HYDRA_KEYS)
    ]
    command += list(hydra_cfg.overrides.task)
    command += [
        f'hydra.run.dir="{hydra_cfg.runtime.output_dir}"',
        f"hydra.job.name={hydra_cfg.job.name}_rank{local_rank}",
        "hydra.output_subdir=null",
        "hydra.mode=RUN",
    ]
    return command, hydra_cfg.runtime.cwd


def config_flags(argv: list[str]) -> list[str]:
    """The ``--config-path``/``--config-name``/``--config-dir`` flags of a command line."""
    flags = []
    for index, arg in enumerate(argv):
        name = arg.split("=", 1)[0]
        if name in CONFIG_FLAGS:
            flags.append(arg)
            if "=" not in arg and index + 1 < len(argv):
                flags.append(argv[index + 1])
    return flags


def use_hydra_job_command() -> None:
    """Make Lightning's ``ddp`` subprocess launcher start children with ``hydra_job_command``."""
    subprocess_script._hydra_subprocess_cmd = hydra_job_command


def leave_process_group() -> None:
    """Close this process's process group, if it has one."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def best_score_in_checkpoint(path: str | Path, monitor: str) -> float | None:
    """The best ``monitor`` score that a checkpoint's ``ModelCheckpoint`` state records.

    With ``ddp_fork`` / ``ddp_spawn`` the main process gets the best checkpoint's path back
    from the workers, but not its score.

    Args:
        path: The best checkpoint.
        monitor: The monitored metric, e.g. ``val/miou``.

    Returns:
        The score, or ``None`` if the checkpoint holds none for ``monitor``.
    """
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    for state in checkpoint.get("callbacks", {}).values():
        if not isinstance(state, dict) or state.get("monitor") != monitor:
            continue
        if state.get("best_model_score") is not None:
            return float(state["best_model_score"])
    return None


@contextmanager
def job_process_group() -> Iterator[None]:
    """Leave the process as the job found it: no process group, no launcher variables.

    A multirun runs its jobs one after another in one process. Lightning keeps the process
    group of a ``ddp`` training alive, so the next job would reuse the group of processes that
    have already exited; this closes it at the end of each job.
    """
    saved = {name: os.environ.get(name) for name in LAUNCHER_ENV}
    try:
        yield
    finally:
        leave_process_group()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
