"""Config mistakes end in one short line that names the key and, where it can, the choices."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf

from tests.conftest import run_train
from unetlab.config import ConfigError, check_config


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["optimizer.lr=fast"],
            "optimizer.lr='fast' has the wrong type (str); expected float or Tensor",
        ),
        (
            ["data.batch_size=2.5"],
            "data.batch_size=2.5 has the wrong type (float); expected int",
        ),
        (
            ["trainer.max_epochs=abc"],
            "trainer.max_epochs='abc' (used as scheduler.T_max) has the wrong type (str); "
            "expected int",
        ),
        (
            ["scheduler=plateau", "monitor.mode=maxx"],
            "monitor.mode='maxx' (used as scheduler.mode) is not valid; choose one of min, max",
        ),
        (["data=folder"], "data.root is missing: set it on the command line, e.g. data.root=..."),
        (
            ["model=resnet_unet", "+model.base_channels=8"],
            "model.base_channels: unetlab.models.ResNetUNet takes no argument 'base_channels'; "
            "its arguments are in_channels, num_classes, encoder,",
        ),
    ],
)
def test_check_config_names_the_key(make_config, overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        check_config(make_config(overrides, tiny=False))
    assert str(error.value).startswith(message)


def test_literal_choices_are_listed(make_config) -> None:
    with pytest.raises(ConfigError, match=r"trainer\.precision='banana' is not valid; choose one"):
        check_config(make_config(["trainer.precision=banana"], tiny=False))


def target_nodes(node: Any, keys: tuple = ()) -> Iterator[tuple[tuple, str]]:
    """Keys and printed path of every node with a ``_target_``, as the checker names them."""
    if isinstance(node, dict):
        if "_target_" in node:
            path = "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in keys)
            yield keys, path.lstrip(".")
        for key, value in node.items():
            yield from target_nodes(value, (*keys, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from target_nodes(value, (*keys, index))


def test_default_config_passes_and_every_object_in_it_is_checked(make_config) -> None:
    cfg = make_config(tiny=False)
    check_config(cfg)
    job = OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"])
    nodes = list(target_nodes(OmegaConf.to_container(job)))
    top_level = {path.split(".")[0] for _, path in nodes}
    assert {"model", "data", "loss", "optimizer", "scheduler", "trainer", "callbacks"} <= top_level
    # A broken target anywhere in the default config is found and named.
    for keys, path in nodes:
        broken = copy.deepcopy(job)
        node = broken
        for key in keys:
            node = node[key]
        node["_target_"] = "unetlab.no_such_module.Thing"
        with pytest.raises(ConfigError) as error:
            check_config(broken)
        assert str(error.value).startswith(
            f"{path}._target_='unetlab.no_such_module.Thing' cannot be imported"
        ), path


def test_wrong_type_on_the_command_line_is_one_line(tmp_path: Path) -> None:
    result = run_train(["trainer.max_epochs=abc"], tmp_path, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "unetlab-train: error: trainer.max_epochs='abc' (used as scheduler.T_max) has the wrong type (str); "
        "expected int"
    )
    assert "Traceback" not in result.stderr


def test_unknown_option_lists_the_debug_modes(tmp_path: Path) -> None:
    result = run_train(["debug=nope"], tmp_path, timeout=120)
    assert result.returncode == 2
    for mode in ("fdr", "overfit", "limit", "profiler"):
        assert mode in result.stderr
    assert len(result.stderr.strip().splitlines()) < 20
