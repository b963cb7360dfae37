"""Learning-rate schedules over the fraction of a run's budget spent.

A run limited by time (``trainer.max_time``) or by steps alone has no epoch count for
``CosineAnnealingLR``, ``PolynomialLR`` or ``OneCycleLR`` to plan over (``T_max=-1`` made
the cosine schedule flip between its two ends every epoch). There the same shapes follow the
budget's progress instead: the larger of the time fraction and the step fraction spent,
updated after every optimizer step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Timer
from torch.optim import Optimizer
from torch.optim.lr_scheduler import CosineAnnealingLR, LRScheduler, OneCycleLR, PolynomialLR

from unetlab.config import ConfigError

# learning rate of a parameter group as a function of (its base learning rate, progress).
Shape = Callable[[float, float], float]


def cosine_lr(base_lr: float, progress: float, eta_min: float = 0.0) -> float:
    """``CosineAnnealingLR`` over the budget: ``base_lr`` at 0, ``eta_min`` at 1."""
    return eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * progress)) / 2


def poly_lr(base_lr: float, progress: float, power: float = 1.0) -> float:
    """``PolynomialLR`` over the budget: ``base_lr * (1 - progress) ** power``."""
    return base_lr * (1 - progress) ** power


def one_cycle_lr(
    base_lr: float,
    progress: float,
    max_lr: float,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    anneal_strategy: str = "cos",
) -> float:
    """``OneCycleLR`` over the budget: from ``max_lr / div_factor`` up to ``max_lr`` in the
    first ``pct_start`` of it, then down to ``max_lr / div_factor / final_div_factor``."""
    initial = max_lr / div_factor
    if progress < pct_start:
        start, end, fraction = initial, max_lr, progress / pct_start
    else:
        start, end = max_lr, initial / final_div_factor
        fraction = (progress - pct_start) / (1 - pct_start)
    if anneal_strategy == "cos":
        return end + (start - end) * (1 + math.cos(math.pi * fraction)) / 2
    return start + (end - start) * fraction


class BudgetSchedule(LRScheduler):
    """Sets every parameter group's learning rate to ``shape(base_lr, progress())``.

    Step it after every optimizer step. Its checkpointed state is the step count and the
    base learning rates; ``progress`` (e.g. the trainer's timer, itself restored on resume)
    and ``shape`` come from the config.

    Args:
        optimizer: The optimizer.
        shape: Learning rate of a group from its base learning rate and the progress (0..1).
        progress: The fraction of the budget spent.
    """

    def __init__(self, optimizer: Optimizer, shape: Shape, progress: Callable[[], float]) -> None:
        self.shape = shape
        self.progress = progress
        super().__init__(optimizer)

    def get_lr(self) -> list[float]:
        progress = min(max(self.progress(), 0.0), 1.0)
        return [self.shape(base_lr, progress) for base_lr in self.base_lrs]

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state.pop("shape", None)
        state.pop("progress", None)
        return state


def budget_shape(factory: Any) -> Shape | None:
    """The budget form of a configured (partial) scheduler, or ``None`` for other schedulers
    (``ReduceLROnPlateau`` follows the monitored metric and needs no length)."""
    target = getattr(factory, "func", None)
    keywords = getattr(factory, "keywords", {})
    if target is CosineAnnealingLR:
        return partial(cosine_lr, eta_min=keywords.get("eta_min", 0.0))
    if target is PolynomialLR:
        return partial(poly_lr, power=keywords.get("power", 1.0))
    if target is OneCycleLR:
        if keywords.get("three_phase"):
            raise ConfigError(
                "scheduler.three_phase=true is not supported with a time budget "
                "(trainer.max_time); set scheduler.three_phase=false"
            )
        names = ("pct_start", "div_factor", "final_div_factor", "anneal_strategy")
        return partial(
            one_cycle_lr,
            max_lr=keywords["max_lr"],
            **{name: keywords[name] for name in names if name in keywords},
        )
    return None


def budget_progress(trainer: L.Trainer) -> Callable[[], float] | None:
    """The fraction of ``trainer``'s budget spent, as a function, when it is limited by time
    (``max_time``) or by steps alone (``max_epochs=-1``); ``None`` for epoch-limited runs.

    Raises:
        ConfigError: The run has no end at all (``max_epochs=-1``, no ``max_time`` or
            ``max_steps``).
    """
    timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None)
    timed = timer is not None and timer.time_remaining() is not None
    if not timed and trainer.max_epochs not in (None, -1):
        return None
    if not timed and trainer.max_steps == -1:
        raise ConfigError(
            "the learning-rate schedule needs the run's length, but trainer.max_epochs=-1 "
            "sets none: set trainer.max_epochs, trainer.max_time=DD:HH:MM:SS or "
            "trainer.max_steps, or use scheduler=plateau or scheduler=none"
        )

    def progress() -> float:
        spent = 0.0
        # Counting the planned steps needs the training data; loading it here, before the
        # fit loop does, would start the data-loader workers for the wrong epoch on resume.
        if math.isfinite(trainer.num_training_batches):
            steps = trainer.estimated_stepping_batches
            spent = trainer.global_step / steps if math.isfinite(steps) else 0.0
        if timed:
            elapsed = timer.time_elapsed()
            spent = max(spent, elapsed / (elapsed + timer.time_remaining()))
        return spent

    return progress
