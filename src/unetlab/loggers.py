"""Instantiating the ``logger`` group, with W&B run names, sweep groups and a login check."""

from __future__ import annotations

import netrc
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from unetlab.config import ConfigError

WANDB_TARGET = "lightning.pytorch.loggers.wandb.WandbLogger"
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


def instantiate_loggers(group: DictConfig | None, output_dir: Path) -> list[Any]:
    """Instantiate every logger of the ``logger`` group.

    A W&B logger without ``name``/``group`` is named after the run folder and, in a multirun,
    grouped by the sweep folder, so each job is its own run and a sweep's runs sit together.

    Args:
        group: The ``logger`` config group.
        output_dir: The run folder.

    Returns:
        The logger objects.
    """
    loggers = []
    for entry in (group or {}).values():
        if not isinstance(entry, DictConfig) or "_target_" not in entry:
            continue
        if entry._target_ == WANDB_TARGET:
            check_wandb_login(bool(entry.get("offline")))
            entry = OmegaConf.create(OmegaConf.to_container(entry, resolve=True))
            for key, value in wandb_names(output_dir).items():
                if entry.get(key) is None:
                    entry[key] = value
        loggers.append(hydra.utils.instantiate(entry))
    return loggers
