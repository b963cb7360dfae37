"""Score a trained checkpoint: ``unetlab-eval ckpt_path=PATH [data.KEY=VALUE ...]``.

The network and the data module are rebuilt from the resolved config that training stored in
the checkpoint, so a model trained with any experiment overlay is evaluated as it was trained
(same network, split, normalisation and class names). ``data.*`` overrides change the data on
top of that config; the other keys (``split``, ``output_dir``, ``trainer.*``) are those of
``conf/eval.yaml``. The scores are printed as a table and written to ``metrics.json``.
"""

from __future__ import annotations

import json
import logging
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from rich.console import Console
from rich.table import Table

from unetlab.checkpoint import load_trained_model
from unetlab.config import ConfigError
from unetlab.reliability import report_error
from unetlab.train import CONFIG_DIR, build_module

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
    datamodule = hydra.utils.instantiate(cfg.data)
    module = build_module(
        cfg,
        trained.class_names or datamodule.class_names,
        getattr(datamodule, "em_membrane_class", None),
        net=trained.net,
    )
    if hasattr(datamodule, "configure_for_model"):
        datamodule.configure_for_model(module.net)
    if getattr(module.loss, "requires_weight_map", False):
        datamodule.weight_map_fn = module.loss.make_weight_map
    trainer_cfg = trainer_cfg if trainer_cfg is not None else _eval_config([]).trainer
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


def _eval_config(overrides: Sequence[str]) -> DictConfig:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose("eval", overrides=list(overrides))


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point; returns the exit code (1 with a one-line message on a mistake)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if args else 1
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    own, data_overrides = split_overrides(args)
    try:
        cfg = _eval_config(own)
        if OmegaConf.is_missing(cfg, "ckpt_path"):
            raise ConfigError("ckpt_path is missing: pass ckpt_path=PATH of a training checkpoint")
        metrics = evaluate(cfg.ckpt_path, cfg.split, data_overrides, cfg.trainer)
    except (
        ConfigError,
        FileNotFoundError,
        ValueError,
        HydraException,
        OmegaConfBaseException,
    ) as error:
        report_error(error)
        return 1
    out_dir = Path(cfg.output_dir) if cfg.output_dir else Path(cfg.ckpt_path).parent
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "metrics.json"
    result = {"ckpt_path": str(cfg.ckpt_path), "split": cfg.split, "metrics": metrics}
    path.write_text(json.dumps(result, indent=2))
    print(f"checkpoint: {cfg.ckpt_path}")
    Console().print(metrics_table(metrics, f"{cfg.split} metrics"))
    print(f"metrics: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
