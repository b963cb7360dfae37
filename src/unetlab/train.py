"""Training entry point: ``python train.py [hydra overrides]`` (also ``unetlab-train``)."""

from __future__ import annotations

import json
import logging
import math
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from omegaconf import DictConfig

# `python train.py --help` answers without importing torch and Lightning (seconds of
# start-up): the functions below import them, and the modules that do, when they run.
if TYPE_CHECKING:
    import lightning as L
    from torch import nn

    from unetlab.lightning_module import UNetModule

log = logging.getLogger(__name__)

CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "conf")

# The CSV logger writes into the run folder, which already holds the config: expected.
warnings.filterwarnings("ignore", message="Experiment logs directory .* exists and is not empty")


class TrainingDiverged(FloatingPointError):
    """The training loss or the weights became NaN or infinite."""


def build_module(
    cfg: DictConfig,
    class_names: list[str],
    em_membrane_class: int | None = None,
    net: nn.Module | None = None,
) -> UNetModule:
    """Instantiate network, loss, optimizer and schedule into a ``UNetModule``.

    Args:
        cfg: The training config.
        class_names: One name per class.
        em_membrane_class: The membrane class of EM data (adds the ISBI test metrics).
        net: An already built network (e.g. from a checkpoint) instead of ``cfg.model``.
    """
    from unetlab.config import resolved_container
    from unetlab.lightning_module import UNetModule
    from unetlab.losses import DeepSupervisionLoss
    from unetlab.models import SegmentationNet

    if net is None:
        net = hydra.utils.instantiate(cfg.model)
        if isinstance(net, SegmentationNet):  # model.channels_last, model.compile
            net.apply_run_options()
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
    import lightning as L
    from lightning.pytorch.utilities.rank_zero import rank_zero_only

    from unetlab.config import check_config, instantiate_group, save_run_info
    from unetlab.console import one_line_per_event
    from unetlab.distributed import job_process_group, use_hydra_job_command
    from unetlab.loggers import instantiate_loggers
    from unetlab.reliability import prepare_resume, restore_metrics
    from unetlab.sweep import RESULT_FILE

    started = time.perf_counter()
    one_line_per_event()
    check_config(cfg)
    prepare_resume(cfg)
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)
    output_dir = Path(cfg.paths.output_dir)
    if rank_zero_only.rank == 0:
        save_run_info(cfg, output_dir)

    datamodule = hydra.utils.instantiate(cfg.data)
    module = build_module(
        cfg, datamodule.class_names, getattr(datamodule, "em_membrane_class", None)
    )
    datamodule.configure_for_model(module.net)
    if getattr(module.loss, "requires_weight_map", False):
        datamodule.weight_map_fn = module.loss.make_weight_map
    callbacks = instantiate_group(cfg.get("callbacks"))
    loggers = instantiate_loggers(cfg.get("logger"), output_dir, cfg.get("ckpt_path"))
    for logger in loggers:
        logger.log_hyperparams(module.run_config)
    if rank_zero_only.rank == 0:
        restore_metrics(output_dir, loggers)
    use_hydra_job_command()
    trainer: L.Trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers)
    with job_process_group():
        metrics, best_path = _fit_and_test(cfg, trainer, module, datamodule, callbacks, loggers)
    metrics["ckpt_path"] = best_path
    metrics["output_dir"] = str(output_dir)
    metrics["wall_time_s"] = time.perf_counter() - started
    objects = {"datamodule": datamodule, "module": module, "trainer": trainer}
    if trainer.is_global_zero:
        result = {"status": "completed", "metrics": metrics}
        (output_dir / RESULT_FILE).write_text(json.dumps(result, indent=2))
        _print_summary(cfg, metrics, callbacks)
    return metrics, objects


def _fit_and_test(
    cfg: DictConfig,
    trainer: L.Trainer,
    module: UNetModule,
    datamodule: L.LightningDataModule,
    callbacks: list,
    loggers: list,
) -> tuple[dict[str, Any], str]:
    """Fit, check that training did not diverge, test the best checkpoint.

    After multi-process training the test runs once, in one process on one device: a
    distributed sampler would pad the test set with repeated images and bias the scores.

    Returns:
        The metrics and the best checkpoint's path ("" without checkpointing).
    """
    from unetlab.distributed import best_score_in_checkpoint, leave_process_group
    from unetlab.reliability import continue_csv_logs

    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"), weights_only=True)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    _check_finite(module, metrics)
    checkpoint = trainer.checkpoint_callback
    best_path = checkpoint.best_model_path if checkpoint else ""
    if checkpoint is not None and checkpoint.best_model_score is not None:
        metrics[f"{cfg.monitor.metric}_best"] = float(checkpoint.best_model_score)
    elif best_path:
        # After ddp_fork / ddp_spawn the score stayed in the worker; the file has it.
        score = best_score_in_checkpoint(best_path, cfg.monitor.metric)
        if score is not None:
            metrics[f"{cfg.monitor.metric}_best"] = score

    if not cfg.get("test"):
        return metrics, best_path
    tester = trainer
    if trainer.world_size > 1:
        leave_process_group()
        if not trainer.is_global_zero:
            return metrics, best_path
        continue_csv_logs(loggers)
        tester = hydra.utils.instantiate(
            cfg.trainer,
            devices=1,
            num_nodes=1,
            strategy="auto",
            sync_batchnorm=False,
            callbacks=callbacks,
            logger=loggers,
        )
    tester.test(module, datamodule=datamodule, ckpt_path=best_path or None, weights_only=True)
    metrics.update(
        {k: float(v) for k, v in tester.callback_metrics.items() if k.startswith("test/")}
    )
    return metrics, best_path


def _check_finite(module: UNetModule, metrics: dict[str, float]) -> None:
    """Raise ``TrainingDiverged`` if a logged loss or any weight is NaN or infinite."""
    import torch

    bad = [
        f"{name}={value}"
        for name, value in metrics.items()
        if "loss" in name.rsplit("/", 1)[-1] and not math.isfinite(value)
    ]
    if not all(torch.isfinite(p).all() for p in module.parameters()):
        bad.append("non-finite weights")
    if bad:
        raise TrainingDiverged(
            f"training diverged ({', '.join(bad)}); lower optimizer.lr or set "
            "trainer.gradient_clip_val"
        )


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


def _run_sweep_job(cfg: DictConfig) -> float | None:
    """One job of a multirun: a failure is logged and recorded, and the sweep goes on.

    Returns:
        The best monitored value, or ``None`` for a failed or diverged job (Optuna records
        the trial as failed).
    """
    from unetlab.reliability import one_line
    from unetlab.sweep import RESULT_FILE

    try:
        metrics, _ = train(cfg)
    except Exception as error:
        log.error("job failed: %s", one_line(error), exc_info=True)
        output_dir = Path(cfg.paths.output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        result = {"status": "failed", "error": one_line(error)}
        (output_dir / RESULT_FILE).write_text(json.dumps(result, indent=2))
        return None
    value = metrics.get(f"{cfg.monitor.metric}_best")
    return value if value is not None and math.isfinite(value) else None


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Hydra entry point; returns the best monitored value so sweeps can optimise it.

    Config and data mistakes, NaN losses and failed DDP processes end the run with one line
    on stderr and exit code 1 (the full traceback with ``HYDRA_FULL_ERROR=1``). In a multirun
    a failed job does not stop the others.
    """
    from lightning.pytorch.utilities.rank_zero import rank_zero_only

    from unetlab.config import ConfigError
    from unetlab.reliability import REPORTED_ERRORS, exit_with_error

    if HydraConfig.get().mode == RunMode.MULTIRUN:
        return _run_sweep_job(cfg)
    try:
        metrics, _ = train(cfg)
    except FloatingPointError as error:  # TrainingDiverged, NonFiniteLossError
        if rank_zero_only.rank != 0:
            # Every rank sees the divergence; rank 0 reports it, the others end quietly.
            return None
        exit_with_error(error)
    except (ConfigError, InstantiationException, *REPORTED_ERRORS) as error:
        exit_with_error(error)
    return metrics.get(f"{cfg.monitor.metric}_best")


if __name__ == "__main__":
    main()
