"""`unetlab-eval`: rebuild model and data from a checkpoint's config and score it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

from unetlab.eval import main
from unetlab.train import train


def write_em_stacks(root: Path, count: int = 8, size: int = 40) -> Path:
    """Fake ISBI stacks: cell interior (255) cut by membrane lines (0), membranes dark."""
    rng = np.random.default_rng(0)
    labels = np.full((count, size, size), 255, np.uint8)
    for index in range(count):
        for line in rng.choice(np.arange(4, size - 4), size=3, replace=False):
            labels[index, :, line] = 0
            labels[index, (line + index) % size, :] = 0
    images = np.where(labels == 0, 40, 190).astype(np.uint8)
    root.mkdir(parents=True)
    tifffile.imwrite(root / "train-volume.tif", images, photometric="minisblack")
    tifffile.imwrite(root / "train-labels.tif", labels, photometric="minisblack")
    return root


def test_eval_reproduces_the_runs_test_metrics(trained_run, tmp_path: Path, capsys) -> None:
    metrics = trained_run
    capsys.readouterr()

    out = tmp_path / "eval"
    assert main([f"ckpt_path={metrics['ckpt_path']}", f"output_dir={out}"]) == 0
    printed = capsys.readouterr().out
    assert "test/miou" in printed and "test/iou/nucleus" in printed
    assert printed.strip().splitlines()[-1] == (
        f"RESULT test/miou={metrics['test/miou']:.4f} metrics={out / 'metrics.json'}"
    )
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["split"] == "test" and saved["ckpt_path"] == metrics["ckpt_path"]
    scores = saved["metrics"]
    assert scores["test/miou"] == pytest.approx(metrics["test/miou"], abs=1e-6)
    for name in ("test/iou/background", "test/dice/nucleus", "test/pixel_accuracy"):
        assert scores[name] == pytest.approx(metrics[name], abs=1e-6), name

    assert main([f"ckpt_path={metrics['ckpt_path']}", "split=val", "data.batch_size=1"]) == 0
    beside = json.loads(Path(metrics["ckpt_path"]).with_name("metrics.json").read_text())
    assert beside["metrics"]["val/miou"] == pytest.approx(metrics["val/miou"], abs=1e-6)

    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main([f"ckpt_path={metrics['ckpt_path']}", "data.bogus=1"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("unetlab-eval: error: data.bogus is not in the run's config")
    assert "+data.bogus=" in err


def test_eval_em_metrics_after_the_paper_recipe(make_config, tmp_path: Path) -> None:
    root = write_em_stacks(tmp_path / "isbi")
    cfg = make_config(
        [
            "experiment=isbi2012_unet_paper",
            f"data.root={root}",
            "model.base_channels=4",
            "model.depth=2",
            "data.patch_size=16",
            "data.patches_per_image=2",
            "trainer.max_epochs=1",
            "trainer.accelerator=cpu",
            "trainer.enable_progress_bar=false",
            "~callbacks.rich_progress_bar",
        ],
        tiny=False,
    )
    metrics, _ = train(cfg)
    for name in ("test/pixel_error", "test/v_rand", "test/v_info", "test/v_rand_unthinned"):
        assert 0 <= metrics[name] <= 1, name

    out = tmp_path / "eval"
    assert main([f"ckpt_path={metrics['ckpt_path']}", f"output_dir={out}"]) == 0
    scores = json.loads((out / "metrics.json").read_text())["metrics"]
    for name in (
        "test/miou",
        "test/iou/membrane",
        "test/pixel_error",
        "test/v_rand",
        "test/v_info",
    ):
        assert scores[name] == pytest.approx(metrics[name], abs=1e-6), name


def test_eval_mistakes_are_one_line(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["split=test"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == (
        "unetlab-eval: error: missing ckpt_path=...; usage: unetlab-eval ckpt_path=PATH "
        "[data.KEY=VALUE ...] [split=test|val] [output_dir=DIR] [trainer.KEY=VALUE ...]"
    )
    with pytest.raises(SystemExit) as exit_info:
        main([f"ckpt_path={tmp_path / 'none.ckpt'}"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"unetlab-eval: error: {tmp_path / 'none.ckpt'}: checkpoint not found")
    assert "\n" not in err
    with pytest.raises(SystemExit) as exit_info:
        main(["ckpt_path=x.ckpt", "bogus=1"])
    assert exit_info.value.code == 2
    assert "bogus" in capsys.readouterr().err
