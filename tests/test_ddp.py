"""DDP on CPU: two processes score like one, and DDP works inside a Hydra multirun."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_sweep import SWEEP_OVERRIDES, only_sweep_dir, run_train
from unetlab.eval import evaluate
from unetlab.train import train


@pytest.mark.ddp
@pytest.mark.timeout(300)
def test_ddp_cpu_val_miou_equals_one_process(make_config) -> None:
    # 12 images give 2 validation images: one per process, none repeated by the sampler.
    # Monitoring the loss checks that the best score comes back from the forked processes.
    cfg = make_config(
        [
            "trainer=ddp_cpu",
            "callbacks.prediction_images.every_n_epochs=1",
            "monitor.metric=val/loss",
            "monitor.mode=min",
        ]
    )
    metrics, objects = train(cfg)
    assert objects["trainer"].world_size == 2
    assert 0.0 <= metrics["test/miou"] <= 1.0
    assert metrics["val/loss_best"] == pytest.approx(metrics["val/loss"])
    assert Path(metrics["output_dir"], "predictions.png").is_file()

    # The checkpoint holds the weights both processes validated with; one process scores
    # the whole validation split with them.
    last = Path(metrics["output_dir"], "checkpoints", "last.ckpt")
    single = evaluate(last, split="val", data_overrides=["data.batch_size=1"])
    assert single["val/miou"] == pytest.approx(metrics["val/miou"], abs=1e-6)
    assert single["val/iou/background"] == pytest.approx(metrics["val/iou/background"], abs=1e-6)
    # Object-level scores: counts summed and per-image DSB scores averaged across processes.
    for name in ("n_true", "n_pred", "f1_50", "dsb_score", "panoptic_quality"):
        key = f"val/instances/{name}"
        assert single[key] == pytest.approx(metrics[key], abs=1e-6), key


@pytest.mark.ddp
@pytest.mark.timeout(600)
def test_ddp_subprocess_launcher_inside_multirun(tmp_path: Path, data_cache: Path) -> None:
    # trainer=ddp starts rank 1 as a new process running train.py: it must join its job
    # instead of starting the whole sweep again.
    result = run_train(
        [
            "-m",
            "seed=1,2",
            "trainer=ddp",
            "trainer.accelerator=cpu",
            "trainer.devices=2",
            "trainer.sync_batchnorm=false",
            "trainer.precision=32-true",
            "model.base_channels=4",
            "model.depth=2",
            *SWEEP_OVERRIDES,
        ],
        tmp_path,
        data_cache,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # Lightning's messages go through the run's console handler (stdout), once per job.
    assert (result.stdout + result.stderr).count("MEMBER: 2/2") == 2
    sweep_dir = only_sweep_dir(tmp_path)
    assert sorted(p.name for p in sweep_dir.iterdir() if p.is_dir()) == ["0", "1"]
    assert not (tmp_path / "logs" / "train" / "runs").exists()
    summary = (sweep_dir / "summary.md").read_text()
    assert summary.count("| completed |") == 2
    for job in ("0", "1"):
        assert (sweep_dir / job / "checkpoints" / "last.ckpt").is_file()
