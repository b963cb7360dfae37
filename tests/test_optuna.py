"""`hparams_search=optuna`: a seeded study in sqlite that survives failed trials and resumes."""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Sequence
from pathlib import Path

import optuna
import pytest
import yaml
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState
from packaging.version import Version

from hydra_plugins.unetlab_optuna_sweeper._ask_tell import (
    INTERRUPTED,
    AskTellSweep,
    SweepFailedError,
)
from hydra_plugins.unetlab_optuna_sweeper._search_space import grid_choices, parse_search_space
from tests.test_sweep import SWEEP_OVERRIDES, only_sweep_dir, run_train

STUDY_ARGS = (
    "hparams_search=optuna",
    "model.base_channels=4",
    "model.depth=2",
    *SWEEP_OVERRIDES,
)
# A learning rate of 1e30 makes training diverge.
DIVERGING_SPACE = (
    "hydra.sweeper.params={optimizer.lr:'choice(0.01,1e30)',"
    "optimizer.weight_decay:'choice(0.0)',model:'choice(unet,attention_unet)',"
    "loss:'choice(dice_ce,ce)'}"
)
TRAINING_SPACE = (
    "hydra.sweeper.params={optimizer.lr:'choice(0.01,0.02,0.005)',"
    "optimizer.weight_decay:'choice(0.0)',model:'choice(unet)',"
    "loss:'choice(dice_ce,ce)'}"
)


def load_trials(storage: str) -> list[optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name="train", storage=storage)
    return sorted(study.trials, key=lambda trial: trial.number)


def test_installed_optuna_is_4_or_newer() -> None:
    assert Version(optuna.__version__) >= Version("4")


def test_failed_trial_is_recorded_and_the_study_goes_on(tmp_path: Path, data_cache: Path) -> None:
    # With this seed the first trial draws lr=1e30 and later ones 0.01.
    args = [*STUDY_ARGS, DIVERGING_SPACE, "hydra.sweeper.sampler.seed=7"]
    first = tmp_path / "first"
    first.mkdir()
    result = run_train([*args, "hydra.sweeper.n_trials=3"], first, data_cache)
    assert result.returncode == 0, result.stderr[-3000:]
    sweep_dir = only_sweep_dir(first)
    storage = f"sqlite:///{sweep_dir / 'optuna.db'}"

    trials = load_trials(storage)
    diverging = [trial.params["optimizer.lr"] == 1e30 for trial in trials]
    assert any(diverging) and not all(diverging), [t.params for t in trials]
    for trial, diverges in zip(trials, diverging, strict=True):
        assert trial.state == (TrialState.FAIL if diverges else TrialState.COMPLETE)
    failed = trials[diverging.index(True)]
    assert re.search(r"non-finite|diverged|no finite", failed.user_attrs["error"])
    assert any(
        trial.state == TrialState.COMPLETE and trial.number > failed.number for trial in trials
    )

    with open(sweep_dir / "summary.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["status"] for row in rows] == [
        "failed" if diverges else "completed" for diverges in diverging
    ]
    for row, trial in zip(rows, trials, strict=True):
        if trial.state == TrialState.COMPLETE:
            assert float(row["val/miou_best"]) == trial.value
        else:
            assert re.search(r"non-finite|diverged", row["error"]), row["error"]
            assert "lower optimizer.lr" in row["error"]
    best = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    completed = [trial.value for trial in trials if trial.state == TrialState.COMPLETE]
    assert best["best_value"] == max(completed)

    # n_trials counts the study's trials: 4 on the same storage adds one.
    second = tmp_path / "second"
    second.mkdir()
    result = run_train(
        [*args, "hydra.sweeper.n_trials=4", f"hydra.sweeper.storage={storage}"],
        second,
        data_cache,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert [trial.number for trial in load_trials(storage)] == [0, 1, 2, 3]
    assert not (only_sweep_dir(second) / "optuna.db").exists()


def test_interrupted_study_resumes_and_completes_the_rest(tmp_path: Path, data_cache: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    args = [
        *STUDY_ARGS,
        TRAINING_SPACE,
        "hydra.sweeper.n_trials=3",
        f"hydra.sweeper.storage={storage}",
        # The second training of all (trial 1) kills its process, as a crash or kill -9 would.
        "+callbacks.kill._target_=tests.faults.KillAtFit",
        f"+callbacks.kill.counter={tmp_path / 'fits'}",
        "+callbacks.kill.at=2",
    ]
    first = tmp_path / "first"
    first.mkdir()
    result = run_train(args, first, data_cache)
    assert result.returncode != 0
    assert [trial.state for trial in load_trials(storage)] == [
        TrialState.COMPLETE,
        TrialState.RUNNING,
    ]

    second = tmp_path / "second"
    second.mkdir()
    result = run_train(args, second, data_cache)
    assert result.returncode == 0, result.stderr[-3000:]
    trials = load_trials(storage)
    assert [trial.state for trial in trials] == [
        TrialState.COMPLETE,
        TrialState.FAIL,
        TrialState.COMPLETE,
        TrialState.COMPLETE,
    ]
    assert trials[1].user_attrs[INTERRUPTED] is True
    # The interrupted trial's parameters are tried again first.
    assert trials[2].params == trials[1].params
    assert (tmp_path / "fits").read_text() == "4"
    with open(only_sweep_dir(second) / "summary.csv") as handle:
        assert [row["status"] for row in csv.DictReader(handle)] == ["completed", "completed"]


def test_pruned_trials_stop_early_and_are_recorded(tmp_path: Path, data_cache: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    # mIoU is never above 2: the threshold pruner stops every trial at its first validation.
    args = [
        *(arg for arg in STUDY_ARGS if not arg.startswith("trainer.max_epochs")),
        TRAINING_SPACE,
        "trainer.max_epochs=3",
        "hydra.sweeper.n_trials=2",
        f"hydra.sweeper.storage={storage}",
        "hydra/sweeper/pruner=threshold",
        "hydra.sweeper.pruner.lower=2.0",
    ]
    result = run_train(args, tmp_path, data_cache)
    assert result.returncode == 0, result.stderr[-3000:]
    trials = load_trials(storage)
    assert [trial.state for trial in trials] == [TrialState.PRUNED] * 2
    sweep_dir = only_sweep_dir(tmp_path)
    for trial in trials:
        assert list(trial.intermediate_values) == [0]
        assert trial.value == trial.intermediate_values[0]
        with open(sweep_dir / str(trial.user_attrs["job_num"]) / "metrics.csv") as handle:
            validated = {row["epoch"] for row in csv.DictReader(handle) if row["val/miou"]}
        assert validated == {"0"}
    assert not (sweep_dir / "optimization_results.yaml").exists()


def test_search_space_from_sweep_expressions() -> None:
    distributions, fixed = parse_search_space(
        [
            "lr=tag(log, interval(1e-4, 1e-1))",
            "depth=int(interval(2, 5))",
            "dropout=interval(0, 1)",
            "width=range(8, 40, 8)",
            "scale=range(0.5, 2.0, 0.5)",
            "loss=choice(ce, dice)",
            "seed=3",
        ]
    )
    assert distributions == {
        "lr": FloatDistribution(1e-4, 1e-1, log=True),
        "depth": IntDistribution(2, 5),
        "dropout": FloatDistribution(0.0, 1.0),
        "width": IntDistribution(8, 32, step=8),
        "scale": FloatDistribution(0.5, 1.5, step=0.5),
        "loss": CategoricalDistribution(["ce", "dice"]),
    }
    assert fixed == {"seed": "3"}
    grid = grid_choices({k: distributions[k] for k in ("width", "scale", "loss")})
    assert grid == {"width": [8, 16, 24, 32], "scale": [0.5, 1.0, 1.5], "loss": ["ce", "dice"]}
    with pytest.raises(ValueError, match=r"hydra.sweeper.params.lr: .*grid sampler"):
        grid_choices({"lr": distributions["lr"]})


class RecordingLauncher:
    """Runs ``x=<value>`` jobs in-process: the objective is ``(x - 2)**2``, ``x=13`` fails."""

    def __init__(self) -> None:
        self.batches: list[list[list[str]]] = []

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list:
        self.batches.append([list(overrides) for overrides in job_overrides])
        jobs = []
        for overrides in job_overrides:
            x = int(dict(o.split("=") for o in overrides)["x"])
            job = JobReturn(overrides=list(overrides), status=JobStatus.COMPLETED)
            job.return_value = math.nan if x == 13 else float((x - 2) ** 2)
            jobs.append(job)
        return jobs


def make_sweeper(tmp_path: Path, **options) -> tuple[AskTellSweep, RecordingLauncher]:
    settings = {
        "sampler": optuna.samplers.RandomSampler(seed=0),
        "pruner": optuna.pruners.NopPruner(),
        "direction": "minimize",
        "storage": f"sqlite:///{tmp_path / 'study.db'}",
        "study_name": "s",
        "n_trials": 5,
        "n_jobs": 2,
        "max_failure_rate": 1.0,
        "params": OmegaConf.create({"x": "range(0, 5)"}),
        **options,
    }
    sweeper = AskTellSweep(**settings)
    sweeper.config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path / "sweep")}}})
    sweeper.launcher = RecordingLauncher()
    return sweeper, sweeper.launcher


def test_trials_are_launched_in_batches_of_n_jobs(tmp_path: Path) -> None:
    sweeper, launcher = make_sweeper(tmp_path, params=OmegaConf.create({"x": "choice(1,2,3)"}))
    sweeper.sweep(["fixed=a"])
    assert [len(batch) for batch in launcher.batches] == [2, 2, 1]
    assert all(overrides[1:] == ["fixed=a"] for b in launcher.batches for overrides in b)
    study = optuna.load_study(study_name="s", storage=sweeper.storage)
    assert [t.value for t in study.trials] == [(int(t.params["x"]) - 2) ** 2 for t in study.trials]
    results = yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())
    assert results == {"name": "optuna", "best_params": {"x": 2}, "best_value": 0.0}


def test_a_batch_with_too_many_failures_stops_the_sweep(tmp_path: Path) -> None:
    sweeper, launcher = make_sweeper(
        tmp_path, params=OmegaConf.create({"x": "choice(13)"}), max_failure_rate=0.5
    )
    with pytest.raises(SweepFailedError, match=r"max_failure_rate=0.5"):
        sweeper.sweep([])
    assert len(launcher.batches) == 1
    study = optuna.load_study(study_name="s", storage=sweeper.storage)
    assert [t.state for t in study.trials] == [TrialState.FAIL] * 2
    assert "not 1 finite number" in study.trials[0].user_attrs["error"]
