"""Experiment, debug, trainer and search overlays compose into valid, runnable configs."""

from __future__ import annotations

import csv
from pathlib import Path

import hydra
import pytest

from tests.conftest import TINY_OVERRIDES
from unetlab.config import check_config
from unetlab.config_location import CONFIG_DIR
from unetlab.train import train

EXPERIMENTS = sorted(p.stem for p in Path(CONFIG_DIR, "experiment").glob("*.yaml"))


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_composes_and_checks(make_config, experiment: str) -> None:
    cfg = make_config([f"experiment={experiment}", "data.root=/data/somewhere"], tiny=False)
    check_config(cfg)
    assert cfg.monitor.metric == "val/miou"


def test_unet_paper_recipe(make_config) -> None:
    cfg = make_config(["experiment=isbi2012_unet_paper", "data.root=/data/isbi"], tiny=False)
    assert cfg.model._target_ == "unetlab.models.UNet"
    assert (cfg.model.padding, cfg.model.base_channels, cfg.model.norm) == ("valid", 64, "none")
    assert cfg.optimizer._target_ == "torch.optim.SGD" and cfg.optimizer.momentum == 0.99
    assert cfg.data.batch_size == 1
    assert cfg.loss._target_ == "unetlab.losses.WeightedCrossEntropyLoss"
    augmentations = [t._target_ for t in cfg.data.train_augmentation.transforms]
    assert "unetlab.data.transforms.ElasticDeformation" in augmentations
    net = hydra.utils.instantiate(cfg.model)
    assert net.output_shape((572, 572)) == (cfg.data.patch_size, cfg.data.patch_size)
    assert sum(p.numel() for p in net.parameters()) == 31_030_658


def test_resnet34_recipe(make_config) -> None:
    cfg = make_config(["experiment=isbi2012_resnet34", "data.root=/data/isbi"], tiny=False)
    assert cfg.model._target_ == "unetlab.models.ResNetUNet"
    assert cfg.model.encoder == "resnet34" and cfg.model.encoder_weights == "imagenet"


@pytest.mark.parametrize("model", ["unet", "resnet_unet", "attention_unet", "unet_plusplus"])
def test_synthetic_quick_takes_any_model(make_config, model: str) -> None:
    cfg = make_config(["experiment=synthetic_quick", f"model={model}"], tiny=False)
    check_config(cfg)
    assert cfg.trainer.max_epochs == 3 and cfg.data.source.image_size == 64


@pytest.mark.parametrize("trainer", ["ddp", "ddp_cpu", "multinode"])
def test_distributed_trainers_inherit_default(make_config, trainer: str) -> None:
    cfg = make_config([f"trainer={trainer}"], tiny=False)
    check_config(cfg)
    assert cfg.trainer._target_ == "lightning.pytorch.trainer.Trainer"
    assert cfg.trainer.max_epochs == 12
    assert cfg.trainer.strategy in ("ddp", "ddp_fork")


def test_slurm_launcher_follows_the_trainer(make_config) -> None:
    cfg = make_config(
        ["trainer=multinode", "trainer.num_nodes=3", "hydra/launcher=slurm_ddp"], tiny=False
    )
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.nodes, launcher.tasks_per_node, launcher.gpus_per_node) == (3, 4, 4)


def test_optuna_search_follows_the_monitor(make_config) -> None:
    cfg = make_config(["hparams_search=optuna"], tiny=False)
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("OptunaSweeper")
    assert sweeper.direction == "maximize"
    assert sweeper.sampler.seed is not None and sweeper.max_failure_rate == 1.0
    assert sweeper.storage == f"sqlite:///{cfg.hydra.sweep.dir}/optuna.db"
    assert set(sweeper.params) == {
        "optimizer.lr",
        "optimizer.weight_decay",
        "model",
        "loss",
    }
    minimise = make_config(["hparams_search=optuna", "monitor.mode=min"], tiny=False)
    assert minimise.hydra.sweeper.direction == "minimize"


def test_debug_fast_dev_run(make_config) -> None:
    cfg = make_config(["debug=fdr"])
    assert cfg.task_name == "debug" and cfg.trainer.detect_anomaly
    metrics, objects = train(cfg)
    assert objects["trainer"].fast_dev_run
    assert "test/miou" in metrics


def test_debug_limit(make_config) -> None:
    metrics, objects = train(make_config(["debug=limit", "trainer.max_epochs=2"]))
    assert objects["trainer"].num_training_batches <= 4
    assert Path(metrics["ckpt_path"]).is_file()


def profiler_rows(report: str) -> dict[str, tuple[float, int, float]]:
    """``action -> (mean s, calls, total s)`` from a SimpleProfiler report."""
    rows = {}
    for line in report.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[1] not in ("-", "Mean duration (s)"):
            rows[cells[0]] = (float(cells[1]), int(cells[2]), float(cells[3]))
    return rows


def test_debug_profiler_times_every_training_step(make_config) -> None:
    metrics, objects = train(make_config(["debug=profiler"]))
    trainer = objects["trainer"]
    rows = profiler_rows(Path(metrics["output_dir"], "fit-profile.txt").read_text())
    assert trainer.max_epochs == 1 and trainer.global_step > 0
    assert rows["run_training_epoch"][1] == 1
    assert rows["run_training_batch"][1] == trainer.global_step
    assert rows["[LightningModule]UNetModule.optimizer_step"][1] == trainer.global_step
    for mean, calls, total in rows.values():
        assert total == pytest.approx(mean * calls, rel=1e-2, abs=1e-3)
    assert rows["run_training_epoch"][2] >= rows["run_training_batch"][2] > 0


def test_debug_overfit_drives_the_loss_down(make_config) -> None:
    # Callbacks are off in this mode, so the shared tiny settings (which remove one) do not
    # apply; these are the same without it.
    tiny = [o for o in TINY_OVERRIDES if not o.startswith(("~callbacks", "trainer.max_epochs"))]
    cfg = make_config(
        [*tiny, "debug=overfit", "trainer.max_epochs=8", "optimizer.lr=0.01"], tiny=False
    )
    metrics, objects = train(cfg)
    trainer = objects["trainer"]
    assert trainer.early_stopping_callback is None
    with open(Path(metrics["output_dir"], "metrics.csv")) as handle:
        losses = [
            float(row["train/loss_epoch"])
            for row in csv.DictReader(handle)
            if row.get("train/loss_epoch")
        ]
    assert len(losses) == 8 and losses[-1] < 0.7 * losses[0]


def test_encoder_shorthand_sets_the_resnet_unet_encoder(make_config) -> None:
    assert make_config(["model=resnet_unet"], tiny=False).model.encoder == "resnet34"
    for typed in (["encoder=resnet18"], ["model.encoder=resnet18"]):
        cfg = make_config(["model=resnet_unet", *typed], tiny=False)
        check_config(cfg)
        assert cfg.model.encoder == "resnet18"
    assert "encoder" not in make_config(["model=unet"], tiny=False).model
