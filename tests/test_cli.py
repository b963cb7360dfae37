"""`python train.py` as users type it."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import TINY_OVERRIDES, run_train


def test_help_lists_config_groups(tmp_path: Path) -> None:
    result = run_train(["--help"], tmp_path)
    assert result.returncode == 0, result.stderr
    for group in (
        "model",
        "data",
        "optimizer",
        "scheduler",
        "loss",
        "trainer",
        "logger",
        "callbacks",
        "encoder",
        "experiment",
    ):
        assert re.search(rf"^{group}: ", result.stdout, re.MULTILINE), group


def test_train_script_end_to_end(tmp_path: Path, data_cache: Path) -> None:
    result = run_train(
        [*TINY_OVERRIDES, f"paths.cache_dir={data_cache}", "trainer.max_epochs=2"], tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    last = result.stdout.strip().splitlines()[-1]
    match = re.fullmatch(
        r"RESULT val/miou_best=([\d.]+) test/miou=([\d.]+) ckpt=(\S+) dir=(\S+)", last
    )
    assert match, last
    run_dir = Path(match[4])
    assert run_dir.parent == tmp_path / "logs" / "train" / "runs"
    assert Path(match[3]).is_file() and Path(match[3]).parent == run_dir / "checkpoints"
    for name in (".hydra/config.yaml", "config.yaml", "metrics.csv", "train.log", "split.json"):
        assert (run_dir / name).is_file(), name
    assert "best checkpoint" in (run_dir / "train.log").read_text()


def test_unknown_option_lists_choices(tmp_path: Path) -> None:
    result = run_train(["model=unknown_net"], tmp_path, timeout=60)
    assert result.returncode != 0
    assert "unet" in result.stderr and "unknown_net" in result.stderr


def test_console_prints_each_event_once_without_tips(tmp_path: Path, data_cache: Path) -> None:
    with_progress_bar = [item for item in TINY_OVERRIDES if "progress" not in item]
    result = run_train([*with_progress_bar, f"paths.cache_dir={data_cache}"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    console = result.stdout + result.stderr
    for event in ("Seed set to 42", "GPU available:", "`Trainer.fit` stopped", "best checkpoint:"):
        assert console.count(event) == 1, event
    assert "Seed set to 42" in console and "[lightning.fabric.utilities.seed][INFO]" in console
    assert not re.search(r"^INFO: ", console, re.MULTILINE)
    assert "Tip:" not in console and "litlogger" not in console
    assert "LeafSpec" not in console  # Lightning's internal deprecation notice
    assert "━" in console  # Lightning's rich progress bar
    (run_dir,) = (tmp_path / "logs" / "train" / "runs").iterdir()
    assert (run_dir / "train.log").read_text().count("Seed set to 42") == 1
