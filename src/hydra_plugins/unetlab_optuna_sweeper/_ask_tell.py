"""The sweep itself: ask Optuna for trials, run them through the launcher, tell the results.

The study lives in ``storage`` (e.g. sqlite). ``n_trials`` is the number of finished trials
the study should have, so running the same command again on the same storage resumes an
interrupted study and runs only the trials still missing. Trials that an interrupted sweep
left running are recorded as failed, marked ``interrupted``, not counted, and their
parameters are tried again first. A trial whose job fails or returns no finite value is
recorded as failed and the study goes on (up to ``max_failure_rate`` per batch). Each batch
is ``n_jobs`` trials asked together and launched together, so a parallel launcher (joblib,
submitit) runs them at the same time.
"""

from __future__ import annotations

import functools
import logging
import math
from pathlib import Path
from typing import Any

import optuna
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

from hydra_plugins.unetlab_optuna_sweeper._search_space import grid_choices, parse_search_space
from unetlab.sweep import read_result

log = logging.getLogger(__name__)

INTERRUPTED = "interrupted"
ERROR = "error"
# Set by a job on its trial when the pruner stopped it (unetlab.callbacks.OptunaPruning).
PRUNED = "pruned"
JOB_NUM = "job_num"


class SweepFailedError(RuntimeError):
    """Too many trials of a batch failed, or no trial completed."""


def job_values(job: JobReturn, n_objectives: int) -> list[float]:
    """The objective values a job returned.

    Raises:
        ValueError: The job failed, or returned something other than ``n_objectives`` finite
            numbers; the message is the job's error (also the one a training run that caught
            it wrote to its ``result.json``).
    """
    if job.status != JobStatus.COMPLETED:
        error = job._return_value
        raise ValueError(f"{type(error).__name__}: {error}")
    value = job.return_value
    if value is None and job.hydra_cfg is not None:
        error = read_result(Path(job.hydra_cfg.hydra.runtime.output_dir)).get("error")
        if error:
            raise ValueError(error)
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if len(values) != n_objectives or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values
    ):
        raise ValueError(f"the job returned {value!r}, not {n_objectives} finite number(s)")
    return [float(v) for v in values]


def finished_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Trials that count towards ``n_trials``: finished, and not cut off by an interruption."""
    return [
        trial
        for trial in study.get_trials(deepcopy=False)
        if trial.state.is_finished() and not trial.user_attrs.get(INTERRUPTED)
    ]


def recover_interrupted(study: optuna.Study) -> int:
    """Record trials left running by an interrupted sweep as failed and queue them again.

    Only one sweep may work on a study at a time: a running trial is taken as interrupted.

    Returns:
        The number of trials recovered.
    """
    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for trial in stale:
        study._storage.set_trial_user_attr(trial._trial_id, INTERRUPTED, True)
        study.tell(trial.number, state=TrialState.FAIL)
        study.enqueue_trial(trial.params, skip_if_exists=False)
        log.warning("Trial %d was interrupted; its parameters are tried again", trial.number)
    return len(stale)


class AskTellSweep:
    """An Optuna study driven by ask and tell, its trials run as Hydra jobs.

    Args:
        sampler: An Optuna sampler (a partial for the grid sampler).
        pruner: An Optuna pruner.
        direction: ``minimize`` or ``maximize``, or a list of them.
        storage: Optuna storage URL; ``None`` keeps the study in memory.
        study_name: Name of the study in the storage.
        n_trials: Finished trials the study should have, earlier runs included.
        n_jobs: Trials per batch handed to the launcher at once.
        max_failure_rate: Largest share of failed trials in a batch before the sweep stops.
        params: Parameter name to Hydra sweep expression.
    """

    def __init__(
        self,
        sampler: Any,
        pruner: Any,
        direction: Any,
        storage: str | None,
        study_name: str | None,
        n_trials: int,
        n_jobs: int,
        max_failure_rate: float,
        params: DictConfig | None,
    ) -> None:
        if not 0.0 <= max_failure_rate <= 1.0:
            raise ValueError(f"hydra.sweeper.max_failure_rate={max_failure_rate} is not in [0, 1]")
        if n_trials < 1 or n_jobs < 1:
            raise ValueError(
                f"hydra.sweeper.n_trials={n_trials} and hydra.sweeper.n_jobs={n_jobs} "
                "must be positive"
            )
        self.sampler = sampler
        self.pruner = pruner
        self.directions = (
            [str(d) for d in direction] if OmegaConf.is_list(direction) else [str(direction)]
        )
        self.storage = storage
        self.study_name = study_name
        self.n_trials = n_trials
        self.n_jobs = n_jobs
        self.max_failure_rate = max_failure_rate
        self.params = params or {}
        self.job_idx = 0

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> None:
        overrides = [f"{name}={value}" for name, value in self.params.items()]
        distributions, fixed = parse_search_space([*overrides, *arguments])
        n_trials = self.n_trials
        sampler = self.sampler
        if isinstance(sampler, functools.partial):  # the grid sampler
            grid = grid_choices(distributions)
            sampler = sampler(grid)
            n_trials = min(n_trials, math.prod(len(values) for values in grid.values()))
        Path(self.config.hydra.sweep.dir).mkdir(parents=True, exist_ok=True)
        study = optuna.create_study(
            storage=self.storage,
            study_name=self.study_name,
            sampler=sampler,
            pruner=self.pruner,
            directions=self.directions,
            load_if_exists=True,
        )
        recover_interrupted(study)
        done = len(finished_trials(study))
        log.info(
            "Study %s in %s: %d of %d trials done", study.study_name, self.storage, done, n_trials
        )
        log.info("Sampler %s, pruner %s", type(sampler).__name__, type(self.pruner).__name__)
        while done < n_trials:
            batch = min(self.n_jobs, n_trials - done)
            self._run_batch(study, distributions, fixed, batch)
            done = len(finished_trials(study))
        self._save_results(study)

    def _run_batch(
        self,
        study: optuna.Study,
        distributions: dict[str, BaseDistribution],
        fixed: dict[str, Any],
        size: int,
    ) -> None:
        trials = [study.ask(distributions) for _ in range(size)]
        for offset, trial in enumerate(trials):
            trial.set_user_attr(JOB_NUM, self.job_idx + offset)
        job_overrides = [
            [
                *(f"{name}={value}" for name, value in trial.params.items()),
                *(f"{name}={value}" for name, value in fixed.items()),
            ]
            for trial in trials
        ]
        jobs = self.launcher.launch(job_overrides, initial_job_idx=self.job_idx)
        self.job_idx += len(jobs)
        failures = []
        stored = study.get_trials(deepcopy=False)
        for trial, job in zip(trials, jobs, strict=True):
            if stored[trial.number].user_attrs.get(PRUNED):
                study.tell(trial, state=TrialState.PRUNED)
                log.info("Trial %d was pruned", trial.number)
                continue
            try:
                values = job_values(job, len(self.directions))
            except ValueError as error:
                trial.set_user_attr(ERROR, str(error))
                study.tell(trial, state=TrialState.FAIL)
                log.warning("Trial %d failed: %s", trial.number, error)
                failures.append(trial.number)
            else:
                study.tell(trial, values)
        if len(failures) / len(jobs) > self.max_failure_rate:
            raise SweepFailedError(
                f"trials {failures} of a batch of {len(jobs)} failed, more than "
                f"hydra.sweeper.max_failure_rate={self.max_failure_rate}; their errors are "
                "in the sweep folder's summary.md"
            )

    def _save_results(self, study: optuna.Study) -> None:
        """Write ``optimization_results.yaml`` (best parameters and value) to the sweep folder."""
        completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if not completed:
            if study.get_trials(deepcopy=False, states=(TrialState.PRUNED,)):
                log.warning("Every trial of study %s was pruned: no best trial", study.study_name)
                return
            raise SweepFailedError(
                f"no trial of study {study.study_name} completed; their errors are in the "
                "sweep folder's summary.md"
            )
        if len(self.directions) == 1:
            best = study.best_trial
            results = {"name": "optuna", "best_params": best.params, "best_value": best.value}
            log.info("Best parameters: %s, value %s", best.params, best.value)
        else:
            results = {
                "name": "optuna",
                "solutions": [{"params": t.params, "values": t.values} for t in study.best_trials],
            }
        OmegaConf.save(
            OmegaConf.create(results),
            Path(self.config.hydra.sweep.dir) / "optimization_results.yaml",
        )


def running_trial(hydra_config: DictConfig) -> optuna.Trial | None:
    """The trial a job of this sweeper is running, from the job's Hydra config.

    The trial is found in the sweep's storage by its job number, with the sweep's pruner.

    Returns:
        The trial, or ``None`` when the job is not a trial of a stored study of this sweeper.
    """
    sweeper = hydra_config.get("sweeper") or {}
    if not str(sweeper.get("_target_", "")).startswith("hydra_plugins.unetlab_optuna_sweeper."):
        return None
    if sweeper.get("storage") is None:
        log.warning("Pruning needs hydra.sweeper.storage; trials are not pruned")
        return None
    from hydra.utils import instantiate

    study = optuna.load_study(
        study_name=sweeper.study_name,
        storage=sweeper.storage,
        pruner=instantiate(sweeper.pruner),
    )
    job_num = int(hydra_config.job.num)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if trial.user_attrs.get(JOB_NUM) == job_num:
            return optuna.Trial(study, trial._trial_id)
    return None
