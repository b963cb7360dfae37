"""`hparams_search=optuna`: a seeded study in sqlite that survives diverged trials and resumes."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import optuna
import yaml

from tests.test_sweep import SWEEP_OVERRIDES, only_sweep_dir, run_train

# A learning rate of 1e30 makes training diverge. With this sampler seed the first trial draws
# it and the next two draw 0.01.
SEARCH_SPACE = (
    "hydra.sweeper.params={optimizer.lr:'choice(0.01,1e30)',"
    "optimizer.weight_decay:'choice(0.0)',model:'choice(unet,attention_unet)',"
    "loss:'choice(dice_ce,ce)'}"
)
STUDY_ARGS = (
    "hparams_search=optuna",
    "hydra.sweeper.sampler.seed=7",
    SEARCH_SPACE,
    "model.base_channels=4",
    "model.depth=2",
    *SWEEP_OVERRIDES,
)


def load_trials(storage: str) -> list[optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name="train", storage=storage)
    return sorted(study.trials, key=lambda trial: trial.number)


def test_study_records_diverged_trial_and_resumes(tmp_path: Path, data_cache: Path) -> None:
    first = tmp_path / "first"
    first.mkdir()
    result = run_train([*STUDY_ARGS, "hydra.sweeper.n_trials=3"], first, data_cache)
    assert result.returncode == 0, result.stderr[-3000:]
    sweep_dir = only_sweep_dir(first)
    storage = f"sqlite:///{sweep_dir / 'optuna.db'}"

    trials = load_trials(storage)
    states = [trial.state for trial in trials]
    assert states == [
        optuna.trial.TrialState.FAIL,
        optuna.trial.TrialState.COMPLETE,
        optuna.trial.TrialState.COMPLETE,
    ]
    assert trials[0].params["optimizer.lr"] == 1e30
    assert all(trial.params["optimizer.lr"] == 0.01 for trial in trials[1:])

    with open(sweep_dir / "summary.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["status"] for row in rows] == ["failed", "completed", "completed"]
    # Stopped by the NaN guard during training, or by the check after it.
    assert re.search(r"non-finite|diverged", rows[0]["error"]), rows[0]["error"]
    assert "lower optimizer.lr" in rows[0]["error"]
    for row, trial in zip(rows[1:], trials[1:], strict=True):
        assert float(row["val/miou_best"]) == trial.value
    best = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert best["best_value"] == max(trial.value for trial in trials[1:])

    second = tmp_path / "second"
    second.mkdir()
    result = run_train(
        [*STUDY_ARGS, "hydra.sweeper.n_trials=1", f"hydra.sweeper.storage={storage}"],
        second,
        data_cache,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert [trial.number for trial in load_trials(storage)] == [0, 1, 2, 3]
    assert not (only_sweep_dir(second) / "optuna.db").exists()
