"""Faults injected into test runs as callbacks (``+callbacks.<name>._target_=tests.faults.X``)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import lightning as L
import torch


class PauseAtStep(L.Callback):
    """At global step ``step`` (on ``rank``), write the process id to ``marker`` and wait.

    The waiting process is meant to be killed by the test that reads the marker.
    """

    def __init__(self, step: int, marker: str, rank: int = 0, seconds: float = 120.0) -> None:
        self.step = step
        self.marker = Path(marker)
        self.rank = rank
        self.seconds = seconds

    def on_train_batch_start(self, trainer: L.Trainer, pl_module, batch, batch_idx: int) -> None:
        if trainer.global_step == self.step and trainer.global_rank == self.rank:
            self.marker.write_text(str(os.getpid()))
            time.sleep(self.seconds)


class CrashAtStep(L.Callback):
    """Raise ``RuntimeError`` at global step ``step`` (a crash in the middle of an epoch)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer: L.Trainer, pl_module, batch, batch_idx: int) -> None:
        if trainer.global_step == self.step:
            raise RuntimeError(f"injected crash at step {self.step}")


class PoisonBatch(L.Callback):
    """Fill the input images of the batches at ``steps`` with ``value`` (NaN, Inf)."""

    def __init__(self, steps: list[int], value: float = float("nan")) -> None:
        self.steps = set(steps)
        self.value = value

    def on_train_batch_start(self, trainer: L.Trainer, pl_module, batch, batch_idx: int) -> None:
        if trainer.global_step in self.steps:
            batch["image"].fill_(self.value)


class WeightProbe(L.Callback):
    """Record, per global step, the gradient norm after clipping and whether the weights moved."""

    def __init__(self) -> None:
        self.grad_norms: dict[int, float] = {}
        self.weights_changed: dict[int, bool] = {}
        self._before: list[torch.Tensor] = []

    def on_train_batch_start(self, trainer: L.Trainer, pl_module, batch, batch_idx: int) -> None:
        self._before = [p.detach().clone() for p in pl_module.parameters()]

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step - 1
        grads = [p.grad.detach().float() for p in pl_module.parameters() if p.grad is not None]
        if grads:
            self.grad_norms[step] = float(
                torch.linalg.vector_norm(torch.cat([g.flatten() for g in grads]))
            )
        self.weights_changed[step] = any(
            not torch.equal(before, p)
            for before, p in zip(self._before, pl_module.parameters(), strict=True)
        )


class KillAtFit(L.Callback):
    """Kill the process (SIGKILL) at the start of its ``at``-th fit, counted in ``counter``.

    The count lives in a file, so runs that share it (the trials of a sweep, a resumed
    sweep) count on from each other and only the ``at``-th fit of all is killed.
    """

    def __init__(self, counter: str, at: int) -> None:
        self.counter = Path(counter)
        self.at = at

    def on_fit_start(self, trainer: L.Trainer, pl_module) -> None:
        count = int(self.counter.read_text()) + 1 if self.counter.is_file() else 1
        self.counter.write_text(str(count))
        if count == self.at:
            os.kill(os.getpid(), signal.SIGKILL)
