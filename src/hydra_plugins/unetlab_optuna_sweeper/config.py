"""Structured configs of the sweeper, its samplers and its pruners.

``hydra/sweeper=optuna`` selects the sweeper; ``hydra/sweeper/sampler=tpe|random|cmaes|nsgaii|
gp|grid`` and ``hydra/sweeper/pruner=nop|median|hyperband|threshold`` choose the sampler and pruner, whose
keyword arguments are then set as ``hydra.sweeper.sampler.<name>=...``.

Hydra loads plugin modules outside ``sys.modules`` and OmegaConf reads the annotations of
these dataclasses, so they are evaluated (no postponed annotations) and spelled with
``typing.Optional``/``Dict``/``List``, the forms OmegaConf understands.
"""

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclass
class TPESamplerConf:
    _target_: str = "optuna.samplers.TPESampler"
    seed: Optional[int] = None
    n_startup_trials: int = 10
    n_ei_candidates: int = 24
    multivariate: bool = False
    group: bool = False
    constant_liar: bool = False


@dataclass
class RandomSamplerConf:
    _target_: str = "optuna.samplers.RandomSampler"
    seed: Optional[int] = None


@dataclass
class CmaEsSamplerConf:
    _target_: str = "optuna.samplers.CmaEsSampler"
    seed: Optional[int] = None
    n_startup_trials: int = 1
    sigma0: Optional[float] = None
    restart_strategy: Optional[str] = None
    use_separable_cma: bool = False


@dataclass
class NSGAIISamplerConf:
    _target_: str = "optuna.samplers.NSGAIISampler"
    seed: Optional[int] = None
    population_size: int = 50


@dataclass
class GPSamplerConf:
    _target_: str = "optuna.samplers.GPSampler"
    seed: Optional[int] = None
    n_startup_trials: int = 10


@dataclass
class GridSamplerConf:
    """Every combination of the choices; ``n_trials`` is capped at their number."""

    _target_: str = "optuna.samplers.GridSampler"
    # The search space is filled in from hydra.sweeper.params at run time.
    _partial_: bool = True
    seed: Optional[int] = None


@dataclass
class NopPrunerConf:
    _target_: str = "optuna.pruners.NopPruner"


@dataclass
class MedianPrunerConf:
    _target_: str = "optuna.pruners.MedianPruner"
    n_startup_trials: int = 5
    n_warmup_steps: int = 0
    interval_steps: int = 1


@dataclass
class HyperbandPrunerConf:
    _target_: str = "optuna.pruners.HyperbandPruner"
    min_resource: int = 1
    max_resource: Any = "auto"
    reduction_factor: int = 3


@dataclass
class ThresholdPrunerConf:
    _target_: str = "optuna.pruners.ThresholdPruner"
    lower: Optional[float] = None
    upper: Optional[float] = None
    n_warmup_steps: int = 0
    interval_steps: int = 1


@dataclass
class OptunaSweeperConf:
    _target_: str = "hydra_plugins.unetlab_optuna_sweeper.sweeper.OptunaSweeper"
    defaults: List[Any] = field(default_factory=lambda: [{"sampler": "tpe"}, {"pruner": "nop"}])
    sampler: Any = MISSING
    pruner: Any = MISSING
    # `minimize`, `maximize`, or a list of them for several objectives.
    direction: Any = "minimize"
    # An Optuna storage URL, e.g. sqlite:///path/optuna.db; null keeps the study in memory.
    storage: Optional[str] = None
    study_name: Optional[str] = None
    # Finished trials the study should have, counting those of earlier runs on the storage.
    n_trials: int = 20
    # Trials asked together and handed to the launcher as one batch.
    n_jobs: int = 1
    # The sweep stops with an error when a batch has a larger share of failed trials.
    max_failure_rate: float = 0.0
    # name: Hydra sweep expression, e.g. `optimizer.lr: tag(log, interval(1e-4, 1e-1))`.
    params: Optional[Dict[str, str]] = None


def register_configs() -> None:
    """Put the sweeper, sampler and pruner configs into Hydra's config store."""
    store = ConfigStore.instance()
    store.store(group="hydra/sweeper", name="optuna", node=OptunaSweeperConf, provider="unetlab")
    samplers = {
        "tpe": TPESamplerConf,
        "random": RandomSamplerConf,
        "cmaes": CmaEsSamplerConf,
        "nsgaii": NSGAIISamplerConf,
        "gp": GPSamplerConf,
        "grid": GridSamplerConf,
    }
    for name, node in samplers.items():
        store.store(group="hydra/sweeper/sampler", name=name, node=node, provider="unetlab")
    pruners = {
        "nop": NopPrunerConf,
        "median": MedianPrunerConf,
        "hyperband": HyperbandPrunerConf,
        "threshold": ThresholdPrunerConf,
    }
    for name, node in pruners.items():
        store.store(group="hydra/sweeper/pruner", name=name, node=node, provider="unetlab")


register_configs()
