"""W&B sweeps in ``sweeps/``: every command line ``wandb agent`` builds is accepted by train.py."""

from __future__ import annotations

import functools
import itertools
import math
from pathlib import Path
from typing import Any

import hydra
import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf
from wandb.sdk.launch.sweeps.utils import create_sweep_command_args

from tests.conftest import ROOT
from unetlab.config import check_config
from unetlab.config_location import CONFIG_DIR

SWEEPS = sorted((ROOT / "sweeps").glob("*.yaml"))


def candidate_values(spec: dict[str, Any]) -> list[Any]:
    """The values a parameter can take: its list, its one value, or its range's ends."""
    if "values" in spec:
        return list(spec["values"])
    if "value" in spec:
        return [spec["value"]]
    return [spec["min"], spec["max"]]


def agent_command(sweep: dict[str, Any], assignment: dict[str, Any]) -> list[str]:
    """The command line ``wandb agent`` runs for one assignment (as in ``wandb_agent.py``).

    ``${env}`` and ``${interpreter}`` are left out; the arguments come from W&B's own
    ``create_sweep_command_args``.
    """
    macros = create_sweep_command_args({"args": {k: {"value": v} for k, v in assignment.items()}})
    macros["program"] = [sweep["program"]]
    command = []
    for chunk in sweep["command"]:
        if chunk in ("${env}", "${interpreter}"):
            continue
        if chunk.startswith("${") and chunk.endswith("}"):
            command += macros[chunk[2:-1]]
        else:
            command.append(chunk)
    return command


def assignments(sweep: dict[str, Any]) -> list[dict[str, Any]]:
    """Grid: every combination. Random and Bayes: each candidate value of each parameter once,
    the others at their first candidate."""
    params = {name: candidate_values(spec) for name, spec in sweep["parameters"].items()}
    if sweep["method"] == "grid":
        return [
            dict(zip(params, combo, strict=True)) for combo in itertools.product(*params.values())
        ]
    first = {name: values[0] for name, values in params.items()}
    return [{**first, name: value} for name, values in params.items() for value in values]


def target_of(group: str, option: str) -> str:
    """The ``_target_`` written in ``conf/<group>/<option>.yaml``."""
    return yaml.safe_load((ROOT / "conf" / group / f"{option}.yaml").read_text())["_target_"]


@functools.lru_cache
def build_network(model: str, encoder: str | None) -> str:
    """Instantiate the network of one model (and resnet_unet encoder), once per pair."""
    overrides = [f"model={model}"] + ([f"model.encoder={encoder}"] if encoder else [])
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    return type(hydra.utils.instantiate(cfg.model)).__name__


def test_sweep_folder_has_grid_random_and_bayes_examples() -> None:
    methods = {yaml.safe_load(path.read_text())["method"] for path in SWEEPS}
    assert methods == {"grid", "random", "bayes"}


def grid_size(sweep: dict[str, Any]) -> int:
    """The number of runs of a grid sweep: the product of its parameters' value counts."""
    return math.prod(len(candidate_values(spec)) for spec in sweep["parameters"].values())


@pytest.mark.parametrize("path", SWEEPS, ids=lambda path: path.stem)
def test_every_agent_command_is_accepted_by_train_py(path: Path, tmp_path: Path) -> None:
    sweep = yaml.safe_load(path.read_text())
    assert sweep["metric"] == {"name": "val/miou_best", "goal": "maximize"}
    assert (ROOT / sweep["program"]).is_file()
    assert "${args_no_hyphens}" in sweep["command"]
    assert {"model", "optimizer.lr"} <= set(sweep["parameters"])
    runs = assignments(sweep)
    if sweep["method"] == "grid":
        assert len(runs) == grid_size(sweep)
    composed = []
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        for assignment in runs:
            command = agent_command(sweep, assignment)
            assert command[0] == "train.py"
            paths = [f"paths.root_dir={tmp_path}", f"hydra.run.dir={tmp_path}/run"]
            cfg = compose("train", overrides=[*command[1:], *paths], return_hydra_config=True)
            HydraConfig.instance().set_config(cfg)
            check_config(cfg)
            assert cfg.logger.wandb.project == "unetlab"
            assert cfg.optimizer.lr == pytest.approx(float(assignment["optimizer.lr"]))
            if "loss" in assignment:
                assert cfg.loss._target_ == target_of("loss", assignment["loss"])
            assert cfg.model._target_ == target_of("model", assignment["model"])
            if "model.encoder" in assignment:
                assert cfg.model.encoder == assignment["model.encoder"]
            composed.append(OmegaConf.to_yaml({k: cfg[k] for k in ("model", "loss", "optimizer")}))
    if sweep["method"] == "grid":  # no trial repeats another (as unet per encoder did)
        assert len(set(composed)) == len(runs)
    for model, encoder in {(run["model"], run.get("model.encoder")) for run in runs}:
        assert build_network(model, encoder) == target_of("model", model).rsplit(".", 1)[-1]


def test_agent_command_is_plain_hydra_overrides() -> None:
    sweep = {
        "program": "train.py",
        "command": ["${env}", "${interpreter}", "${program}", "logger=wandb", "${args_no_hyphens}"],
    }
    command = agent_command(
        sweep, {"model": "resnet_unet", "model.encoder": "resnet18", "optimizer.lr": 0.0003}
    )
    assert command == [
        "train.py",
        "logger=wandb",
        "model=resnet_unet",
        "model.encoder=resnet18",
        "optimizer.lr=0.0003",
    ]
