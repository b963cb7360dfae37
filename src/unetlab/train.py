"""Training entry point: ``python train.py [hydra overrides]`` (also ``unetlab-train``)."""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from omegaconf import DictConfig

from unetlab.config import instantiate_group, resolved_container, save_run_info
from unetlab.lightning_module import UNetModule
from unetlab.losses import DeepSupervisionLoss

log = logging.getLogger(__name__)

CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "conf")

# The CSV logger writes into the run folder, which already holds the config: expected.
warnings.filterwarnings("ignore", message="Experiment logs directory .* exists and is not empty")


def build_module(
    cfg: DictConfig, class_names: list[str], em_membrane_class: int | None = None
) -> UNetModule:
    """Instantiate network, loss, optimizer and schedule into a ``UNetModule``."""
    net = hydra.utils.instantiate(cfg.model)
    loss = hydra.utils.instantiate(cfg.loss)
    if cfg.model.get("deep_supervision"):
        loss = DeepSupervisionLoss(loss)
    scheduler = hydra.utils.instantiate(cfg.scheduler) if cfg.get("scheduler") else None
    return UNetModule(
        net=net,
        loss=loss,
        optimizer=hydra.utils.instantiate(cfg.optimizer),
        scheduler=scheduler,
        num_classes=cfg.model.num_classes,
        class_names=class_names,
        monitor=cfg.monitor.metric,
        ignore_index=cfg.data.get("ignore_index"),
        run_config=resolved_container(cfg),
        em_membrane_class=em_membrane_class,
    )


def train(cfg: DictConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fit the configured model, test the best checkpoint and summarise the run.

    Args:
        cfg: The composed training config.

    Returns:
        ``(metrics, objects)``: final metrics as floats (including ``val/miou_best``,
        ``test/miou``, ``ckpt_path``, ``output_dir``) and the instantiated objects.
    """
    started = time.perf_counter()
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)
    output_dir = Path(cfg.paths.output_dir)
    save_run_info(cfg, output_dir)

    datamodule = hydra.utils.instantiate(cfg.data)
    module = build_module(
        cfg, datamodule.class_names, getattr(datamodule, "em_membrane_class", None)
    )
    if getattr(module.loss, "requires_weight_map", False):
        datamodule.weight_map_fn = module.loss.make_weight_map
    callbacks = instantiate_group(cfg.get("callbacks"))
    loggers = instantiate_group(cfg.get("logger"))
    for logger in loggers:
        logger.log_hyperparams(module.run_config)
    trainer: L.Trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers)

    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    checkpoint = trainer.checkpoint_callback
    best_path = checkpoint.best_model_path if checkpoint else ""
    if checkpoint is not None and checkpoint.best_model_score is not None:
        metrics[f"{cfg.monitor.metric}_best"] = float(checkpoint.best_model_score)

    if cfg.get("test"):
        trainer.test(module, datamodule=datamodule, ckpt_path=best_path or None, weights_only=True)
        metrics.update(
            {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")}
        )
    metrics["ckpt_path"] = best_path
    metrics["output_dir"] = str(output_dir)
    metrics["wall_time_s"] = time.perf_counter() - started
    objects = {"datamodule": datamodule, "module": module, "trainer": trainer}
    if trainer.is_global_zero:
        _print_summary(cfg, metrics, callbacks)
    return metrics, objects


def _print_summary(cfg: DictConfig, metrics: dict[str, Any], callbacks: list) -> None:
    """The run's closing lines; the last one is the machine-readable ``RESULT`` line."""
    best_key = f"{cfg.monitor.metric}_best"
    for callback in callbacks:
        final = getattr(callback, "final_path", None)
        if final is not None and Path(final).exists():
            log.info("predictions picture: %s", final)
    log.info("best checkpoint: %s", metrics["ckpt_path"] or "(none)")
    log.info("run folder: %s (%.0f s)", metrics["output_dir"], metrics["wall_time_s"])
    parts = [f"{best_key}={metrics.get(best_key, float('nan')):.4f}"]
    if "test/miou" in metrics:
        parts.append(f"test/miou={metrics['test/miou']:.4f}")
    parts += [f"ckpt={metrics['ckpt_path']}", f"dir={metrics['output_dir']}"]
    print("RESULT " + " ".join(parts), flush=True)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point; returns the best monitored value so sweeps can optimise it."""
    metrics, _ = train(cfg)
    return metrics.get(f"{cfg.monitor.metric}_best")


if __name__ == "__main__":
    main()
