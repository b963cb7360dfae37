"""Lightning's W&B logger, with the best score in the run summary and the best model uploaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import wandb as lightning_wandb
from omegaconf import OmegaConf

STEP_METRIC = "trainer/global_step"


class WandbLogger(lightning_wandb.WandbLogger):
    """A ``WandbLogger`` whose run shows the best monitored value and holds the best model.

    The run summary of ``monitor`` is its best value (``define_metric`` with ``summary=mode``)
    rather than the last one, so the runs table and sweeps rank runs by their best epoch.
    With ``log_model`` the ``ModelArtifact`` callback uploads the best checkpoint at the end of
    training as the ``model`` artifact ``model-<run id>`` (aliases ``best`` and ``latest``),
    with the run's resolved config as ``config.yaml`` and in the artifact's metadata; also
    after a resume in which the score did not improve (W&B keeps one version per content).
    Lightning's own ``log_model`` would upload every checkpoint callback's files (also
    ``last.ckpt``), without the config, and only those saved by the process that ends.

    Args:
        monitor: The metric whose best value the summary shows, e.g. ``val/miou``.
        mode: ``max`` or ``min``: which value is the best.
        log_model: Upload the best checkpoint at the end of training.
        **kwargs: Further arguments of Lightning's ``WandbLogger`` (``project``, ``id``, ...).
    """

    def __init__(
        self,
        monitor: str = "val/miou",
        mode: Literal["max", "min"] = "max",
        log_model: bool = False,
        **kwargs: Any,
    ) -> None:
        if mode not in ("max", "min"):
            raise ValueError(f"logger.wandb.mode={mode!r}; expected max or min")
        super().__init__(log_model=bool(log_model), **kwargs)
        self.monitor = monitor
        self.mode = mode
        self.run_config: dict[str, Any] = {}
        self._summary_defined = False

    @property
    def experiment(self) -> Any:
        """The W&B run (created on first use, on the first process only)."""
        run = super().experiment
        if not self._summary_defined:
            run.define_metric(
                self.monitor, step_metric=STEP_METRIC, step_sync=True, summary=self.mode
            )
            self._summary_defined = True
        return run

    def log_hyperparams(self, params: dict[str, Any]) -> None:
        """Log the config, and keep it for the model artifact."""
        self.run_config = dict(params)
        super().log_hyperparams(params)

    def after_save_checkpoint(self, checkpoint_callback: ModelCheckpoint) -> None:
        """Nothing: the best model is uploaded by ``upload_best_model`` (``ModelArtifact``)."""

    def upload_best_model(self, callback: ModelCheckpoint) -> None:
        """Log ``callback``'s best checkpoint and the resolved config as a model artifact.

        Does nothing without ``log_model`` or without a best checkpoint file.
        """
        path = Path(callback.best_model_path) if callback.best_model_path else None
        if not self._log_model or path is None or not path.is_file():
            return
        import wandb

        score = callback.best_model_score
        metadata = {
            "score": None if score is None else float(score),
            "monitor": callback.monitor,
            "mode": callback.mode,
            "original_filename": path.name,
            "config": self.run_config,
        }
        name = self._checkpoint_name or f"model-{self.experiment.id}"
        artifact = wandb.Artifact(name=name, type="model", metadata=metadata)
        artifact.add_file(str(path), name="model.ckpt", policy=self.add_file_policy)
        with artifact.new_file("config.yaml") as handle:
            handle.write(OmegaConf.to_yaml(OmegaConf.create(self.run_config)))
        self.experiment.log_artifact(artifact, aliases=["best", "latest"])
