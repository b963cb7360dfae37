"""Instantiating the ``logger`` group: W&B run names, sweep groups, run ids and a login check.

A W&B run's id is stored in the run folder (``wandb_run_id``), so a run resumed from one of
its checkpoints (``ckpt_path=last``) continues the same W&B run instead of starting another.
"""

from __future__ import annotations

import netrc
import os
import secrets
import string
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.fabric.utilities.rank_zero import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from unetlab.config import ConfigError

WANDB_TARGETS = {"lightning.pytorch.loggers.wandb.WandbLogger", "unetlab.wandb_logger.WandbLogger"}
RUN_ID_FILE = "wandb_run_id"
OFFLINE_MODES = {"offline", "dryrun", "disabled"}


def wandb_is_offline(offline: bool = False) -> bool:
    """Whether W&B logs without the server (``offline: true`` or ``WANDB_MODE``)."""
    return offline or os.environ.get("WANDB_MODE", "").lower() in OFFLINE_MODES


def wandb_has_credentials() -> bool:
    """Whether an API key is set in the environment or stored by ``wandb login`` (netrc)."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai").hostname
    path = Path(os.environ.get("NETRC") or Path.home() / ".netrc")
    try:
        entry = netrc.netrc(str(path)).authenticators(host or "")
    except (OSError, netrc.NetrcParseError):
        return False
    return bool(entry and entry[2])


def check_wandb_login(offline: bool = False) -> None:
    """Fail at once, in one line, when W&B would log online without an API key.

    Raises:
        ConfigError: Online mode and no key (instead of a prompt or a hang).
    """
    if wandb_is_offline(offline) or wandb_has_credentials():
        return
    raise ConfigError(
        "logger=wandb logs online but no W&B API key was found: run `wandb login` "
        "(or set WANDB_API_KEY), or log offline with WANDB_MODE=offline"
    )


def wandb_names(output_dir: Path) -> dict[str, str | None]:
    """W&B run name and group: the run folder's name, and the sweep folder's in a multirun."""
    group = None
    if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        group = Path(HydraConfig.get().sweep.dir).name
    return {"name": output_dir.name, "group": group}


def new_run_id() -> str:
    """A new W&B run id: 8 random lowercase letters and digits, as W&B makes them."""
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))


def wandb_run_id(output_dir: Path, resume_from: str | Path | None = None) -> str:
    """The W&B run id of this run, stored in ``<output_dir>/wandb_run_id``.

    A run resumed from a checkpoint keeps the id stored in the checkpoint's run folder (or,
    failing that, in the output folder). A fresh run takes the id a ``wandb agent`` chose
    (``WANDB_RUN_ID``), or a new one. The id is written on the first process only.

    Args:
        output_dir: The run folder.
        resume_from: The checkpoint the run resumes from (``<run>/checkpoints/<name>.ckpt``).
    """
    run_id = None
    if resume_from is not None:
        for folder in (Path(resume_from).parent.parent, output_dir):
            path = folder / RUN_ID_FILE
            if path.is_file():
                run_id = path.read_text().strip()
                break
    run_id = run_id or os.environ.get("WANDB_RUN_ID") or new_run_id()
    if rank_zero_only.rank == 0:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / RUN_ID_FILE).write_text(run_id + "\n")
    return run_id


def instantiate_loggers(
    group: DictConfig | None, output_dir: Path, resume_from: str | Path | None = None
) -> list[Any]:
    """Instantiate every logger of the ``logger`` group.

    A W&B logger without ``name``/``group`` is named after the run folder and, in a multirun,
    grouped by the sweep folder, so each job is its own run and a sweep's runs sit together.
    Without an ``id`` it gets the run folder's stored id (see ``wandb_run_id``), so resuming
    from a checkpoint continues the same W&B run.

    Args:
        group: The ``logger`` config group.
        output_dir: The run folder.
        resume_from: The checkpoint training resumes from, if any.

    Returns:
        The logger objects.
    """
    loggers = []
    for entry in (group or {}).values():
        if not isinstance(entry, DictConfig) or "_target_" not in entry:
            continue
        if entry._target_ in WANDB_TARGETS:
            check_wandb_login(bool(entry.get("offline")))
            entry = OmegaConf.create(OmegaConf.to_container(entry, resolve=True))
            for key, value in wandb_names(output_dir).items():
                if entry.get(key) is None:
                    entry[key] = value
            if entry.get("id") is None:
                entry["id"] = wandb_run_id(output_dir, resume_from)
        loggers.append(hydra.utils.instantiate(entry))
    return loggers
