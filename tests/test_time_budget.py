"""Time budgets: ``trainer.max_time`` ends the run and every schedule follows the budget."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import ClassVar

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import timer as lightning_timer

from unetlab.config import ConfigError
from unetlab.train import train

BASE_LR = 1e-3
# A ten-minute budget; every training batch takes one minute on the fake clock.
BUDGET = ["++trainer.max_time=00:00:10:00", "trainer.max_epochs=-1", "test=false"]
SECONDS_PER_BATCH = 60.0
BATCHES = 10
PROBE = [
    "+callbacks.clock._target_=tests.test_time_budget.MinutePerBatch",
    "data.batch_size=2",  # four batches per epoch: the budget ends in the third epoch
    f"optimizer.lr={BASE_LR}",
]


class FakeClock:
    """Stands in for ``time.monotonic`` in Lightning's ``Timer``."""

    now = 0.0

    @classmethod
    def monotonic(cls) -> float:
        return cls.now


class MinutePerBatch(L.Callback):
    """Advances the fake clock by a minute at each training batch and records its LR."""

    learning_rates: ClassVar[list[float]] = []

    def on_train_batch_start(self, trainer: L.Trainer, *args, **kwargs) -> None:
        FakeClock.now += SECONDS_PER_BATCH
        MinutePerBatch.learning_rates.append(trainer.optimizers[0].param_groups[0]["lr"])


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeClock.now = 1000.0
    MinutePerBatch.learning_rates = []
    monkeypatch.setattr(lightning_timer, "time", SimpleNamespace(monotonic=FakeClock.monotonic))


def torch_sequence(scheduler_class: type, **kwargs) -> list[float]:
    """The LRs of a torch scheduler stepped once per batch over a budget of BATCHES steps."""
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=BASE_LR)
    scheduler = scheduler_class(optimizer, **kwargs)
    rates = []
    for _ in range(BATCHES):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


def one_cycle(progress: float) -> float:
    """OneCycleLR's cosine phases (pct_start 0.3, div_factor 25, final_div_factor 1e4)."""
    low, high, final = BASE_LR / 25, BASE_LR, BASE_LR / 25 / 1e4
    if progress < 0.3:
        return high + (low - high) * (1 + math.cos(math.pi * progress / 0.3)) / 2
    return final + (high - final) * (1 + math.cos(math.pi * (progress - 0.3) / 0.7)) / 2


EXPECTED = {
    # The minute before batch k makes k tenths of the budget spent.
    "cosine": torch_sequence(torch.optim.lr_scheduler.CosineAnnealingLR, T_max=10, eta_min=1e-6),
    "poly": torch_sequence(torch.optim.lr_scheduler.PolynomialLR, total_iters=10, power=0.9),
    "onecycle": [one_cycle(k / BATCHES) for k in range(BATCHES)],
    # The plateau schedule waits five validations without improvement; here are two.
    "plateau": [BASE_LR] * BATCHES,
    "none": [BASE_LR] * BATCHES,
}


@pytest.mark.parametrize("scheduler", list(EXPECTED))
def test_time_budget_ends_the_run_and_shapes_the_learning_rate(
    make_config, fake_clock: None, scheduler: str
) -> None:
    _, objects = train(make_config([*BUDGET, *PROBE, f"scheduler={scheduler}"]))
    assert objects["trainer"].global_step == BATCHES
    assert MinutePerBatch.learning_rates == pytest.approx(EXPECTED[scheduler], rel=1e-9)


def test_epochs_and_time_budget_together_follow_whichever_is_spent_faster(
    make_config, fake_clock: None
) -> None:
    # Two epochs of four batches end before the ten minutes: the schedule spans 8 batches.
    overrides = [*BUDGET, *PROBE, "trainer.max_epochs=2", "scheduler=cosine"]
    _, objects = train(make_config(overrides))
    assert objects["trainer"].global_step == 8
    expected = [1e-6 + (BASE_LR - 1e-6) * (1 + math.cos(math.pi * k / 8)) / 2 for k in range(8)]
    assert MinutePerBatch.learning_rates == pytest.approx(expected, rel=1e-9)


def test_schedule_without_any_end_is_one_clear_error(make_config) -> None:
    with pytest.raises(ConfigError, match=r"trainer.max_epochs=-1 sets none: set trainer"):
        train(make_config(["trainer.max_epochs=-1", "scheduler=cosine", "test=false"]))
