"""Helpers around the Hydra config: instantiating groups, resolving, recording the run."""

from __future__ import annotations

import collections.abc
import inspect
import platform
import subprocess
import sys
import types
import typing
from importlib import metadata
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from unetlab.atomic_file import write_json_atomic

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
    write_json_atomic(output_dir / "run_info.json", info)


class ConfigError(ValueError):
    """A mistake in the composed config, reported as one line that names the key."""


def check_config(cfg: DictConfig) -> None:
    """Find missing values, unknown arguments and wrongly typed arguments before running.

    Every node with a ``_target_`` is compared with the signature of what it instantiates:
    its keys must be arguments of the target, and values must match the annotated types
    (``int``, ``float``, ``bool``, ``str``, ``None``, ``Literal`` choices, lists and mappings;
    other annotations are accepted as they are).

    Args:
        cfg: The composed config (the ``hydra`` node is skipped).

    Raises:
        ConfigError: For the first mistake found.
    """
    from unetlab.precision import resolve_precision

    job = OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"])
    resolve_precision(job)  # `fastest` is ours, not Lightning's: check what it stands for
    missing = sorted(OmegaConf.missing_keys(job))
    if missing:
        key = missing[0]
        raise ConfigError(f"{key} is missing: set it on the command line, e.g. {key}=...")
    _check_node(
        OmegaConf.to_container(job, resolve=True), OmegaConf.to_container(job, resolve=False), ""
    )


def _check_node(node: Any, raw: Any, path: str) -> None:
    """Walk the resolved config; ``raw`` is the same part before interpolation."""
    if isinstance(node, dict):
        if "_target_" in node:
            _check_call(node, raw, path)
        for key, value in node.items():
            _check_node(value, raw.get(key), f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            _check_node(value, raw[index], f"{path}[{index}]")


def _setting(key: str, value: Any, raw: Any) -> str:
    """``key=value``, naming the key a ``${...}`` value comes from: that is the one to fix."""
    if isinstance(raw, str) and raw.startswith("${") and raw.endswith("}") and ":" not in raw:
        return f"{raw[2:-1]}={value!r} (used as {key})"
    return f"{key}={value!r}"


def _check_call(node: dict, raw: dict, path: str) -> None:
    """Compare one ``_target_`` node with its target's signature."""
    where = f"{path}." if path else ""
    target = node["_target_"]
    try:
        obj = hydra.utils.get_object(target)
    except Exception as error:
        raise ConfigError(f"{where}_target_={target!r} cannot be imported: {error}") from None
    try:
        parameters = inspect.signature(obj).parameters
    except (TypeError, ValueError):
        return
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    named = {
        name: p
        for name, p in parameters.items()
        if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    }
    hints = _type_hints(obj)
    for key, value in node.items():
        if key.startswith("_") and key.endswith("_"):
            continue
        if key not in named:
            if takes_any:
                continue
            raise ConfigError(
                f"{where}{key}: {target} takes no argument {key!r}; "
                f"its arguments are {', '.join(named)}"
            )
        hint = hints.get(key)
        if hint is not None and not _conforms(value, hint):
            setting = _setting(f"{where}{key}", value, raw.get(key))
            choices = _literal_choices(hint)
            if choices:
                raise ConfigError(f"{setting} is not valid; choose one of {', '.join(choices)}")
            raise ConfigError(
                f"{setting} has the wrong type ({type(value).__name__}); expected {_describe(hint)}"
            )


def _type_hints(obj: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(obj.__init__ if isinstance(obj, type) else obj)
    except Exception:
        return {}


def _union_args(hint: Any) -> tuple[Any, ...] | None:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return typing.get_args(hint)
    return None


def _conforms(value: Any, hint: Any) -> bool:
    """Whether a plain config value can be passed where ``hint`` is annotated (lenient)."""
    union = _union_args(hint)
    if union is not None:
        return any(_conforms(value, arm) for arm in union)
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        return any(value == choice and type(value) is type(choice) for choice in hint.__args__)
    if hint is type(None):
        return value is None
    if isinstance(value, dict) and "_target_" in value:
        return True
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if hint is torch.Tensor:
        return isinstance(value, (int, float, list)) and not isinstance(value, bool)
    container = origin or hint
    if container in (list, tuple, collections.abc.Sequence):
        return isinstance(value, list)
    if container in (dict, collections.abc.Mapping):
        return isinstance(value, dict)
    return True


def _literal_choices(hint: Any) -> list[str]:
    arms = _union_args(hint) or (hint,)
    choices = []
    for arm in arms:
        if typing.get_origin(arm) is typing.Literal:
            choices += [str(choice) for choice in arm.__args__]
        elif arm is type(None):
            choices.append("null")
    if not any(typing.get_origin(arm) is typing.Literal for arm in arms):
        return []
    return list(dict.fromkeys(choices))


def _describe(hint: Any) -> str:
    union = _union_args(hint)
    if union is not None:
        return " or ".join(dict.fromkeys(_describe(arm) for arm in union))
    if hint is type(None):
        return "null"
    origin = typing.get_origin(hint)
    if origin is not None:
        return getattr(origin, "__name__", str(origin))
    return getattr(hint, "__name__", str(hint))
