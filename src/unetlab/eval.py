"""Score a trained checkpoint: ``unetlab-eval ckpt_path=PATH [data.KEY=VALUE ...]``.

The network and the data module are rebuilt from the resolved config that training stored in
the checkpoint, so a model trained with any experiment overlay is evaluated as it was trained
(same network, split, normalisation and class names). ``data.*`` overrides change the data on
top of that config; the other keys (``split``, ``output_dir``, ``trainer.*``) are those of
``conf/eval.yaml``. The scores are printed as a table and written to ``metrics.json``.
"""

from __future__ import annotations

import logging
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.table import Table

from unetlab.atomic_file import write_json_atomic
from unetlab.checkpoint import load_trained_model
from unetlab.cli.result import print_result
from unetlab.cli.runner import (
    EXIT_OK,
    EXIT_USAGE,
    check_required,
    command_args,
    compose_config,
    run_command,
)
from unetlab.config import ConfigError
from unetlab.run.building import build_run

PROG = "unetlab-eval"
SPLITS = ("test", "val")
RUN_PREFIX = "data."
USAGE = (
    "usage: unetlab-eval ckpt_path=PATH [data.KEY=VALUE ...] [split=test|val] "
    "[output_dir=DIR] [trainer.KEY=VALUE ...]"
)


def split_overrides(args: Sequence[str]) -> tuple[list[str], list[str]]:
    """Separate overrides of the run's data config (``data.*``) from those of ``eval.yaml``."""
    run, own = [], []
    for arg in args:
        (run if arg.lstrip("+~").startswith(RUN_PREFIX) else own).append(arg)
    return own, run


def apply_overrides(cfg: DictConfig, overrides: Sequence[str]) -> None:
    """Apply Hydra-style overrides (``key=value``, ``+key=value``, ``~key``) to a config.

    Raises:
        ConfigError: For a key the config does not have (without ``+``).
    """
    for override in OverridesParser.create().parse_overrides(list(overrides)):
        key = override.key_or_group
        parent_key, _, name = key.rpartition(".")
        parent = OmegaConf.select(cfg, parent_key) if parent_key else cfg
        present = isinstance(parent, DictConfig) and name in parent
        if override.is_delete():
            if present:
                del parent[name]
            continue
        if not present and not override.is_add():
            keys = ", ".join(str(k) for k in parent) if isinstance(parent, DictConfig) else ""
            raise ConfigError(
                f"{key} is not in the run's config (its keys: {keys}); add it with +{key}=..."
            )
        OmegaConf.update(cfg, key, override.value(), merge=False, force_add=True)


def run_config(trained_config: dict[str, Any], data_overrides: Sequence[str]) -> DictConfig:
    """The training run's config with the data overrides applied.

    The data module writes no split file during evaluation.
    """
    cfg = OmegaConf.create(trained_config)
    apply_overrides(cfg, data_overrides)
    if "split_file" in cfg.data:
        cfg.data.split_file = None
    return cfg


def evaluate(
    ckpt_path: str | Path,
    split: str = "test",
    data_overrides: Sequence[str] = (),
    trainer_cfg: DictConfig | None = None,
) -> dict[str, float]:
    """Score a checkpoint on a split of the data it was trained with.

    Args:
        ckpt_path: A training checkpoint (``.ckpt``).
        split: ``test`` or ``val``.
        data_overrides: Overrides of the run's data config, e.g. ``["data.root=/data"]``.
        trainer_cfg: The Lightning Trainer config (``trainer`` of ``eval.yaml``).

    Returns:
        The metrics as logged (``test/miou``, ``test/iou/<class>``, ``test/dice/<class>``,
        ``test/pixel_accuracy``, ``test/loss`` and, on EM data, ``test/pixel_error``,
        ``test/v_rand``, ``test/v_info`` and ``test/v_rand_unthinned``).
    """
    if split not in SPLITS:
        raise ConfigError(f"split={split!r} is not valid; choose one of {', '.join(SPLITS)}")
    trained = load_trained_model(ckpt_path)
    cfg = run_config(trained.config, data_overrides)
    if trained.mean and trained.std and "mean" in cfg.data and "std" in cfg.data:
        cfg.data.mean, cfg.data.std = trained.mean, trained.std
    datamodule, module = build_run(cfg, trained.class_names or None, net=trained.net)
    trainer_cfg = trainer_cfg if trainer_cfg is not None else compose_config("eval", []).trainer
    trainer = hydra.utils.instantiate(trainer_cfg)
    run = trainer.test if split == "test" else trainer.validate
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        run(module, datamodule=datamodule, verbose=False)
    scores = {
        name: float(value)
        for name, value in trainer.callback_metrics.items()
        if name.startswith(f"{split}/") and not name.endswith("_best") and value.numel() == 1
    }
    return dict(sorted(scores.items(), key=lambda item: _metric_order(item[0])))


def _metric_order(name: str) -> tuple[int, str]:
    """mIoU and pixel accuracy first, then per-class IoU and Dice, the EM scores, the loss."""
    kind = name.split("/", 1)[1]
    for rank, prefix in enumerate(
        ("miou", "pixel_accuracy", "iou/", "dice/", ("pixel_error", "v_"))
    ):
        if kind.startswith(prefix):
            return rank, name
    return (5, name) if kind != "loss" else (6, name)


def metrics_table(metrics: dict[str, float], title: str) -> Table:
    """The metrics as a rich table, one row per metric."""
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in metrics.items():
        table.add_row(name, f"{value:.4f}")
    return table


def run_eval(args: Sequence[str]) -> Path:
    """Score the checkpoint the arguments name, print the table and write ``metrics.json``.

    Returns:
        The path of ``metrics.json``.
    """
    own, data_overrides = split_overrides(args)
    cfg = compose_config("eval", own)
    check_required(cfg, USAGE.removeprefix("usage: "))
    metrics = evaluate(cfg.ckpt_path, cfg.split, data_overrides, cfg.trainer)
    out_dir = Path(cfg.output_dir) if cfg.output_dir else Path(cfg.ckpt_path).parent
    path = out_dir / "metrics.json"
    write_json_atomic(
        path, {"ckpt_path": str(cfg.ckpt_path), "split": cfg.split, "metrics": metrics}
    )
    print(f"checkpoint: {cfg.ckpt_path}")
    Console().print(metrics_table(metrics, f"{cfg.split} metrics"))
    summary = {key: value for key, value in metrics.items() if key == f"{cfg.split}/miou"}
    print_result({**summary, "metrics": str(path)})
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point; returns the exit code (see :mod:`unetlab.cli.runner`)."""
    args = command_args(argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return EXIT_OK if args else EXIT_USAGE
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    run_command(PROG, lambda: run_eval(args))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
