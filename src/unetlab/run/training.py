"""A training run: fit the configured model, test the best checkpoint, summarise the run."""

from __future__ import annotations

import logging
import math
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hydra
from omegaconf import DictConfig

# The command's `--help` answers without importing torch and Lightning (seconds of
# start-up): the functions below import them, and the modules that do, when they run.
if TYPE_CHECKING:
    import lightning as L

    from unetlab.lightning_module import UNetModule

log = logging.getLogger(__name__)

# The CSV logger writes into the run folder, which already holds the config: expected.
warnings.filterwarnings("ignore", message="Experiment logs directory .* exists and is not empty")


class TrainingDiverged(FloatingPointError):
    """The training loss or the weights became NaN or infinite."""


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

    from unetlab.atomic_file import write_json_atomic
    from unetlab.config import check_config, instantiate_group, save_run_info
    from unetlab.console import one_line_per_event
    from unetlab.distributed import job_process_group, use_hydra_job_command
    from unetlab.loggers import instantiate_loggers
    from unetlab.precision import resolve_precision
    from unetlab.run.building import build_run
    from unetlab.run.resume import prepare_resume
    from unetlab.run.resumed_metrics import restore_metrics
    from unetlab.sweep import RESULT_FILE

    started = time.perf_counter()
    one_line_per_event()
    resolve_precision(cfg)
    check_config(cfg)
    prepare_resume(cfg)
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)
    output_dir = Path(cfg.paths.output_dir)
    if rank_zero_only.rank == 0:
        save_run_info(cfg, output_dir)

    datamodule, module = build_run(cfg)
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
        write_json_atomic(output_dir / RESULT_FILE, {"status": "completed", "metrics": metrics})
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
    from unetlab.run.resumed_metrics import continue_csv_logs

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
    from unetlab.cli.result import print_result

    best_key = f"{cfg.monitor.metric}_best"
    for callback in callbacks:
        final = getattr(callback, "final_path", None)
        if final is not None and Path(final).exists():
            log.info("predictions picture: %s", final)
    log.info("best checkpoint: %s", metrics["ckpt_path"] or "(none)")
    log.info("run folder: %s (%.0f s)", metrics["output_dir"], metrics["wall_time_s"])
    fields: dict[str, Any] = {best_key: metrics.get(best_key, float("nan"))}
    if "test/miou" in metrics:
        fields["test/miou"] = metrics["test/miou"]
    print_result({**fields, "ckpt": metrics["ckpt_path"], "dir": metrics["output_dir"]})
