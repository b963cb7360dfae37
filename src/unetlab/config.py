"""Helpers around the Hydra config: instantiating groups, resolving, recording the run."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

RECORDED_PACKAGES = (
    "unetlab",
    "torch",
    "torchvision",
    "lightning",
    "torchmetrics",
    "hydra-core",
    "albumentations",
    "numpy",
    "wandb",
)


def instantiate_group(group: DictConfig | None) -> list[Any]:
    """Instantiate every entry with a ``_target_`` of a group such as ``callbacks``/``logger``."""
    if not group:
        return []
    return [
        hydra.utils.instantiate(entry)
        for entry in group.values()
        if isinstance(entry, DictConfig) and "_target_" in entry
    ]


def resolved_container(cfg: DictConfig) -> dict:
    """The config as a plain, fully resolved dict (no ``${...}`` left), Hydra's node removed."""
    without_hydra = OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"])
    return OmegaConf.to_container(without_hydra, resolve=True)


def git_commit() -> str | None:
    """The checkout's commit (with ``-dirty`` when it has changes), or ``None``."""
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "describe", "--always", "--dirty", "--abbrev=40"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit or None


def package_versions() -> dict[str, str]:
    """Installed versions of the packages a run's result depends on."""
    versions = {"python": platform.python_version()}
    for name in RECORDED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def save_run_info(cfg: DictConfig, output_dir: Path) -> None:
    """Write the resolved config and ``run_info.json`` (seed, commit, versions, command)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(OmegaConf.create(resolved_container(cfg)), output_dir / "config.yaml")
    info = {
        "seed": cfg.get("seed"),
        "git_commit": git_commit(),
        "versions": package_versions(),
        "command": sys.argv,
    }
    (output_dir / "run_info.json").write_text(json.dumps(info, indent=2))
